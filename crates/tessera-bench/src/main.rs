//! `tessera-bench`: the command line and the orchestration of one bench run
//! (floor server, then the signing floor, then the Tessera scenarios, each at
//! every concurrency), plus the hidden `floor` subcommand the bench
//! re-executes itself with.
//!
//! The paired scenarios measure two loads interleaved in rounds (A, B, B, A, ...), so a
//! change in the machine's other load during the run weighs on both alike: token exchange
//! beside client-credentials JWT issuance, and (`jwt-with-par`, `jwt-with-device`,
//! `opaque-with-device`) client-credentials issuance alone and beside a paced background
//! load, and (`jwt-dpop`, `pg-jwt-dpop`) client-credentials JWT issuance with a DPoP proof
//! (RFC 9449) beside the same issuance of bearer tokens.

// A measuring tool, not a request path: slicing of buffers it built itself is allowed.
#![allow(clippy::indexing_slicing)]

mod background;
mod conn;
mod dpop;
mod floor;
mod flows;
mod loadgen;
mod postgres;
mod process;
mod report;
mod tessera;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};

use crate::background::{Background, BackgroundStats, Stream};
use crate::conn::RequestTemplate;
use crate::floor::FloorProcess;
use crate::loadgen::{Check, LoadResult, LoadSpec};
use crate::report::{Memory, Report, RunInfo, ScenarioResult};
use crate::tessera::{ClientCredentials, TesseraServer, TokenFormat};

/// Benchmarks the Tessera token and introspection endpoints against a
/// minimal-axum "floor" on the same machine.
#[derive(Parser, Debug)]
#[command(
    name = "tessera-bench",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the floor handler (used internally by the bench).
    #[command(hide = true)]
    Floor {
        #[arg(long)]
        listen: SocketAddr,
        /// Also sign one ES256 JWT per request (the signing ceiling).
        #[arg(long)]
        sign_es256: bool,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Path to the tessera binary [default: target/release/tessera in the
    /// workspace containing the current directory].
    #[arg(long, env = "TESSERA_BENCH_BIN")]
    tessera: Option<PathBuf>,

    /// Measured seconds per scenario and concurrency.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,

    /// Warm-up seconds before each measurement (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,

    /// Concurrency levels (connections), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,

    /// Scenarios to run, comma separated [default: all].
    #[arg(long, value_delimiter = ',')]
    only: Vec<Scenario>,

    /// Rounds of the paired scenarios (`token-exchange` with JWT issuance, `*-with-*` with
    /// the same issuance alone): each round measures both for `duration / rounds` seconds
    /// (plus a warm-up), alternating which comes first.
    #[arg(long, default_value_t = 8)]
    rounds: usize,

    /// Pushed authorization requests per second in the background of `jwt-with-par`.
    #[arg(long, default_value_t = 200.0)]
    par_rate: f64,

    /// Pending device codes polled politely at their interval in the background of
    /// `jwt-with-device` and `opaque-with-device`.
    #[arg(long, default_value_t = 2000)]
    device_codes: usize,

    /// Further pending device codes polled every second whatever the server says (too
    /// fast: answered `slow_down`).
    #[arg(long, default_value_t = 50)]
    device_fast: usize,

    /// Connections the background load is spread over.
    #[arg(long, default_value_t = 8)]
    background_connections: usize,

    /// Number of tokens obtained up front and cycled through by the
    /// introspection scenarios.
    #[arg(long, default_value_t = 100)]
    token_pool: usize,

    /// A PostgreSQL server to also measure on (a role that may create
    /// databases, and a database to connect to for that). The bench creates a
    /// database of its own there, runs the `pg-*` scenarios on one node and the
    /// `pg2-*` scenarios on two nodes over it, and drops it at the end.
    #[arg(long, env = "TESSERA_BENCH_POSTGRES_URL")]
    postgres: Option<String>,

    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results/latest.json")]
    out: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Floor,
    /// The floor handler plus one ES256 JWT signature per request.
    #[value(name = "floor-es256")]
    FloorEs256,
    Jwt,
    Opaque,
    IntrospectJwt,
    IntrospectOpaque,
    /// Token exchange (RFC 8693) of users' JWT access tokens, narrowing the audience,
    /// interleaved with JWT issuance (`jwt-ref-exchange`).
    TokenExchange,
    /// Pushed authorization requests (RFC 9126) to `/oauth2/par`.
    Par,
    /// JWT issuance alone and beside a steady background of pushed authorization requests.
    JwtWithPar,
    /// JWT issuance alone and beside many pending device codes being polled.
    JwtWithDevice,
    /// Opaque issuance (a durable write each) alone and beside device codes being polled.
    OpaqueWithDevice,
    /// JWT issuance with a DPoP proof per request (RFC 9449), interleaved with bearer JWT
    /// issuance (`jwt-ref-dpop`).
    JwtDpop,
    /// Opaque issuance, one node over PostgreSQL.
    #[value(name = "pg-opaque")]
    PgOpaque,
    /// Introspection of opaque tokens, one node over PostgreSQL.
    #[value(name = "pg-introspect-opaque")]
    PgIntrospectOpaque,
    /// JWT issuance with a DPoP proof per request, interleaved with bearer JWT issuance,
    /// one node over PostgreSQL.
    #[value(name = "pg-jwt-dpop")]
    PgJwtDpop,
    /// Opaque issuance, two nodes over one PostgreSQL (the load split between them).
    #[value(name = "pg2-opaque")]
    Pg2Opaque,
    /// Introspection of opaque tokens, two nodes over one PostgreSQL.
    #[value(name = "pg2-introspect-opaque")]
    Pg2IntrospectOpaque,
}

impl Scenario {
    const ALL: [Scenario; 17] = [
        Scenario::Floor,
        Scenario::FloorEs256,
        Scenario::Jwt,
        Scenario::Opaque,
        Scenario::IntrospectJwt,
        Scenario::IntrospectOpaque,
        Scenario::TokenExchange,
        Scenario::Par,
        Scenario::JwtWithPar,
        Scenario::JwtWithDevice,
        Scenario::OpaqueWithDevice,
        Scenario::JwtDpop,
        Scenario::PgOpaque,
        Scenario::PgIntrospectOpaque,
        Scenario::PgJwtDpop,
        Scenario::Pg2Opaque,
        Scenario::Pg2IntrospectOpaque,
    ];

    /// Whether the scenario is served by a floor process (not Tessera).
    fn is_floor(self) -> bool {
        matches!(self, Scenario::Floor | Scenario::FloorEs256)
    }

    /// Whether the scenario runs over PostgreSQL (and needs `--postgres`).
    fn is_postgres(self) -> bool {
        matches!(
            self,
            Scenario::PgOpaque
                | Scenario::PgIntrospectOpaque
                | Scenario::PgJwtDpop
                | Scenario::Pg2Opaque
                | Scenario::Pg2IntrospectOpaque
        )
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::Floor => "floor",
            Scenario::FloorEs256 => "floor-es256",
            Scenario::Jwt => "jwt",
            Scenario::Opaque => "opaque",
            Scenario::IntrospectJwt => "introspect-jwt",
            Scenario::IntrospectOpaque => "introspect-opaque",
            Scenario::TokenExchange => "token-exchange",
            Scenario::Par => "par",
            Scenario::JwtWithPar => "jwt-with-par",
            Scenario::JwtWithDevice => "jwt-with-device",
            Scenario::OpaqueWithDevice => "opaque-with-device",
            Scenario::JwtDpop => "jwt-dpop",
            Scenario::PgJwtDpop => "pg-jwt-dpop",
            Scenario::PgOpaque => "pg-opaque",
            Scenario::PgIntrospectOpaque => "pg-introspect-opaque",
            Scenario::Pg2Opaque => "pg2-opaque",
            Scenario::Pg2IntrospectOpaque => "pg2-introspect-opaque",
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(Cmd::Floor { listen, sign_es256 }) = cli.command {
        return floor::serve(listen, sign_es256);
    }
    let args = cli.run;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building tokio runtime")?;
    let report = runtime.block_on(bench(&args))?;
    print!("{}", report::render(&report));
    report::write_json(&report, &args.out)?;
    println!("\nresults written to {}", args.out.display());
    Ok(())
}

/// Validated run settings.
struct Settings {
    scenarios: Vec<Scenario>,
    concurrency: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    token_pool: usize,
    rounds: usize,
    par_rate: f64,
    device_codes: usize,
    device_fast: usize,
    background_connections: usize,
}

impl Settings {
    fn from_args(args: &RunArgs) -> Result<Self> {
        if args.postgres.is_none() && args.only.iter().any(|s| s.is_postgres()) {
            bail!("the pg-* scenarios need --postgres URL (or TESSERA_BENCH_POSTGRES_URL)");
        }
        let scenarios: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|s| args.only.is_empty() || args.only.contains(s))
            .filter(|s| args.postgres.is_some() || !s.is_postgres())
            .collect();
        if args.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        if !(args.par_rate > 0.0 && args.par_rate.is_finite()) {
            bail!("--par-rate must be positive");
        }
        let mut concurrency = Vec::new();
        for &c in &args.concurrency {
            if c == 0 {
                bail!("--concurrency values must be at least 1");
            }
            if !concurrency.contains(&c) {
                concurrency.push(c);
            }
        }
        if concurrency.is_empty() {
            bail!("--concurrency is empty");
        }
        if args.duration <= 0.0 {
            bail!("--duration must be positive");
        }
        let duration = Duration::try_from_secs_f64(args.duration).context("--duration")?;
        let warmup = Duration::try_from_secs_f64(args.warmup).context("--warmup")?;
        Ok(Self {
            scenarios,
            concurrency,
            warmup,
            duration,
            token_pool: args.token_pool.max(1),
            rounds: args.rounds,
            par_rate: args.par_rate,
            device_codes: args.device_codes,
            device_fast: args.device_fast,
            background_connections: args.background_connections.max(1),
        })
    }

    fn wants(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }
}

/// Default tessera binary: `target/release/tessera` under the nearest
/// ancestor of the current directory whose Cargo.toml has `[workspace]`.
fn default_tessera_bin() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("current dir")?;
    let root = cwd
        .ancestors()
        .find(|dir| is_workspace_root(dir))
        .unwrap_or(&cwd)
        .to_path_buf();
    Ok(root.join("target").join("release").join("tessera"))
}

fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .map(|text| text.contains("[workspace]"))
        .unwrap_or(false)
}

async fn bench(args: &RunArgs) -> Result<Report> {
    let settings = Settings::from_args(args)?;
    let needs_tessera = settings.scenarios.iter().any(|s| !s.is_floor());
    let tessera_bin = if needs_tessera {
        let bin = match &args.tessera {
            Some(path) => path.clone(),
            None => default_tessera_bin()?,
        };
        // Fail before spending time on the floor runs.
        if !bin.is_file() {
            bail!(
                "tessera binary not found at {} (build it with `cargo build --release -p \
                 tessera` or pass --tessera PATH; use --only floor,floor-es256 to skip the \
                 server)",
                bin.display()
            );
        }
        Some(bin)
    } else {
        None
    };

    let mut results = Vec::new();
    let mut memory = Memory::default();

    for scenario in [Scenario::Floor, Scenario::FloorEs256] {
        if settings.wants(scenario) {
            run_floor(&settings, scenario, &mut results, &mut memory).await?;
        }
    }
    if let Some(bin) = &tessera_bin {
        eprintln!("starting {} serve ...", bin.display());
        let mut server = TesseraServer::start(bin).await?;
        let outcome = run_tessera(&settings, &mut server, &mut results, &mut memory).await;
        let outcome = outcome.with_context(|| format!("server log tail:\n{}", server.log_tail()));
        let stopped = server.guard.stop();
        outcome?;
        match stopped {
            Ok(status) => eprintln!("tessera server stopped: {status}"),
            Err(err) => eprintln!("warning: stopping tessera: {err:#}"),
        }
        if let Some(url) = &args.postgres {
            if settings.scenarios.iter().any(|s| s.is_postgres()) {
                run_postgres(&settings, bin, url, &mut results).await?;
            }
        }
    }

    report::fill_ratios(&mut results);
    let targets = report::evaluate_targets(&results, &memory);
    let signing_ceiling = report::signing_ceiling(&results);
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(Report {
        run: RunInfo {
            unix_time,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            duration_s: settings.duration.as_secs_f64(),
            warmup_s: settings.warmup.as_secs_f64(),
            concurrency: settings.concurrency.clone(),
            scenarios: settings
                .scenarios
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
            tessera_bin: tessera_bin.map(|p| p.display().to_string()),
        },
        results,
        memory,
        targets,
        signing_ceiling,
    })
}

/// Runs one floor scenario (`floor` or `floor-es256`) at every concurrency,
/// each in its own floor process.
async fn run_floor(
    settings: &Settings,
    scenario: Scenario,
    results: &mut Vec<ScenarioResult>,
    memory: &mut Memory,
) -> Result<()> {
    let sign_es256 = scenario == Scenario::FloorEs256;
    eprintln!("starting {} server ...", scenario.name());
    let mut floor = FloorProcess::start(sign_es256).await?;
    if !sign_es256 {
        memory.floor_idle_rss_kib = floor.guard.rss_kib().ok();
    }
    // Same request shape as the tessera token scenario (Basic auth included).
    let template = RequestTemplate::form_post(
        floor.addr,
        "/oauth2/token",
        vec![Bytes::from_static(b"grant_type=client_credentials")],
    )?
    .with_basic_auth("floor-client", "floor-secret")?;
    let template = Arc::new(template);
    for &concurrency in &settings.concurrency {
        let result = measure(
            settings,
            scenario,
            &[floor.addr],
            &template,
            Check::Status,
            concurrency,
        )
        .await?;
        results.push(result);
    }
    floor.guard.stop()?;
    Ok(())
}

async fn run_tessera(
    settings: &Settings,
    server: &mut TesseraServer,
    results: &mut Vec<ScenarioResult>,
    memory: &mut Memory,
) -> Result<()> {
    let wants_jwt = [
        Scenario::Jwt,
        Scenario::IntrospectJwt,
        Scenario::TokenExchange,
        Scenario::JwtWithPar,
        Scenario::JwtWithDevice,
        Scenario::JwtDpop,
    ]
    .into_iter()
    .any(|s| settings.wants(s));
    let wants_opaque = [
        Scenario::Opaque,
        Scenario::IntrospectOpaque,
        Scenario::OpaqueWithDevice,
    ]
    .into_iter()
    .any(|s| settings.wants(s));

    let jwt_client = if wants_jwt {
        Some(setup_client(server, "bench-jwt", TokenFormat::Jwt).await?)
    } else {
        None
    };
    let opaque_client = if wants_opaque {
        Some(setup_client(server, "bench-opaque", TokenFormat::Opaque).await?)
    } else {
        None
    };
    memory.tessera_idle_rss_kib = Some(server.guard.rss_kib()?);

    for scenario in settings.scenarios.iter().copied() {
        let (template, check) = match scenario {
            Scenario::Floor
            | Scenario::FloorEs256
            | Scenario::PgOpaque
            | Scenario::PgIntrospectOpaque
            | Scenario::PgJwtDpop
            | Scenario::Pg2Opaque
            | Scenario::Pg2IntrospectOpaque => continue,
            Scenario::Jwt
            | Scenario::Opaque
            | Scenario::IntrospectJwt
            | Scenario::IntrospectOpaque => {
                let (client, introspect) = match scenario {
                    Scenario::Jwt => (&jwt_client, false),
                    Scenario::Opaque => (&opaque_client, false),
                    Scenario::IntrospectJwt => (&jwt_client, true),
                    _ => (&opaque_client, true),
                };
                let client = client
                    .as_ref()
                    .context("client for scenario was not created")?;
                if introspect {
                    let tokens = server.fetch_tokens(client, settings.token_pool).await?;
                    (server.introspect_template(client, &tokens)?, Check::Active)
                } else {
                    (server.token_template(client)?, Check::Status)
                }
            }
            Scenario::TokenExchange => {
                let client = jwt_client
                    .as_ref()
                    .context("client for scenario was not created")?;
                let issue = Arc::new(server.token_template(client)?);
                let exchange = flows::Exchange::set_up(server, settings.token_pool).await?;
                let exchange = Arc::new(exchange.template(server)?);
                for &concurrency in &settings.concurrency {
                    if let Some(status) = server.guard.exited() {
                        bail!("tessera server exited: {status}");
                    }
                    let (jwt, exchanged) = measure_paired(
                        settings,
                        Side::plain("jwt-ref-exchange", &issue),
                        Side::plain("token-exchange", &exchange),
                        server.addr,
                        None,
                        concurrency,
                    )
                    .await?;
                    results.push(jwt);
                    results.push(exchanged);
                }
                continue;
            }
            Scenario::JwtDpop => {
                let client = jwt_client
                    .as_ref()
                    .context("client for scenario was not created")?;
                let pair = DpopPair::set_up(server, client).await?;
                for &concurrency in &settings.concurrency {
                    if let Some(status) = server.guard.exited() {
                        bail!("tessera server exited: {status}");
                    }
                    let (bearer, dpop) =
                        pair.measure(settings, server.addr, "", concurrency).await?;
                    results.push(bearer);
                    results.push(dpop);
                }
                continue;
            }
            Scenario::Par => (
                flows::par_template(server, settings.token_pool).await?,
                Check::Status,
            ),
            Scenario::JwtWithPar | Scenario::JwtWithDevice | Scenario::OpaqueWithDevice => {
                let (client, names) = match scenario {
                    Scenario::JwtWithPar => (&jwt_client, ("jwt-alone-par", "jwt-with-par")),
                    Scenario::JwtWithDevice => {
                        (&jwt_client, ("jwt-alone-device", "jwt-with-device"))
                    }
                    _ => (
                        &opaque_client,
                        ("opaque-alone-device", "opaque-with-device"),
                    ),
                };
                let client = client
                    .as_ref()
                    .context("client for scenario was not created")?;
                let issue = Arc::new(server.token_template(client)?);
                let mut background = if scenario == Scenario::JwtWithPar {
                    par_background(settings, server).await?
                } else {
                    device_background(settings, server).await?
                };
                for &concurrency in &settings.concurrency {
                    if let Some(status) = server.guard.exited() {
                        bail!("tessera server exited: {status}");
                    }
                    let (alone, with) = measure_paired(
                        settings,
                        Side::plain(names.0, &issue),
                        Side::plain(names.1, &issue),
                        server.addr,
                        Some(&mut background),
                        concurrency,
                    )
                    .await?;
                    results.push(alone);
                    results.push(with);
                }
                continue;
            }
        };
        let template = Arc::new(template);
        for &concurrency in &settings.concurrency {
            if let Some(status) = server.guard.exited() {
                bail!("tessera server exited: {status}");
            }
            let result = measure(
                settings,
                scenario,
                &[server.addr],
                &template,
                check,
                concurrency,
            )
            .await?;
            results.push(result);
        }
    }

    memory.tessera_after_load_rss_kib = server.guard.rss_kib().ok();
    memory.tessera_peak_rss_kib = server.guard.peak_rss_kib().ok();
    Ok(())
}

/// A background load: what it is, its request, its streams and what its answers should be.
struct BackgroundSpec {
    description: String,
    template: Arc<RequestTemplate>,
    streams: Vec<Stream>,
    connections: usize,
    expected: &'static [&'static str],
}

/// Pushed authorization requests at `--par-rate` per second, one stream per background
/// connection (each sending every `connections / rate` seconds).
async fn par_background(settings: &Settings, server: &TesseraServer) -> Result<BackgroundSpec> {
    let template = Arc::new(flows::par_template(server, settings.token_pool).await?);
    let connections = settings.background_connections;
    let period = Duration::from_secs_f64(connections as f64 / settings.par_rate);
    let streams = (0..connections)
        .map(|body| Stream {
            body,
            period,
            polite: false,
            resume_after: None,
        })
        .collect();
    Ok(BackgroundSpec {
        description: format!(
            "{} pushed authorization requests/s over {connections} connections",
            settings.par_rate
        ),
        template,
        streams,
        connections,
        expected: &["201"],
    })
}

/// `--device-codes` pending device codes polled politely at the interval the server gave
/// (RFC 8628 §3.5), and `--device-fast` more polled every second whatever the answer (each
/// answered `slow_down`).
async fn device_background(settings: &Settings, server: &TesseraServer) -> Result<BackgroundSpec> {
    let total = settings.device_codes + settings.device_fast;
    let codes = flows::DeviceCodes::set_up(server, total).await?;
    let streams = (0..total)
        .map(|body| {
            let fast = body >= settings.device_codes;
            Stream {
                body,
                period: if fast {
                    Duration::from_secs(1)
                } else {
                    codes.interval
                },
                polite: !fast,
                resume_after: None,
            }
        })
        .collect();
    Ok(BackgroundSpec {
        description: format!(
            "{} device codes polled every {} s and {} every second (too fast)",
            settings.device_codes,
            codes.interval.as_secs(),
            settings.device_fast
        ),
        template: Arc::new(codes.poll),
        streams,
        connections: settings.background_connections,
        expected: &["400 authorization_pending", "400 slow_down"],
    })
}

/// A closed-loop load of an interleaved measurement: its row's name, its request, what its
/// answers must say, and the DPoP proofs its requests use up, if they do.
struct Side<'a> {
    name: &'a str,
    template: &'a Arc<RequestTemplate>,
    check: Check,
    proofs: Option<&'a dpop::Proofs>,
}

impl<'a> Side<'a> {
    /// A load whose answers need only be 2xx.
    fn plain(name: &'a str, template: &'a Arc<RequestTemplate>) -> Self {
        Self {
            name,
            template,
            check: Check::Status,
            proofs: None,
        }
    }
}

/// Rate assumed for the first DPoP proofs when nothing was measured yet in the pair.
const FIRST_PROOF_RATE: f64 = 20_000.0;

/// How many proofs a segment of `secs` seconds (warm-up included) needs: half as many
/// again as the fastest rate seen so far in the pair would use, and at least 2,000.
fn proofs_needed(totals: &[Option<LoadResult>], secs: f64) -> usize {
    let fastest = totals
        .iter()
        .flatten()
        .map(|t| (t.ok + t.errors) as f64 / t.window.as_secs_f64().max(1e-3))
        .fold(0.0, f64::max);
    let rate = if fastest > 0.0 {
        fastest
    } else {
        FIRST_PROOF_RATE
    };
    (rate * secs * 1.5) as usize + 2_000
}

/// Client-credentials JWT issuance for one client with bearer tokens (the reference) and
/// with a DPoP proof per request (RFC 9449 §5), one fresh proof each.
struct DpopPair {
    bearer: Arc<RequestTemplate>,
    dpop: Arc<RequestTemplate>,
    proofs: dpop::Proofs,
}

impl DpopPair {
    /// The two requests, and one DPoP request sent first: the server must answer it with a
    /// DPoP-bound token, or the bench stops here (a server ignoring proofs is not measured).
    async fn set_up(server: &TesseraServer, client: &ClientCredentials) -> Result<Self> {
        let htu = format!("{}/oauth2/token", server.issuer().trim_end_matches('/'));
        let proofs = dpop::Proofs::new(&htu)?;
        let bearer = Arc::new(server.token_template(client)?);
        let dpop = Arc::new(server.token_template(client)?.with_once_header(
            http::HeaderName::from_static("dpop"),
            Arc::clone(&proofs.pool),
        ));
        proofs.refill(1).await?;
        let request = dpop.next(0).context("no DPoP proof")?;
        let (status, body) = conn::one_shot(server.addr, request).await?;
        let token_type = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("token_type")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned)
            });
        if !status.is_success() || token_type.as_deref() != Some("DPoP") {
            bail!(
                "the server did not issue a DPoP-bound token for a request with a DPoP proof \
                 (HTTP {status}: {})",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(Self {
            bearer,
            dpop,
            proofs,
        })
    }

    /// Both loads in interleaved rounds at `concurrency`: rows `{prefix}jwt-ref-dpop` and
    /// `{prefix}jwt-dpop`.
    async fn measure(
        &self,
        settings: &Settings,
        addr: SocketAddr,
        prefix: &str,
        concurrency: usize,
    ) -> Result<(ScenarioResult, ScenarioResult)> {
        let (reference, measured) = (format!("{prefix}jwt-ref-dpop"), format!("{prefix}jwt-dpop"));
        measure_paired(
            settings,
            Side::plain(&reference, &self.bearer),
            Side {
                name: &measured,
                template: &self.dpop,
                check: Check::Dpop,
                proofs: Some(&self.proofs),
            },
            addr,
            None,
            concurrency,
        )
        .await
    }
}

/// Two loads measured in `settings.rounds` rounds, each round one segment of each
/// (alternating which comes first), so a change in the machine's other load during the run
/// weighs on both alike: `reference`, then `measured`, beside `background` when there is one
/// (its statistics attached to the measured row). The first round warms up for the whole
/// warm-up; later ones, with the server warm, for at most 200 ms.
async fn measure_paired(
    settings: &Settings,
    reference: Side<'_>,
    measured: Side<'_>,
    addr: SocketAddr,
    mut background: Option<&mut BackgroundSpec>,
    concurrency: usize,
) -> Result<(ScenarioResult, ScenarioResult)> {
    let mut totals: [Option<LoadResult>; 2] = [None, None];
    let mut stats = BackgroundStats::default();
    for round in 0..settings.rounds {
        let warmup = if round == 0 {
            settings.warmup
        } else {
            settings.warmup.min(Duration::from_millis(200))
        };
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let this = if side == 0 { &reference } else { &measured };
            let (name, template) = (this.name, this.template);
            let segment = settings.duration.div_f64(settings.rounds as f64);
            if let Some(proofs) = this.proofs {
                // Signed now, before the segment's clock starts.
                let count = proofs_needed(&totals, (warmup + segment).as_secs_f64());
                proofs.refill(count).await?;
            }
            let spec = LoadSpec {
                addrs: vec![addr],
                template: Arc::clone(template),
                check: this.check,
                concurrency,
                warmup,
                duration: segment,
            };
            let context = || format!("running {name} at concurrency {concurrency}");
            let load = match background.as_deref_mut() {
                Some(background) if side == 1 => {
                    let running = Background::start(
                        &background.description,
                        addr,
                        Arc::clone(&background.template),
                        &background.streams,
                        background.connections,
                    )
                    .await?;
                    let load = loadgen::run(&spec).await.with_context(context);
                    let (round_stats, streams) = running.stop().await?;
                    stats.merge(&round_stats);
                    // Resumed where they were: a device code keeps its interval across rounds.
                    background.streams = streams;
                    load?
                }
                _ => loadgen::run(&spec).await.with_context(context)?,
            };
            if this.proofs.is_some_and(|p| p.pool.ran_out()) {
                bail!("{name} at concurrency {concurrency} ran out of DPoP proofs");
            }
            merge_into(&mut totals[side], load)?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let [first, second] = totals;
    let reference = to_result(
        reference.name,
        concurrency,
        &first.context("no round measured")?,
    );
    let mut measured = to_result(
        measured.name,
        concurrency,
        &second.context("no round measured")?,
    );
    if let Some(background) = background {
        measured.background_unexpected = Some(stats.unexpected(background.expected));
        measured.background = Some(stats);
    }
    for r in [&reference, &measured] {
        print_result(r);
    }
    Ok((reference, measured))
}

fn merge_into(total: &mut Option<LoadResult>, load: LoadResult) -> Result<()> {
    match total {
        Some(t) => t.merge(load),
        None => {
            *total = Some(load);
            Ok(())
        }
    }
}

/// The PostgreSQL scenarios, on a database of the bench's own on the server
/// at `url`: `pg-*` on one node with every core, then `pg2-*` on two nodes
/// sharing the machine (each with half the serving threads, as two nodes on
/// one machine would be set up), the load generator's connections split
/// between them.
async fn run_postgres(
    settings: &Settings,
    bin: &Path,
    url: &str,
    results: &mut Vec<ScenarioResult>,
) -> Result<()> {
    let db = postgres::BenchDatabase::create(url).await?;
    let outcome = run_postgres_nodes(settings, bin, &db.url, results).await;
    db.drop_database().await;
    outcome
}

async fn run_postgres_nodes(
    settings: &Settings,
    bin: &Path,
    url: &str,
    results: &mut Vec<ScenarioResult>,
) -> Result<()> {
    eprintln!("starting {} serve on PostgreSQL ...", bin.display());
    let mut one = TesseraServer::start_on(bin, Some(url), None, None).await?;
    let client = setup_client(&one, "bench-pg-opaque", TokenFormat::Opaque).await?;
    let tokens = one.fetch_tokens(&client, settings.token_pool).await?;
    let issue = Arc::new(one.token_template(&client)?);
    let introspect = Arc::new(one.introspect_template(&client, &tokens)?);
    let issuer = one.issuer().to_owned();
    let template = |scenario: Scenario| match scenario {
        Scenario::PgOpaque | Scenario::Pg2Opaque => (&issue, Check::Status),
        _ => (&introspect, Check::Active),
    };
    for scenario in [Scenario::PgOpaque, Scenario::PgIntrospectOpaque] {
        if !settings.wants(scenario) {
            continue;
        }
        let (template, check) = template(scenario);
        for &concurrency in &settings.concurrency {
            if let Some(status) = one.guard.exited() {
                bail!("tessera server exited: {status}\n{}", one.log_tail());
            }
            let result = measure(
                settings,
                scenario,
                &[one.addr],
                template,
                check,
                concurrency,
            )
            .await?;
            results.push(result);
        }
    }
    if settings.wants(Scenario::PgJwtDpop) {
        let jwt = setup_client(&one, "bench-pg-jwt", TokenFormat::Jwt).await?;
        let pair = DpopPair::set_up(&one, &jwt).await?;
        for &concurrency in &settings.concurrency {
            if let Some(status) = one.guard.exited() {
                bail!("tessera server exited: {status}\n{}", one.log_tail());
            }
            let (bearer, dpop) = pair.measure(settings, one.addr, "pg-", concurrency).await?;
            results.push(bearer);
            results.push(dpop);
        }
    }
    one.guard.stop()?;

    let two_node = [Scenario::Pg2Opaque, Scenario::Pg2IntrospectOpaque];
    if !two_node.iter().any(|s| settings.wants(*s)) {
        return Ok(());
    }
    let half = (std::thread::available_parallelism().map_or(1, usize::from) / 2).max(1);
    eprintln!("starting two nodes on the same database, {half} serving thread(s) each ...");
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let node = TesseraServer::start_on(bin, Some(url), Some(&issuer), Some(half)).await?;
        node.wait_client_visible(&client).await?;
        nodes.push(node);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    for scenario in two_node {
        if !settings.wants(scenario) {
            continue;
        }
        let (template, check) = template(scenario);
        for &concurrency in &settings.concurrency {
            for node in &mut nodes {
                if let Some(status) = node.guard.exited() {
                    bail!("tessera server exited: {status}\n{}", node.log_tail());
                }
            }
            let result = measure(settings, scenario, &addrs, template, check, concurrency).await?;
            results.push(result);
        }
    }
    for mut node in nodes {
        node.guard.stop()?;
    }
    Ok(())
}

async fn setup_client(
    server: &TesseraServer,
    name: &str,
    format: TokenFormat,
) -> Result<ClientCredentials> {
    let client = server.create_client(name, format).await?;
    server.wait_client_visible(&client).await?;
    eprintln!("created client {name} ({})", client.client_id);
    Ok(client)
}

async fn measure(
    settings: &Settings,
    scenario: Scenario,
    addrs: &[SocketAddr],
    template: &Arc<RequestTemplate>,
    check: Check,
    concurrency: usize,
) -> Result<ScenarioResult> {
    let spec = LoadSpec {
        addrs: addrs.to_vec(),
        template: Arc::clone(template),
        check,
        concurrency,
        warmup: settings.warmup,
        duration: settings.duration,
    };
    let load = loadgen::run(&spec)
        .await
        .with_context(|| format!("running {} at concurrency {concurrency}", scenario.name()))?;
    let result = to_result(scenario.name(), concurrency, &load);
    print_result(&result);
    // Let the closed connections drain before the next measurement.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(result)
}

fn to_result(scenario: &str, concurrency: usize, load: &LoadResult) -> ScenarioResult {
    let h = &load.histogram;
    ScenarioResult {
        scenario: scenario.to_owned(),
        concurrency,
        requests: load.ok,
        errors: load.errors,
        duration_s: load.window.as_secs_f64(),
        requests_per_second: load.requests_per_second(),
        p50_ms: load.quantile_ms(0.50),
        p90_ms: load.quantile_ms(0.90),
        p99_ms: load.quantile_ms(0.99),
        p999_ms: load.quantile_ms(0.999),
        max_ms: h.max() as f64 / 1000.0,
        mean_ms: h.mean() / 1000.0,
        ratio_to_floor: None,
        ratio_to_ceiling: None,
        ratio_to_sqlite: None,
        ratio_to_one_node: None,
        ratio_to_reference: None,
        background: None,
        background_unexpected: None,
        sample_error: load.sample_error.clone(),
    }
}

fn print_result(result: &ScenarioResult) {
    eprintln!(
        "  {:<18} c={:<4} {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
        result.scenario,
        result.concurrency,
        result.requests_per_second,
        result.p50_ms,
        result.p99_ms,
        result.errors
    );
    if let Some(bg) = &result.background {
        eprintln!(
            "    background: {} planned, {:.0}/s answered: {:?}, {} skipped, {} transport errors",
            bg.description, bg.achieved_per_second, bg.answers, bg.skipped, bg.transport_errors
        );
    }
}
