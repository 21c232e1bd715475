//! Owns the paced background load: requests sent at fixed intervals (open loop, not as fast
//! as the server answers) while the closed-loop load generator measures another endpoint.
//!
//! A background is a set of streams, each one request body repeated every `period` (a
//! pushed authorization request every few milliseconds, or one pending device code polled
//! at its interval). The streams are spread over a few keep-alive connections; each
//! connection sends its streams' requests when they fall due, one at a time. When the
//! server answers late the missed sends are skipped, not bunched up, so the background
//! never turns into a flat-out flood; the achieved rate is reported beside the planned one.
//! Every answer is counted by status and OAuth `error` code, so the report shows the
//! background got what it expected (`201` for a push, `400 authorization_pending` or
//! `400 slow_down` for a poll).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::conn::{Conn, RequestTemplate};

/// One repeated request: body `body` of the template, sent every `period`.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    pub body: usize,
    pub period: Duration,
    /// A polite poller (RFC 8628 §3.5): it waits a whole `period` after each answer, and a
    /// `slow_down` answer makes its period [`SLOW_DOWN_STEP`] longer. Otherwise the stream
    /// keeps its schedule and ignores `slow_down`.
    pub polite: bool,
    /// For a background started again: how long after the start the stream's next send is
    /// due, as it was when the background stopped (the time in between does not count), so a
    /// device code keeps its interval and its phase across runs.
    pub resume_after: Option<Duration>,
}

/// What RFC 8628 §3.5 tells a client to add to its interval after `slow_down`.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// What a background run did, over its whole life (its own warm-up included).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BackgroundStats {
    /// What the background is (for the report).
    pub description: String,
    /// The planned rate, requests per second (the sum of the streams' rates).
    pub planned_per_second: f64,
    /// Requests answered per second while it ran.
    pub achieved_per_second: f64,
    /// Answers by `STATUS` or `STATUS error_code`, e.g. `"400 slow_down"`.
    pub answers: BTreeMap<String, u64>,
    /// Sends skipped because the connection was still waiting for an earlier answer.
    pub skipped: u64,
    /// Transport errors (connect, send, read).
    pub transport_errors: u64,
    /// Seconds the background ran.
    pub running_s: f64,
}

impl BackgroundStats {
    /// Adds another run of the same background (another round): counts and running time
    /// summed, the achieved rate recomputed over both.
    pub fn merge(&mut self, other: &BackgroundStats) {
        if self.description.is_empty() {
            self.description.clone_from(&other.description);
            self.planned_per_second = other.planned_per_second;
        }
        for (k, v) in &other.answers {
            *self.answers.entry(k.clone()).or_default() += v;
        }
        self.skipped += other.skipped;
        self.transport_errors += other.transport_errors;
        self.running_s += other.running_s;
        let answered: u64 = self.answers.values().sum();
        if self.running_s > 0.0 {
            self.achieved_per_second = answered as f64 / self.running_s;
        }
    }

    /// Answers whose key is not one of `expected`, plus transport errors.
    pub fn unexpected(&self, expected: &[&str]) -> u64 {
        self.answers
            .iter()
            .filter(|(k, _)| !expected.contains(&k.as_str()))
            .map(|(_, v)| v)
            .sum::<u64>()
            + self.transport_errors
    }
}

/// A background load that is running; [`Background::stop`] ends it.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<ConnectionOutcome>>>,
    started: Instant,
    description: String,
    planned_per_second: f64,
}

impl Background {
    /// Starts `streams` of `template` against `addr` over `connections` connections (stream
    /// `i` on connection `i % connections`), each stream's first send spread evenly over its
    /// first period so the streams do not fire together, or `resume_after` the start.
    pub async fn start(
        description: &str,
        addr: SocketAddr,
        template: Arc<RequestTemplate>,
        streams: &[Stream],
        connections: usize,
    ) -> Result<Self> {
        let connections = connections.clamp(1, streams.len().max(1));
        let planned_per_second = streams
            .iter()
            .map(|s| 1.0 / s.period.as_secs_f64().max(1e-6))
            .sum();
        let (stop, stopped) = watch::channel(false);
        let start = Instant::now();
        let count = streams.len().max(1) as u32;
        let mut per_conn: Vec<Vec<(usize, Instant, Stream)>> = vec![Vec::new(); connections];
        for (i, stream) in streams.iter().enumerate() {
            let offset = stream
                .period
                .mul_f64(f64::from(i as u32) / f64::from(count));
            let at = start + stream.resume_after.unwrap_or(offset);
            per_conn[i % connections].push((i, at, *stream));
        }
        let mut tasks = Vec::with_capacity(connections);
        for schedule in per_conn {
            let conn = Conn::connect(addr).await?;
            let template = Arc::clone(&template);
            let stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                run_connection(conn, addr, template, schedule, stopped).await
            }));
        }
        Ok(Self {
            stop,
            tasks,
            started: start,
            description: description.to_owned(),
            planned_per_second,
        })
    }

    /// Stops every connection and returns what the background did, and the streams as they
    /// are now (in the order given to [`Background::start`]; their period grown by any
    /// `slow_down`, `resume_after` set) to start it again with.
    pub async fn stop(self) -> Result<(BackgroundStats, Vec<Stream>)> {
        let _ = self.stop.send(true);
        let running_s = self.started.elapsed().as_secs_f64();
        let mut stats = BackgroundStats {
            description: self.description,
            planned_per_second: self.planned_per_second,
            ..BackgroundStats::default()
        };
        let stopped_at = Instant::now();
        let mut streams = Vec::new();
        for task in self.tasks {
            let (one, left) = task.await.context("background task panicked")??;
            stats.merge(&one);
            streams.extend(left);
        }
        streams.sort_by_key(|(i, _, _)| *i);
        // The connections ran side by side: the background's time is the wall time, once.
        stats.merge(&BackgroundStats {
            running_s,
            ..BackgroundStats::default()
        });
        let streams = streams
            .into_iter()
            .map(|(_, due, mut stream)| {
                stream.resume_after = Some(due.saturating_duration_since(stopped_at));
                stream
            })
            .collect();
        Ok((stats, streams))
    }
}

/// A stream as a connection left it: its index in the background, when its next send was
/// due, and the stream.
type Left = (usize, Instant, Stream);

/// What one connection did, and its streams as it left them.
type ConnectionOutcome = (BackgroundStats, Vec<Left>);

async fn run_connection(
    mut conn: Conn,
    addr: SocketAddr,
    template: Arc<RequestTemplate>,
    schedule: Vec<(usize, Instant, Stream)>,
    mut stopped: watch::Receiver<bool>,
) -> Result<ConnectionOutcome> {
    let mut stats = BackgroundStats::default();
    // Earliest due first; the index keeps entries with equal instants ordered.
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut streams: Vec<Stream> = schedule.iter().map(|(_, _, s)| *s).collect();
    for (i, (_, at, _)) in schedule.iter().enumerate() {
        due.push(Reverse((*at, i)));
    }
    while let Some(Reverse((at, i))) = due.pop() {
        let stop = tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => *stopped.borrow(),
            _ = stopped.changed() => true,
        };
        if stop {
            due.push(Reverse((at, i)));
            break;
        }
        let mut stream = streams[i];
        if conn.is_closed() {
            match Conn::connect(addr).await {
                Ok(fresh) => conn = fresh,
                Err(_) => {
                    stats.transport_errors += 1;
                    due.push(Reverse((at + stream.period, i)));
                    continue;
                }
            }
        }
        match conn.send(template.build(stream.body)).await {
            Ok((status, body)) => {
                let key = answer_key(status, &body);
                if stream.polite && key == SLOW_DOWN {
                    stream.period += SLOW_DOWN_STEP;
                    streams[i] = stream;
                }
                *stats.answers.entry(key).or_default() += 1;
            }
            Err(_) => stats.transport_errors += 1,
        }
        let now = Instant::now();
        if stream.polite {
            due.push(Reverse((now + stream.period, i)));
            continue;
        }
        // The next send of this stream: one period on, skipping any the wait made us miss.
        let mut next = at + stream.period;
        while next <= now {
            next += stream.period;
            stats.skipped += 1;
        }
        due.push(Reverse((next, i)));
    }
    // Every stream is in the heap again, with its next send.
    let left = due
        .into_iter()
        .map(|Reverse((at, i))| (schedule[i].0, at, streams[i]))
        .collect();
    Ok((stats, left))
}

/// The answer key of RFC 8628 §3.5's `slow_down`.
const SLOW_DOWN: &str = "400 slow_down";

/// `"STATUS"` for a success, `"STATUS error"` for an error answer with an OAuth `error`.
fn answer_key(status: http::StatusCode, body: &Bytes) -> String {
    if status.is_success() {
        return status.as_u16().to_string();
    }
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    match code {
        Some(code) => format!("{} {code}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_keyed_by_status_and_error() {
        let ok = answer_key(http::StatusCode::CREATED, &Bytes::from_static(b"{}"));
        assert_eq!(ok, "201");
        let pending = answer_key(
            http::StatusCode::BAD_REQUEST,
            &Bytes::from_static(br#"{"error":"authorization_pending"}"#),
        );
        assert_eq!(pending, "400 authorization_pending");
        let plain = answer_key(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            &Bytes::from_static(b"oops"),
        );
        assert_eq!(plain, "500");
    }

    #[test]
    fn unexpected_answers_are_counted() {
        let mut stats = BackgroundStats::default();
        stats.answers.insert("400 slow_down".to_owned(), 3);
        stats
            .answers
            .insert("400 authorization_pending".to_owned(), 10);
        stats.answers.insert("500".to_owned(), 1);
        stats.transport_errors = 2;
        assert_eq!(
            stats.unexpected(&["400 slow_down", "400 authorization_pending"]),
            3
        );
    }

    /// The background never sends faster than its schedule, however fast the server
    /// answers, and every answer is counted.
    #[tokio::test]
    async fn sends_are_paced_not_flat_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/push",
            axum::routing::post(|| async { (http::StatusCode::CREATED, "{}") }),
        );
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let template = Arc::new(
            RequestTemplate::form_post(addr, "/push", vec![Bytes::from_static(b"a=b")]).unwrap(),
        );
        let period = Duration::from_millis(50);
        let stream = Stream {
            body: 0,
            period,
            polite: false,
            resume_after: None,
        };
        let streams = [stream, stream];
        let running = Background::start("test", addr, template, &streams, 2)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (stats, left) = running.stop().await.unwrap();
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|s| s.resume_after.is_some()));
        let answered: u64 = stats.answers.values().sum();
        let most = (stats.running_s / period.as_secs_f64()).ceil() as u64 + 1;
        assert!(answered >= 1, "{stats:?}");
        assert!(
            answered <= 2 * most,
            "{answered} > {} ({stats:?})",
            2 * most
        );
        assert_eq!(stats.unexpected(&["201"]), 0, "{stats:?}");
        assert_eq!(stats.planned_per_second, 40.0);
        server.abort();
    }

    /// A polite poller told `slow_down` waits its interval plus five seconds, so it polls
    /// once in a fraction of a second however short its first interval.
    #[tokio::test]
    async fn a_polite_poller_slows_down() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(|| async {
                (http::StatusCode::BAD_REQUEST, r#"{"error":"slow_down"}"#)
            }),
        );
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let template = Arc::new(
            RequestTemplate::form_post(addr, "/token", vec![Bytes::from_static(b"a=b")]).unwrap(),
        );
        let polite = Stream {
            body: 0,
            period: Duration::from_millis(20),
            polite: true,
            resume_after: None,
        };
        let running = Background::start("test", addr, Arc::clone(&template), &[polite], 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (stats, left) = running.stop().await.unwrap();
        assert_eq!(stats.answers.get(SLOW_DOWN), Some(&1), "{stats:?}");
        assert_eq!(stats.unexpected(&[SLOW_DOWN]), 0, "{stats:?}");
        // Started again, it keeps its longer interval and its next poll time: no poll yet.
        assert_eq!(left[0].period, Duration::from_millis(20) + SLOW_DOWN_STEP);
        let again = Background::start("test", addr, template, &left, 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (stats, _) = again.stop().await.unwrap();
        assert!(stats.answers.is_empty(), "{stats:?}");
        server.abort();
    }
}
