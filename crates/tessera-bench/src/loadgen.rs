//! Owns the closed-loop load generator: N workers, one keep-alive connection
//! each, sending requests back to back until a deadline, each recording
//! latencies (microseconds) into its own HDR histogram, merged at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use crate::conn::{Conn, RequestTemplate};

/// Highest latency the histograms track (60 s, in microseconds).
const MAX_LATENCY_US: u64 = 60_000_000;

/// What a response body must contain to count as a success, besides a 2xx
/// status.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// Any 2xx response is a success.
    Status,
    /// The body must also report `"active":true` (whitespace after the colon
    /// tolerated).
    Active,
    /// A DPoP-bound token (RFC 9449 §5): `"token_type":"DPoP"`, checked on the first of
    /// every [`DPOP_SAMPLE`] answers of each connection, so a server that ignored the proofs
    /// (and issued bearer tokens) fails the measurement.
    Dpop,
}

/// One answer in this many has its `token_type` checked under [`Check::Dpop`].
const DPOP_SAMPLE: u64 = 16;

impl Check {
    fn body_ok(self, body: &[u8], nth: u64) -> bool {
        match self {
            Check::Status => true,
            Check::Active => {
                contains(body, br#""active":true"#) || contains(body, br#""active": true"#)
            }
            Check::Dpop => {
                nth % DPOP_SAMPLE != 0
                    || contains(body, br#""token_type":"DPoP""#)
                    || contains(body, br#""token_type": "DPoP""#)
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parameters of one measurement.
pub struct LoadSpec {
    /// The servers; worker `i` connects to `addrs[i % len]` (several nodes share the load).
    pub addrs: Vec<SocketAddr>,
    pub template: Arc<RequestTemplate>,
    pub check: Check,
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// The outcome of one measurement (warm-up excluded).
pub struct LoadResult {
    /// Successful requests completed inside the measurement window.
    pub ok: u64,
    /// Failed requests (non-2xx, failed check, transport errors) completed
    /// inside the measurement window.
    pub errors: u64,
    /// Latency of successful requests, in microseconds.
    pub histogram: Histogram<u64>,
    /// Length of the measurement window.
    pub window: Duration,
    /// One example error message, if any error happened.
    pub sample_error: Option<String>,
}

impl LoadResult {
    /// Adds another measurement of the same load (another round): counts, histograms and
    /// windows summed.
    pub fn merge(&mut self, other: LoadResult) -> Result<()> {
        self.ok += other.ok;
        self.errors += other.errors;
        self.histogram
            .add(&other.histogram)
            .context("merging histograms")?;
        self.window += other.window;
        if self.sample_error.is_none() {
            self.sample_error = other.sample_error;
        }
        Ok(())
    }

    pub fn requests_per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// Latency at `quantile` in milliseconds (0 when nothing was recorded).
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.histogram.is_empty() {
            return 0.0;
        }
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

struct WorkerResult {
    ok: u64,
    errors: u64,
    histogram: Histogram<u64>,
    sample_error: Option<String>,
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("creating histogram")
}

/// Runs one measurement: connects all workers, runs `warmup` (not counted)
/// then `duration` (counted), and merges the workers' results.
pub async fn run(spec: &LoadSpec) -> Result<LoadResult> {
    let concurrency = spec.concurrency.max(1);
    let addr_of = |worker: usize| {
        spec.addrs
            .get(worker % spec.addrs.len().max(1))
            .copied()
            .context("no server address")
    };
    let mut conns = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        conns.push(Conn::connect(addr_of(worker)?).await?);
    }

    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let deadline = measure_from + spec.duration;
    // Spread the workers over the body pool so they do not all send the
    // same body at the same moment.
    let stride = (spec.template.body_count() / concurrency).max(1);

    let mut handles = Vec::with_capacity(concurrency);
    for (worker, conn) in conns.into_iter().enumerate() {
        let template = Arc::clone(&spec.template);
        let addr = addr_of(worker)?;
        let check = spec.check;
        handles.push(tokio::spawn(async move {
            worker_loop(
                conn,
                addr,
                template,
                check,
                worker * stride,
                measure_from,
                deadline,
            )
            .await
        }));
    }

    let mut histogram = new_histogram()?;
    let mut ok = 0;
    let mut errors = 0;
    let mut sample_error = None;
    for handle in handles {
        let result = handle.await.context("load worker panicked")??;
        ok += result.ok;
        errors += result.errors;
        histogram
            .add(&result.histogram)
            .context("merging histograms")?;
        if sample_error.is_none() {
            sample_error = result.sample_error;
        }
    }

    Ok(LoadResult {
        ok,
        errors,
        histogram,
        window: spec.duration,
        sample_error,
    })
}

async fn worker_loop(
    mut conn: Conn,
    addr: SocketAddr,
    template: Arc<RequestTemplate>,
    check: Check,
    mut index: usize,
    measure_from: Instant,
    deadline: Instant,
) -> Result<WorkerResult> {
    let mut result = WorkerResult {
        ok: 0,
        errors: 0,
        histogram: new_histogram()?,
        sample_error: None,
    };
    let mut broken = false;
    let mut answers: u64 = 0;

    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if !broken && conn.is_closed() {
            // The server closed the keep-alive connection after a response;
            // reconnecting is not an error.
            broken = true;
        }
        if broken {
            match Conn::connect(addr).await {
                Ok(fresh) => {
                    conn = fresh;
                    broken = false;
                }
                Err(err) => {
                    let done = Instant::now();
                    if done >= measure_from && done <= deadline {
                        result.errors += 1;
                        result
                            .sample_error
                            .get_or_insert_with(|| format!("{err:#}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }

        let Some(req) = template.next(index) else {
            // Every DPoP proof made for this measurement was sent: stop rather than resend
            // one (the server would refuse it), and say so whether or not it counted.
            result.errors += 1;
            result
                .sample_error
                .get_or_insert_with(|| "ran out of DPoP proofs".to_owned());
            break;
        };
        index = index.wrapping_add(1);
        let nth = answers;
        answers += 1;
        let sent = Instant::now();
        let outcome = conn.send(req).await;
        let done = Instant::now();
        let counted = done >= measure_from && done <= deadline;

        match outcome {
            Ok((status, body)) if status.is_success() && check.body_ok(&body, nth) => {
                if counted {
                    result.ok += 1;
                    let micros = u64::try_from(done.duration_since(sent).as_micros())
                        .unwrap_or(MAX_LATENCY_US);
                    result.histogram.saturating_record(micros.max(1));
                }
            }
            Ok((status, body)) => {
                if counted {
                    result.errors += 1;
                    result.sample_error.get_or_insert_with(|| {
                        let text = String::from_utf8_lossy(&body);
                        let text: String = text.chars().take(200).collect();
                        format!("HTTP {status}: {text}")
                    });
                }
            }
            Err(err) => {
                broken = true;
                if counted {
                    result.errors += 1;
                    result
                        .sample_error
                        .get_or_insert_with(|| format!("{err:#}"));
                }
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_fails_the_dpop_check_on_sampled_answers() {
        let bearer = br#"{"access_token":"x","token_type":"Bearer","expires_in":300}"#;
        let dpop = br#"{"access_token":"x","token_type":"DPoP","expires_in":300}"#;
        assert!(!Check::Dpop.body_ok(bearer, 0));
        assert!(!Check::Dpop.body_ok(bearer, DPOP_SAMPLE * 3));
        assert!(Check::Dpop.body_ok(bearer, 1), "unsampled");
        assert!(Check::Dpop.body_ok(dpop, 0));
        assert!(Check::Status.body_ok(bearer, 0));
    }
}
