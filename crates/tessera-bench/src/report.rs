//! Owns the bench's output: the result records, the human-readable table,
//! the targets section (PASS/MISS at concurrency 64, plus the informational
//! comparison of `jwt` with the ES256 signing ceiling) and the JSON file.
//!
//! Some rows are compared with a reference row of the same run, at the same concurrency
//! ([`reference_of`]): token exchange with client-credentials JWT issuance (the issue's
//! target: at least half its rate), and issuance beside a background load with the
//! same issuance measured alone in the interleaved rounds (at least 90%: the background
//! must not slow the other endpoints beyond the little CPU its own requests take), and
//! DPoP-bound issuance with bearer issuance (at least 60%: RFC 9449 proofs, their replay
//! check included, must not make sender-constrained tokens a luxury).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Concurrency at which the targets are evaluated.
pub const TARGET_CONCURRENCY: usize = 64;
/// p99 latency target, milliseconds.
const P99_TARGET_MS: f64 = 10.0;
/// Idle RSS target, megabytes (10^6 bytes).
const IDLE_RSS_TARGET_MB: f64 = 30.0;
/// The plain HTTP floor scenario.
const FLOOR: &str = "floor";
/// The floor plus one ES256 signature per request: the JWT signing ceiling.
const CEILING: &str = "floor-es256";
/// The scenario compared with the signing ceiling.
const JWT: &str = "jwt";
/// Token exchange, compared with client-credentials JWT issuance measured in the same
/// rounds ([`JWT_BESIDE_EXCHANGE`]).
const TOKEN_EXCHANGE: &str = "token-exchange";
/// JWT issuance measured interleaved with token exchange.
const JWT_BESIDE_EXCHANGE: &str = "jwt-ref-exchange";
/// Least token exchange rate, as a share of client-credentials JWT issuance.
const TOKEN_EXCHANGE_MIN: f64 = 0.5;
/// DPoP-bound JWT issuance (SQLite, PostgreSQL) and bearer JWT issuance measured in the
/// same rounds.
const DPOP: [(&str, &str); 2] = [
    ("jwt-dpop", "jwt-ref-dpop"),
    ("pg-jwt-dpop", "pg-jwt-ref-dpop"),
];
/// Least DPoP-bound issuance rate, as a share of bearer issuance.
const DPOP_MIN: f64 = 0.6;
/// Least JWT issuance rate beside a background load, as a share of the rate alone.
const BESIDE_BACKGROUND_MIN: f64 = 0.9;
/// The paired scenarios: (with the background, alone).
const PAIRED: [(&str, &str); 3] = [
    ("jwt-with-par", "jwt-alone-par"),
    ("jwt-with-device", "jwt-alone-device"),
    ("opaque-with-device", "opaque-alone-device"),
];

/// The row a scenario's `ratio_to_reference` is taken against, if any.
pub fn reference_of(scenario: &str) -> Option<&'static str> {
    if scenario == TOKEN_EXCHANGE {
        return Some(JWT_BESIDE_EXCHANGE);
    }
    PAIRED
        .iter()
        .chain(DPOP.iter())
        .find(|(with, _)| *with == scenario)
        .map(|(_, alone)| *alone)
}

/// One scenario at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub concurrency: usize,
    /// Successful requests inside the measurement window.
    pub requests: u64,
    /// Failed requests (non-2xx, failed check, transport error).
    pub errors: u64,
    pub duration_s: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Throughput relative to the floor at the same concurrency (1.0 = same).
    pub ratio_to_floor: Option<f64>,
    /// `jwt` rows only: throughput relative to the ES256 signing ceiling
    /// (`floor-es256`) at the same concurrency.
    pub ratio_to_ceiling: Option<f64>,
    /// `pg-*` and `pg2-*` rows only: throughput relative to the same scenario
    /// on SQLite (the name without the prefix) at the same concurrency.
    pub ratio_to_sqlite: Option<f64>,
    /// `pg2-*` rows only: throughput of two nodes relative to one (`pg-*`).
    pub ratio_to_one_node: Option<f64>,
    /// Rows with a reference ([`reference_of`]): throughput relative to it.
    pub ratio_to_reference: Option<f64>,
    /// `jwt-with-*` rows: what the background load did meanwhile (over all rounds).
    pub background: Option<crate::background::BackgroundStats>,
    /// `jwt-with-*` rows: background answers other than the expected ones, and transport
    /// errors.
    pub background_unexpected: Option<u64>,
    pub sample_error: Option<String>,
}

/// Resident memory observations, KiB.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    /// Tessera RSS after start and client setup, before any load.
    pub tessera_idle_rss_kib: Option<u64>,
    /// Tessera RSS after all load.
    pub tessera_after_load_rss_kib: Option<u64>,
    /// Tessera peak RSS (VmHWM) after all load.
    pub tessera_peak_rss_kib: Option<u64>,
    /// Floor server RSS after start, for reference.
    pub floor_idle_rss_kib: Option<u64>,
}

/// One target check.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    pub name: String,
    pub target: String,
    pub measured: Option<String>,
    /// "PASS", "MISS" or "N/A" (not measured).
    pub status: &'static str,
}

/// Run parameters recorded alongside the results.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub unix_time: u64,
    pub cpus: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub concurrency: Vec<usize>,
    pub scenarios: Vec<String>,
    pub tessera_bin: Option<String>,
}

/// The informational comparison with the ES256 signing ceiling at
/// [`TARGET_CONCURRENCY`] (no target, no PASS/MISS).
#[derive(Clone, Debug, Serialize)]
pub struct SigningCeiling {
    pub concurrency: usize,
    /// `jwt` req/s ÷ `floor-es256` req/s.
    pub jwt_ratio_to_ceiling: Option<f64>,
    /// `floor-es256` req/s ÷ `floor` req/s.
    pub ceiling_ratio_to_floor: Option<f64>,
}

/// Everything written to the JSON file.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub run: RunInfo,
    pub results: Vec<ScenarioResult>,
    pub memory: Memory,
    pub targets: Vec<TargetCheck>,
    pub signing_ceiling: SigningCeiling,
}

/// Throughput of `scenario` at each measured concurrency.
fn rates(results: &[ScenarioResult], scenario: &str) -> Vec<(usize, f64)> {
    results
        .iter()
        .filter(|r| r.scenario == scenario)
        .map(|r| (r.concurrency, r.requests_per_second))
        .collect()
}

/// `rps` relative to the base rate measured at `concurrency`, if any.
fn ratio(base: &[(usize, f64)], concurrency: usize, rps: f64) -> Option<f64> {
    base.iter()
        .find(|(c, _)| *c == concurrency)
        .and_then(|(_, b)| (*b > 0.0).then(|| rps / b))
}

/// For a PostgreSQL scenario (`pg-X`, `pg2-X`): the SQLite scenario `X`, and
/// for `pg2-X` the one-node `pg-X`.
fn postgres_references(scenario: &str) -> Option<(&str, Option<String>)> {
    if let Some(sqlite) = scenario.strip_prefix("pg-") {
        return Some((sqlite, None));
    }
    scenario
        .strip_prefix("pg2-")
        .map(|sqlite| (sqlite, Some(format!("pg-{sqlite}"))))
}

/// Fills `ratio_to_floor` from the floor results at the same concurrency,
/// for `jwt` rows `ratio_to_ceiling` from the `floor-es256` results, and for
/// PostgreSQL rows the ratios to SQLite and to one node.
pub fn fill_ratios(results: &mut [ScenarioResult]) {
    let floors = rates(results, FLOOR);
    let ceilings = rates(results, CEILING);
    let snapshot: Vec<ScenarioResult> = results.to_vec();
    for result in results.iter_mut() {
        if let Some((sqlite, one_node)) = postgres_references(&result.scenario) {
            let (c, rps) = (result.concurrency, result.requests_per_second);
            result.ratio_to_sqlite = ratio(&rates(&snapshot, sqlite), c, rps);
            result.ratio_to_one_node = one_node.and_then(|n| ratio(&rates(&snapshot, &n), c, rps));
        }
        result.ratio_to_floor = ratio(&floors, result.concurrency, result.requests_per_second);
        result.ratio_to_reference = reference_of(&result.scenario).and_then(|reference| {
            ratio(
                &rates(&snapshot, reference),
                result.concurrency,
                result.requests_per_second,
            )
        });
        result.ratio_to_ceiling = if result.scenario == JWT {
            ratio(&ceilings, result.concurrency, result.requests_per_second)
        } else {
            None
        };
    }
}

/// The `jwt` vs signing-ceiling comparison at [`TARGET_CONCURRENCY`]; call
/// after [`fill_ratios`].
pub fn signing_ceiling(results: &[ScenarioResult]) -> SigningCeiling {
    let at = |scenario: &str| {
        results
            .iter()
            .find(|r| r.scenario == scenario && r.concurrency == TARGET_CONCURRENCY)
    };
    SigningCeiling {
        concurrency: TARGET_CONCURRENCY,
        jwt_ratio_to_ceiling: at(JWT).and_then(|r| r.ratio_to_ceiling),
        ceiling_ratio_to_floor: at(CEILING).and_then(|r| r.ratio_to_floor),
    }
}

/// Evaluates the targets at [`TARGET_CONCURRENCY`].
pub fn evaluate_targets(results: &[ScenarioResult], memory: &Memory) -> Vec<TargetCheck> {
    let at = |scenario: &str| {
        results
            .iter()
            .find(|r| r.scenario == scenario && r.concurrency == TARGET_CONCURRENCY)
    };
    let mut checks = Vec::new();
    for (scenario, min_ratio) in [
        ("jwt", 0.35),
        ("opaque", 0.15),
        ("introspect-jwt", 0.50),
        ("introspect-opaque", 0.50),
    ] {
        let result = at(scenario);
        let ratio = result.and_then(|r| r.ratio_to_floor);
        checks.push(TargetCheck {
            name: format!("{scenario} throughput @c{TARGET_CONCURRENCY}"),
            target: format!(">= {:.0}% of floor", min_ratio * 100.0),
            measured: ratio.map(|r| format!("{:.1}% of floor", r * 100.0)),
            status: status(ratio.map(|r| r >= min_ratio)),
        });
        let p99 = result.map(|r| r.p99_ms);
        checks.push(TargetCheck {
            name: format!("{scenario} p99 @c{TARGET_CONCURRENCY}"),
            target: format!("< {P99_TARGET_MS} ms"),
            measured: p99.map(|p| format!("{p:.3} ms")),
            status: status(p99.map(|p| p < P99_TARGET_MS)),
        });
    }
    // PostgreSQL (only when measured): opaque issuance at least half the
    // SQLite figure, introspection at least half the floor, and two nodes at
    // least as fast together as one.
    if results.iter().any(|r| r.scenario.starts_with("pg")) {
        for (scenario, what, min, measured) in [
            (
                "pg-opaque",
                "of sqlite",
                0.5,
                at("pg-opaque").and_then(|r| r.ratio_to_sqlite),
            ),
            (
                "pg-introspect-opaque",
                "of floor",
                0.5,
                at("pg-introspect-opaque").and_then(|r| r.ratio_to_floor),
            ),
            (
                "pg2-opaque",
                "of one node",
                1.0,
                at("pg2-opaque").and_then(|r| r.ratio_to_one_node),
            ),
            (
                "pg2-introspect-opaque",
                "of one node",
                1.0,
                at("pg2-introspect-opaque").and_then(|r| r.ratio_to_one_node),
            ),
        ] {
            checks.push(TargetCheck {
                name: format!("{scenario} throughput @c{TARGET_CONCURRENCY}"),
                target: format!(">= {:.0}% {what}", min * 100.0),
                measured: measured.map(|r| format!("{:.1}% {what}", r * 100.0)),
                status: status(measured.map(|r| r >= min)),
            });
        }
    }
    for (scenario, what, min) in [(TOKEN_EXCHANGE, "of jwt", TOKEN_EXCHANGE_MIN)]
        .into_iter()
        .chain(DPOP.iter().map(|(dpop, _)| (*dpop, "of bearer", DPOP_MIN)))
        .chain(
            PAIRED
                .iter()
                .map(|(with, _)| (*with, "of alone", BESIDE_BACKGROUND_MIN)),
        )
    {
        if !results.iter().any(|r| r.scenario == scenario) {
            continue;
        }
        let measured = at(scenario).and_then(|r| r.ratio_to_reference);
        checks.push(TargetCheck {
            name: format!("{scenario} throughput @c{TARGET_CONCURRENCY}"),
            target: format!(">= {:.0}% {what}", min * 100.0),
            measured: measured.map(|r| format!("{:.1}% {what}", r * 100.0)),
            status: status(measured.map(|r| r >= min)),
        });
        if !PAIRED.iter().any(|(with, _)| *with == scenario) {
            continue;
        }
        let unexpected: Option<u64> = results
            .iter()
            .filter(|r| r.scenario == scenario)
            .map(|r| r.background_unexpected)
            .sum();
        checks.push(TargetCheck {
            name: format!("{scenario} background answers"),
            target: "all as expected".to_owned(),
            measured: unexpected.map(|n| format!("{n} unexpected")),
            status: status(unexpected.map(|n| n == 0)),
        });
    }
    let idle_mb = memory
        .tessera_idle_rss_kib
        .map(|kib| kib as f64 * 1024.0 / 1e6);
    checks.push(TargetCheck {
        name: "tessera idle RSS".to_owned(),
        target: format!("< {IDLE_RSS_TARGET_MB} MB"),
        measured: idle_mb.map(|mb| format!("{mb:.1} MB")),
        status: status(idle_mb.map(|mb| mb < IDLE_RSS_TARGET_MB)),
    });
    checks
}

fn status(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "N/A",
    }
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

fn kib_to_mb(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MB", k as f64 * 1024.0 / 1e6),
    )
}

/// The human-readable report: results table, memory, targets.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let postgres = report.results.iter().any(|r| r.ratio_to_sqlite.is_some());
    let _ = write!(
        out,
        "\n{:<22} {:>5} {:>11} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8}",
        "scenario",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs floor",
        "vs ceiling",
        "vs ref",
        "errors"
    );
    if postgres {
        let _ = write!(out, " {:>10} {:>10}", "vs sqlite", "vs 1 node");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", "-".repeat(if postgres { 121 } else { 99 }));
    for r in &report.results {
        let vs_floor = percent(r.ratio_to_floor);
        // Only the jwt rows are compared with the signing ceiling.
        let vs_ceiling = if r.scenario == JWT {
            percent(r.ratio_to_ceiling)
        } else {
            String::new()
        };
        let vs_reference = r
            .ratio_to_reference
            .map_or_else(String::new, |x| percent(Some(x)));
        let _ = write!(
            out,
            "{:<22} {:>5} {:>11.0} {:>9.3} {:>9.3} {:>9} {:>10} {:>8} {:>8}",
            r.scenario,
            r.concurrency,
            r.requests_per_second,
            r.p50_ms,
            r.p99_ms,
            vs_floor,
            vs_ceiling,
            vs_reference,
            r.errors
        );
        if postgres {
            let or_blank = |x: Option<f64>| x.map_or_else(String::new, |x| percent(Some(x)));
            let _ = write!(
                out,
                " {:>10} {:>10}",
                or_blank(r.ratio_to_sqlite),
                or_blank(r.ratio_to_one_node)
            );
        }
        let _ = writeln!(out);
    }
    let referenced: Vec<&ScenarioResult> = report
        .results
        .iter()
        .filter(|r| reference_of(&r.scenario).is_some())
        .collect();
    if !referenced.is_empty() {
        let _ = writeln!(
            out,
            "\nvs ref: the rate relative to, at the same concurrency:"
        );
        let mut seen = Vec::new();
        for r in referenced {
            if let Some(reference) = reference_of(&r.scenario) {
                if !seen.contains(&r.scenario.as_str()) {
                    seen.push(&r.scenario);
                    let _ = writeln!(out, "  {:<22} {reference}", r.scenario);
                }
            }
        }
    }
    let backgrounds: Vec<&ScenarioResult> = report
        .results
        .iter()
        .filter(|r| r.background.is_some())
        .collect();
    if !backgrounds.is_empty() {
        let _ = writeln!(out, "\nbackground loads (over all rounds):");
        for r in backgrounds {
            if let Some(bg) = &r.background {
                let answers: Vec<String> = bg
                    .answers
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {} @c{}: {}; {:.0}/s answered ({}), {} sends skipped, {} transport errors",
                    r.scenario,
                    r.concurrency,
                    bg.description,
                    bg.achieved_per_second,
                    answers.join(", "),
                    bg.skipped,
                    bg.transport_errors
                );
            }
        }
    }
    let errored: Vec<&ScenarioResult> = report
        .results
        .iter()
        .filter(|r| r.sample_error.is_some())
        .collect();
    if !errored.is_empty() {
        let _ = writeln!(out, "\nsample errors:");
        for r in errored {
            let _ = writeln!(
                out,
                "  {} @c{}: {}",
                r.scenario,
                r.concurrency,
                r.sample_error.as_deref().unwrap_or_default()
            );
        }
    }

    let m = &report.memory;
    if m.tessera_idle_rss_kib.is_some() || m.floor_idle_rss_kib.is_some() {
        let _ = writeln!(out, "\nmemory (RSS):");
        let _ = writeln!(
            out,
            "  tessera idle        {}",
            kib_to_mb(m.tessera_idle_rss_kib)
        );
        let _ = writeln!(
            out,
            "  tessera after load  {}",
            kib_to_mb(m.tessera_after_load_rss_kib)
        );
        let _ = writeln!(
            out,
            "  tessera peak        {}",
            kib_to_mb(m.tessera_peak_rss_kib)
        );
        let _ = writeln!(
            out,
            "  floor idle          {}",
            kib_to_mb(m.floor_idle_rss_kib)
        );
    }

    let _ = writeln!(out, "\ntargets (at concurrency {TARGET_CONCURRENCY}):");
    for t in &report.targets {
        let _ = writeln!(
            out,
            "  {:<4} {:<40} target {:<20} measured {}",
            t.status,
            t.name,
            t.target,
            t.measured.as_deref().unwrap_or("n/a")
        );
    }
    // Informational, no target: the status column stays blank.
    let c = &report.signing_ceiling;
    let _ = writeln!(
        out,
        "       jwt vs ES256 signing ceiling  measured {}  (ceiling is {} of floor)",
        percent(c.jwt_ratio_to_ceiling),
        percent(c.ceiling_ratio_to_floor)
    );
    out
}

/// Writes the report as pretty JSON, creating the parent directory.
pub fn write_json(report: &Report, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    let json = serde_json::to_string_pretty(report).context("serializing report")?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(scenario: &str, concurrency: usize, rps: f64, p99: f64) -> ScenarioResult {
        ScenarioResult {
            scenario: scenario.to_owned(),
            concurrency,
            requests: 0,
            errors: 0,
            duration_s: 1.0,
            requests_per_second: rps,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: p99,
            p999_ms: 0.0,
            max_ms: 0.0,
            mean_ms: 0.0,
            ratio_to_floor: None,
            ratio_to_ceiling: None,
            ratio_to_sqlite: None,
            ratio_to_one_node: None,
            ratio_to_reference: None,
            background: None,
            background_unexpected: None,
            sample_error: None,
        }
    }

    #[test]
    fn ratios_and_targets() {
        let mut results = vec![
            result("floor", 64, 1000.0, 1.0),
            result("jwt", 64, 400.0, 5.0),
            result("opaque", 64, 100.0, 20.0),
            result("jwt", 16, 100.0, 1.0),
        ];
        fill_ratios(&mut results);
        assert_eq!(results[1].ratio_to_floor, Some(0.4));
        assert_eq!(results[3].ratio_to_floor, None);
        let memory = Memory {
            tessera_idle_rss_kib: Some(10_000),
            ..Memory::default()
        };
        let targets = evaluate_targets(&results, &memory);
        let get = |name: &str| targets.iter().find(|t| t.name == name).unwrap().status;
        assert_eq!(get("jwt throughput @c64"), "PASS");
        assert_eq!(get("jwt p99 @c64"), "PASS");
        assert_eq!(get("opaque throughput @c64"), "MISS");
        assert_eq!(get("opaque p99 @c64"), "MISS");
        assert_eq!(get("introspect-jwt throughput @c64"), "N/A");
        assert_eq!(get("tessera idle RSS"), "PASS");
        let ceiling = signing_ceiling(&results);
        assert_eq!(ceiling.jwt_ratio_to_ceiling, None);
        assert_eq!(ceiling.ceiling_ratio_to_floor, None);
    }

    #[test]
    fn signing_ceiling_ratios() {
        let mut results = vec![
            result("floor", 64, 1000.0, 1.0),
            result("floor-es256", 64, 500.0, 1.0),
            result("jwt", 64, 400.0, 5.0),
            result("opaque", 64, 100.0, 20.0),
            result("jwt", 16, 100.0, 1.0),
        ];
        fill_ratios(&mut results);
        assert_eq!(results[1].ratio_to_floor, Some(0.5));
        assert_eq!(results[1].ratio_to_ceiling, None);
        assert_eq!(results[2].ratio_to_ceiling, Some(0.8));
        assert_eq!(results[3].ratio_to_ceiling, None);
        assert_eq!(results[4].ratio_to_ceiling, None);
        let ceiling = signing_ceiling(&results);
        assert_eq!(ceiling.concurrency, 64);
        assert_eq!(ceiling.jwt_ratio_to_ceiling, Some(0.8));
        assert_eq!(ceiling.ceiling_ratio_to_floor, Some(0.5));
        // The existing targets are not affected by the ceiling row.
        let targets = evaluate_targets(&results, &Memory::default());
        assert_eq!(targets.len(), 9);
        assert!(targets.iter().all(|t| !t.name.contains("floor-es256")));
    }

    #[test]
    fn references_and_their_targets() {
        let mut results = vec![
            result("jwt-ref-exchange", 64, 1000.0, 1.0),
            result("token-exchange", 64, 450.0, 1.0),
            result("token-exchange", 16, 450.0, 1.0),
            result("jwt-alone-par", 64, 800.0, 1.0),
            result("jwt-with-par", 64, 760.0, 1.0),
        ];
        results[4].background_unexpected = Some(0);
        fill_ratios(&mut results);
        assert_eq!(results[1].ratio_to_reference, Some(0.45));
        assert_eq!(results[2].ratio_to_reference, None);
        assert_eq!(results[3].ratio_to_reference, None);
        assert_eq!(results[4].ratio_to_reference, Some(0.95));
        let targets = evaluate_targets(&results, &Memory::default());
        let get = |name: &str| targets.iter().find(|t| t.name == name).unwrap().status;
        assert_eq!(get("token-exchange throughput @c64"), "MISS");
        assert_eq!(get("jwt-with-par throughput @c64"), "PASS");
        assert_eq!(get("jwt-with-par background answers"), "PASS");

        results[4].requests_per_second = 700.0;
        results[4].background_unexpected = Some(3);
        fill_ratios(&mut results);
        let targets = evaluate_targets(&results, &Memory::default());
        let get = |name: &str| targets.iter().find(|t| t.name == name).unwrap().status;
        assert_eq!(get("jwt-with-par throughput @c64"), "MISS");
        assert_eq!(get("jwt-with-par background answers"), "MISS");
        // Not measured: no line for it.
        assert!(targets.iter().all(|t| !t.name.contains("device")));
    }

    #[test]
    fn dpop_issuance_is_compared_with_bearer_issuance() {
        let mut results = vec![
            result("jwt-ref-dpop", 64, 1000.0, 1.0),
            result("jwt-dpop", 64, 650.0, 1.0),
            result("pg-jwt-ref-dpop", 64, 800.0, 1.0),
            result("pg-jwt-dpop", 64, 400.0, 1.0),
        ];
        fill_ratios(&mut results);
        assert_eq!(results[1].ratio_to_reference, Some(0.65));
        assert_eq!(results[3].ratio_to_reference, Some(0.5));
        assert_eq!(results[0].ratio_to_reference, None);
        // The PostgreSQL rows are also set beside SQLite's.
        assert_eq!(results[3].ratio_to_sqlite, Some(400.0 / 650.0));
        let targets = evaluate_targets(&results, &Memory::default());
        let get = |name: &str| targets.iter().find(|t| t.name == name).unwrap().status;
        assert_eq!(get("jwt-dpop throughput @c64"), "PASS");
        assert_eq!(get("pg-jwt-dpop throughput @c64"), "MISS");
        // No background: no answers line.
        assert!(targets.iter().all(|t| !t.name.contains("dpop background")));
    }
}
