//! Prometheus metrics.
//!
//! Every metric is listed, with its type, labels and meaning, in `docs/metrics.md`; a test
//! below fails when one is registered here and not listed there, or listed and not
//! registered.
//!
//! Owns [`Metrics`] (a registry of its own, no global) and the middleware that counts every
//! request per endpoint: requests by status, latency histogram, and errors by RFC code. Token
//! requests are also counted per grant type and outcome.
//!
//! Every label value comes from a closed set, never from the request as sent: each label value
//! is a time series kept for the life of the process, so a client able to invent values could
//! grow the server's memory and the exposition without bound. The endpoint is the matched
//! route (or `unmatched`), the method one of RFC 9110 §9's (or `other`), the status and the
//! error code the server's own, the grant type a label of the grant table
//! ([`tessera_core::grant::GRANTS`], through [`tessera_core::endpoint::token::grant_label`]) or
//! `/sdk/token`'s ([`tessera_core::endpoint::sdk_token::SDK_TOKEN`]), or `other`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::error::ErrorLabel;

/// The prefix of every metric's name.
const PREFIX: &str = "tessera";

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// One registered metric, as `docs/metrics.md` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The full name (`tessera_http_requests_total`).
    pub name: String,
    /// `counter` or `histogram`, as the exposition's `# TYPE` line says.
    pub kind: &'static str,
    /// The label names, in order.
    pub labels: Vec<String>,
    /// The help text.
    pub help: String,
}

/// The server's metrics.
pub struct Metrics {
    described: Vec<Described>,
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    errors: IntCounterVec,
    grants: IntCounterVec,
    grant_latency: HistogramVec,
    logouts: IntCounterVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some(PREFIX.into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by endpoint and status",
            ),
            &["endpoint", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(BUCKETS.to_vec()),
            &["endpoint"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "http_errors_total",
                "OAuth error responses by endpoint and code",
            ),
            &["endpoint", "error"],
        )?;
        let grants = IntCounterVec::new(
            Opts::new(
                "token_requests_total",
                "Token requests by grant type and outcome",
            ),
            &["grant_type", "outcome"],
        )?;
        let grant_latency = HistogramVec::new(
            HistogramOpts::new(
                "token_request_duration_seconds",
                "Token request latency by grant type",
            )
            .buckets(BUCKETS.to_vec()),
            &["grant_type"],
        )?;
        let logouts = IntCounterVec::new(
            Opts::new(
                "logout_deliveries_total",
                "Back-channel logout token deliveries by outcome",
            ),
            &["outcome"],
        )?;
        let mut described = Vec::new();
        let mut add = |c: Box<dyn Collector>, kind: &'static str| {
            described.extend(c.desc().into_iter().map(|d| Described {
                // The registry adds its prefix when it gathers.
                name: format!("{PREFIX}_{}", d.fq_name),
                kind,
                labels: d.variable_labels.clone(),
                help: d.help.clone(),
            }));
            registry.register(c)
        };
        add(Box::new(requests.clone()), "counter")?;
        add(Box::new(latency.clone()), "histogram")?;
        add(Box::new(errors.clone()), "counter")?;
        add(Box::new(grants.clone()), "counter")?;
        add(Box::new(grant_latency.clone()), "histogram")?;
        add(Box::new(logouts.clone()), "counter")?;
        Ok(Self {
            described,
            registry,
            requests,
            latency,
            errors,
            grants,
            grant_latency,
            logouts,
        })
    }

    /// Counts one logout token delivery attempt or end: `sent` (the client answered 200 or
    /// 204), `failed` (an attempt that will be retried) or `dropped` (ended undelivered: the
    /// retry window passed, or the target address is refused).
    pub fn logout_delivery(&self, outcome: &'static str) {
        self.logout_deliveries(outcome, 1);
    }

    /// Counts `n` logout token deliveries ending with `outcome` (see
    /// [`Metrics::logout_delivery`]; `dropped` also counts those the outbox's bound dropped).
    pub fn logout_deliveries(&self, outcome: &'static str, n: u64) {
        self.logouts.with_label_values(&[outcome]).inc_by(n);
    }

    /// Counts one token request.
    pub fn grant(&self, grant: &str, ok: bool, started: Instant) {
        self.grants
            .with_label_values(&[grant, if ok { "success" } else { "error" }])
            .inc();
        self.grant_latency
            .with_label_values(&[grant])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Every registered metric (`docs/metrics.md` lists them; a test holds the two equal).
    pub fn described(&self) -> &[Described] {
        &self.described
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Middleware: counts and times every request by its route (never by its raw URL).
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let res = next.run(req).await;
    let status = res.status();
    m.requests
        .with_label_values(&[endpoint.as_str(), method, status.as_str()])
        .inc();
    m.latency
        .with_label_values(&[endpoint.as_str()])
        .observe(started.elapsed().as_secs_f64());
    if let Some(ErrorLabel(code)) = res.extensions().get::<ErrorLabel>() {
        m.errors
            .with_label_values(&[endpoint.as_str(), code.as_str()])
            .inc();
    }
    tracing::debug!(
        method = %method,
        endpoint = %endpoint,
        status = status.as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    res
}

/// The label of a request method: the methods of RFC 9110 §9 (and PATCH, RFC 5789) by name,
/// any other (a client may send any token as a method) as `other`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the reference table in `docs/metrics.md`: name, type, labels.
    fn documented() -> Vec<(String, String, Vec<String>)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md");
        let text = std::fs::read_to_string(path).expect("docs/metrics.md");
        let unquote = |cell: &str| cell.trim().trim_matches('`').to_owned();
        text.lines()
            .filter(|l| l.starts_with("| `tessera_"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').collect();
                assert!(
                    cells.len() >= 4,
                    "a row of name, type, labels, meaning: {l}"
                );
                let labels = cells[2]
                    .split(',')
                    .map(unquote)
                    .filter(|s| !s.is_empty() && s != "none")
                    .collect();
                (unquote(cells[0]), unquote(cells[1]), labels)
            })
            .collect()
    }

    #[test]
    fn the_metrics_reference_lists_every_metric_and_no_other() {
        let m = Metrics::new().unwrap();
        let registered: Vec<(String, String, Vec<String>)> = m
            .described()
            .iter()
            .map(|d| (d.name.clone(), d.kind.to_owned(), d.labels.clone()))
            .collect();
        let documented = documented();
        for r in &registered {
            assert!(
                documented.contains(r),
                "docs/metrics.md does not list {} ({}, labels {:?}) as registered",
                r.0,
                r.1,
                r.2
            );
        }
        for d in &documented {
            assert!(
                registered.contains(d),
                "docs/metrics.md lists {} ({}, labels {:?}), which is not registered so",
                d.0,
                d.1,
                d.2
            );
        }
        assert!(!registered.is_empty());
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for invented in ["FOO", "XYZZY1", "get", "PROPFIND"] {
            let m = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "other", "{invented}");
        }
    }
}
