//! OpenTelemetry tracing: whether it is on, and the exporter.
//!
//! Owns reading the standard `OTEL_*` environment variables of the OpenTelemetry SDK
//! specification (the README's OpenTelemetry section names those Tessera reads) and
//! building the tracer provider that exports spans by OTLP over HTTP
//! (<https://opentelemetry.io/docs/specs/otlp/#otlphttp>).
//!
//! Tracing is off unless configured: on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or `OTEL_TRACES_EXPORTER=otlp` (then to the default
//! `http://localhost:4318`); off whatever else is set when `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none`. Off, `serve` installs no OpenTelemetry layer, wraps no store and
//! adds no request layer, so a request costs what it did without tracing. A value Tessera
//! cannot honour (another exporter, the gRPC protocol, compression, an unknown sampler) is an
//! error at start, naming the variable.
//!
//! The exporter's HTTP client is the `reqwest` the rest of the binary uses (rustls), in its
//! blocking form: the SDK's batch processor exports from a thread of its own, outside the
//! serving runtimes.

use std::time::Duration;

use anyhow::{bail, Result};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// Default time allowed for one export, when `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` is unset
/// (the specification's 10 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The samplers of `OTEL_TRACES_SAMPLER` the SDK implements.
const SAMPLERS: &[&str] = &[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

/// What the environment asks of tracing, once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `http/protobuf` (the default) or `http/json`.
    pub protocol: Protocol,
    /// Longest one export may take.
    pub timeout: Duration,
    /// `service.name` to set, when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES`
    /// names the service.
    pub default_service_name: Option<&'static str>,
}

/// Reads the `OTEL_*` variables through `var` (the process environment in the binary):
/// `None` when tracing is off.
pub fn config(var: impl Fn(&str) -> Option<String>) -> Result<Option<Config>> {
    let set = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = set("OTEL_SDK_DISABLED") {
        match v.to_ascii_lowercase().as_str() {
            "true" => return Ok(None),
            "false" => {}
            _ => bail!("OTEL_SDK_DISABLED={v}: expected true or false"),
        }
    }
    let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or(set("OTEL_EXPORTER_OTLP_ENDPOINT"));
    match set("OTEL_TRACES_EXPORTER").as_deref() {
        None if endpoint.is_none() => return Ok(None),
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => bail!(
            "OTEL_TRACES_EXPORTER={other}: Tessera exports traces by OTLP only (otlp, or none)"
        ),
    }
    if let Some(endpoint) = &endpoint {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            bail!(
                "OTLP endpoint {endpoint}: expected an http:// or https:// URL, such as \
                 http://localhost:4318"
            );
        }
    }
    let protocol = match set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or(set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
    {
        None | Some("http/protobuf") => Protocol::HttpBinary,
        Some("http/json") => Protocol::HttpJson,
        Some("grpc") => bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: Tessera exports OTLP over HTTP only; use \
             http/protobuf (a collector's port 4318) or http/json"
        ),
        Some(other) => {
            bail!("OTLP protocol {other}: expected http/protobuf or http/json")
        }
    };
    if let Some(compression) = set("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
        .or(set("OTEL_EXPORTER_OTLP_COMPRESSION"))
        .filter(|c| c != "none")
    {
        bail!("OTLP compression {compression}: not built in; leave it unset or set none");
    }
    let timeout =
        match set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").or(set("OTEL_EXPORTER_OTLP_TIMEOUT")) {
            None => DEFAULT_TIMEOUT,
            Some(ms) => match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => bail!("OTLP export timeout {ms}: expected milliseconds, such as 10000"),
            },
        };
    if let Some(sampler) = set("OTEL_TRACES_SAMPLER") {
        if !SAMPLERS.contains(&sampler.as_str()) {
            bail!(
                "OTEL_TRACES_SAMPLER={sampler}: expected one of {}",
                SAMPLERS.join(", ")
            );
        }
        if sampler.ends_with("traceidratio") {
            let arg = set("OTEL_TRACES_SAMPLER_ARG");
            match arg.as_deref().map(str::parse::<f64>) {
                Some(Ok(ratio)) if (0.0..=1.0).contains(&ratio) => {}
                _ => bail!(
                    "OTEL_TRACES_SAMPLER={sampler} needs OTEL_TRACES_SAMPLER_ARG, the share of \
                     traces kept, from 0 to 1 (such as 0.25)"
                ),
            }
        }
    }
    let named = set("OTEL_SERVICE_NAME").is_some()
        || set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
            a.split(',')
                .any(|kv| kv.trim_start().starts_with("service.name="))
        });
    Ok(Some(Config {
        protocol,
        timeout,
        default_service_name: (!named).then_some("tessera"),
    }))
}

/// Builds the tracer provider: OTLP over HTTP through a batch processor, with the endpoint,
/// headers and compression the `OTEL_EXPORTER_OTLP_*` variables give, the sampler of
/// `OTEL_TRACES_SAMPLER`, and the resource of `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`.
pub fn provider(config: &Config) -> Result<SdkTracerProvider> {
    let timeout = config.timeout;
    // The blocking client runs a runtime of its own; it is made outside the caller's.
    let client = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("making the OTLP HTTP client: the thread panicked"))?
    .map_err(|e| anyhow::anyhow!("making the OTLP HTTP client: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Exporter(client))
        .with_protocol(config.protocol)
        .with_timeout(config.timeout)
        .build()
        .map_err(|e| anyhow::anyhow!("configuring the OTLP exporter: {e}"))?;
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if let Some(name) = config.default_service_name {
        resource = resource.with_service_name(name);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The OTLP exporter's HTTP client: the blocking `reqwest` client.
#[derive(Debug)]
struct Exporter(reqwest::blocking::Client);

#[async_trait::async_trait]
impl HttpClient for Exporter {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let sent = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let mut response = Response::builder().status(sent.status());
        if let Some(headers) = response.headers_mut() {
            headers.extend(sent.headers().clone());
        }
        Ok(response.body(sent.bytes()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn check(vars: &[(&str, &str)]) -> Result<Option<Config>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config(|k| map.get(k).cloned())
    }

    #[test]
    fn off_unless_configured() {
        assert_eq!(check(&[]).unwrap(), None);
        assert_eq!(check(&[("OTEL_SERVICE_NAME", "idp")]).unwrap(), None);
        assert_eq!(check(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).unwrap(), None);
    }

    #[test]
    fn on_with_an_endpoint_or_the_otlp_exporter() {
        for vars in [
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")][..],
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://collector/v1/traces",
            )],
            &[("OTEL_TRACES_EXPORTER", "otlp")],
        ] {
            let on = check(vars).unwrap().unwrap();
            assert_eq!(on.protocol, Protocol::HttpBinary);
            assert_eq!(on.timeout, DEFAULT_TIMEOUT);
            assert_eq!(on.default_service_name, Some("tessera"));
        }
    }

    #[test]
    fn disabled_wins() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(
            check(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]).unwrap(),
            None
        );
        assert_eq!(
            check(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).unwrap(),
            None
        );
        assert!(check(&[endpoint, ("OTEL_SDK_DISABLED", "false")])
            .unwrap()
            .is_some());
    }

    #[test]
    fn settings_read() {
        let on = check(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod, service.name=idp",
            ),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(on.protocol, Protocol::HttpJson);
        assert_eq!(on.timeout, Duration::from_millis(2500));
        assert_eq!(on.default_service_name, None);
    }

    #[test]
    fn what_cannot_be_honoured_is_an_error_naming_it() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        for (vars, named) in [
            (vec![("OTEL_SDK_DISABLED", "yes")], "OTEL_SDK_DISABLED=yes"),
            (
                vec![("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER=zipkin",
            ),
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
                "collector:4318",
            ),
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")],
                "timeout 10s",
            ),
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")],
                "compression gzip",
            ),
            (
                vec![endpoint, ("OTEL_TRACES_SAMPLER", "sometimes")],
                "OTEL_TRACES_SAMPLER=sometimes",
            ),
            (
                vec![endpoint, ("OTEL_TRACES_SAMPLER", "traceidratio")],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                vec![
                    endpoint,
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "2"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
        ] {
            let err = match check(&vars) {
                Ok(on) => panic!("{vars:?} accepted: {on:?}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(named), "{vars:?}: {err}");
        }
    }
}
