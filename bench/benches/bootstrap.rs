//! The bootstrap benchmark: `cargo bench -p up-bench` (results and how to read them in
//! `BENCHMARKS.md`).
//!
//! It needs two builds first (`scripts/test` does both):
//! `cargo build --release -p up-proxy --target x86_64-unknown-linux-musl` (the static
//! bootstrap) and `cargo build --release --manifest-path examples/rust-echo/Cargo.toml` with
//! `CARGO_TARGET_DIR=target` (the app it wraps). `CARGO_TARGET_DIR` is honoured.
//!
//! What it measures, in one run:
//!
//! - **Per invocation**, interleaved round-robin so machine noise hits all three alike:
//!   (a) one API Gateway v2 event through the real bootstrap and `rust-echo` under
//!   `up-emulator`; (b) the same event through `null-runtime`, which answers at once without
//!   an app (the Runtime API's floor); (c) the same HTTP request sent straight to a second
//!   `rust-echo` over one keep-alive connection (the app's floor). The bootstrap's own cost is
//!   a − b − c.
//! - **Start**: (i) bootstrap + app start → first `/next`; (ii) `null-runtime` start → first
//!   `/next`; (iii) the app's own start → accepting. Own start ≈ i − ii − iii.
//! - **Memory** of the bootstrap process alone (`VmRSS` idle, `VmHWM` after the run), started
//!   from a binary dropped from the page cache first (read from disk, as on a cold start), and
//!   the app's for context; **size** of the static binary.
//! - For context, each process's on-CPU time per invocation (`schedstat`): where the wall
//!   time of (a), (b) and (c) is spent working rather than waiting.
//!
//! Settings: `UP_BENCH_N` invocations per variant (5000), `UP_BENCH_R` starts per variant
//! (20), `UP_BENCH_WARMUP` unrecorded invocations per variant first (200).
//! `UP_BENCH_CPUS`: `1` (the default) puts the benchmark and every process it starts on one
//! CPU, the last the process may use: a Lambda function below 1,769 MB of memory has less than
//! one vCPU of time, which its runtime, its app and Lambda's own Runtime API server share, and
//! one CPU takes away the cross-CPU wake-ups whose cost swings from run to run on a small VM
//! (two runs of the same build differed by 2× before). `all` leaves placement to the scheduler.
//! `UP_BENCH_COMPARE=<path of another bootstrap binary>` adds (a′), the same event through
//! that build, interleaved with the others: the way to tell two builds apart when the
//! machine's noise between runs is larger than their difference. Everything runs on
//! 127.0.0.1 and the run stops by itself within a bound derived from these.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use up_bench::client::{self, Sender};
use up_bench::procfs::{self, Memory};
use up_bench::stats::{Summary, residual_us};
use up_emulator::{Config, Emulator, Outcome};

/// Bound on one invocation (the emulator's function timeout) and on one direct request.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a runtime or app becoming ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the app's port is tried when timing its own start.
const START_POLL: Duration = Duration::from_micros(200);

/// Targets.
const OWN_COST_TARGET_US: f64 = 50.0;
const OWN_START_TARGET_MS: f64 = 5.0;
const RSS_TARGET_BYTES: u64 = 2_500_000;
const SIZE_TARGET_BYTES: u64 = 3_400_000;

/// The client's headers, in the event and in the direct request.
const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("accept", "application/json"),
    ("user-agent", "up-bench/0.1"),
    ("x-bench", "1"),
];
const HOST: &str = "bench.execute-api.us-east-1.amazonaws.com";
const SOURCE_IP: &str = "127.0.0.1";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let placement = place()?;
    let paths = Paths::find()?;
    // One thread: the emulator's Runtime API server, the timing and the direct client share
    // it, so nothing here competes with the measured processes for the cores but the work.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let bound = settings.time_bound();
    // On timeout the measurement future is dropped, and with it every emulator (which kills
    // its runtimes' process groups) and app process.
    let report = runtime
        .block_on(async { tokio::time::timeout(bound, measure(&settings, &paths)).await })
        .map_err(|_| anyhow::anyhow!("the benchmark did not finish within {bound:?}"))??;
    println!("{}", report.markdown(&placement));
    Ok(())
}

/// Applies `UP_BENCH_CPUS` to this process (its children inherit it) and says what it did.
fn place() -> anyhow::Result<String> {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let setting = std::env::var("UP_BENCH_CPUS").unwrap_or_else(|_| "1".to_owned());
    match setting.as_str() {
        "all" => Ok("placement left to the scheduler (UP_BENCH_CPUS=all)".to_owned()),
        "1" => {
            let allowed = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
            let cpu = (0..CpuSet::count())
                .rev()
                .find(|&cpu| allowed.is_set(cpu).unwrap_or(false))
                .context("this process may run on no CPU")?;
            let mut one = CpuSet::new();
            one.set(cpu).context("CpuSet::set")?;
            sched_setaffinity(Pid::from_raw(0), &one).context("sched_setaffinity")?;
            Ok(format!(
                "every process on CPU {cpu} (UP_BENCH_CPUS=1; `all` to let them spread)"
            ))
        }
        other => bail!("UP_BENCH_CPUS must be 1 or all, not {other:?}"),
    }
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// Recorded invocations per variant.
    n: usize,
    /// Recorded starts per variant.
    r: usize,
    /// Unrecorded invocations per variant first.
    warmup: usize,
    /// CPUs this process could use when it started (before `UP_BENCH_CPUS` applies).
    cpus: usize,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            n: count("UP_BENCH_N", 5000, 1)?,
            r: count("UP_BENCH_R", 20, 1)?,
            warmup: count("UP_BENCH_WARMUP", 200, 0)?,
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
        })
    }

    /// Generous: a loaded 2-core machine runs this in well under a tenth of it.
    fn time_bound(&self) -> Duration {
        let calls = u32::try_from(4 * (self.n + self.warmup)).unwrap_or(u32::MAX);
        let starts = u32::try_from(3 * (self.r + 1)).unwrap_or(u32::MAX);
        Duration::from_secs(60)
            + Duration::from_millis(20) * calls
            + Duration::from_secs(5) * starts
    }
}

/// A count of at least `min` from the environment, else `default`.
fn count(name: &str, default: usize, min: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => bail!("{name}={v:?}: expected a whole number ≥ {min}"),
        },
    }
}

/// The three binaries.
#[derive(Debug)]
struct Paths {
    bootstrap: PathBuf,
    app: PathBuf,
    null_runtime: PathBuf,
    /// Another bootstrap build to compare with (`UP_BENCH_COMPARE`).
    compare: Option<PathBuf>,
}

impl Paths {
    fn find() -> anyhow::Result<Self> {
        let target = target_dir();
        let compare = match std::env::var_os("UP_BENCH_COMPARE") {
            Some(path) if !path.is_empty() => {
                let path = PathBuf::from(path);
                ensure!(
                    path.is_file(),
                    "UP_BENCH_COMPARE={} is not a file",
                    path.display()
                );
                Some(path)
            }
            _ => None,
        };
        let bootstrap = target.join("x86_64-unknown-linux-musl/release/bootstrap");
        ensure!(
            bootstrap.is_file(),
            "{} is missing: run cargo build --release -p up-proxy --target x86_64-unknown-linux-musl",
            bootstrap.display()
        );
        let app = target.join("release/rust-echo");
        ensure!(
            app.is_file(),
            "{} is missing: run CARGO_TARGET_DIR={} cargo build --release --manifest-path examples/rust-echo/Cargo.toml",
            app.display(),
            target.display()
        );
        Ok(Self {
            bootstrap,
            compare,
            app,
            null_runtime: PathBuf::from(env!("CARGO_BIN_EXE_null-runtime")),
        })
    }
}

/// `$CARGO_TARGET_DIR` (relative to the workspace root), else the workspace's `target`.
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap_or(manifest);
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Everything the run found.
#[derive(Debug)]
struct Report {
    settings: Settings,
    cpus: usize,
    cpu_model: String,
    load_before: String,
    load_after: String,
    through_bootstrap: Summary,
    through_null: Summary,
    direct: Summary,
    /// (a′), through the build named by `UP_BENCH_COMPARE`.
    through_compare: Option<(PathBuf, Summary)>,
    start_bootstrap: Summary,
    start_null: Summary,
    start_app: Summary,
    bootstrap_idle: Memory,
    bootstrap_busy: Memory,
    app_idle: Memory,
    app_busy: Memory,
    size: u64,
    /// Body sizes of the app's answer through the bootstrap and directly (a sanity check that
    /// (a) and (c) did the same work).
    body_through: usize,
    body_direct: usize,
    cpu: CpuPerInvocation,
}

async fn measure(settings: &Settings, paths: &Paths) -> anyhow::Result<Report> {
    let load_before = procfs::load_average().unwrap_or_default();
    let size = std::fs::metadata(&paths.bootstrap)
        .with_context(|| format!("cannot stat {}", paths.bootstrap.display()))?
        .len();
    let task_root = tempfile::tempdir().context("cannot create the task root")?;
    let up_json = serde_json::json!({
        "name": "bench",
        "proxy": { "command": paths.app.display().to_string() },
    });
    std::fs::write(task_root.path().join("up.json"), up_json.to_string())
        .context("cannot write up.json")?;

    eprintln!(
        "bench: {} invocations per variant (+{} warm-up), interleaved",
        settings.n, settings.warmup
    );
    let calls = invocations(settings, paths, task_root.path()).await?;
    eprintln!("bench: {} starts per variant", settings.r);
    let starts = starts(settings, paths, task_root.path()).await?;

    Ok(Report {
        settings: *settings,
        cpus: settings.cpus,
        cpu_model: procfs::cpu_model().unwrap_or_else(|| "unknown CPU".to_owned()),
        load_before,
        load_after: procfs::load_average().unwrap_or_default(),
        through_bootstrap: calls.through_bootstrap,
        through_null: calls.through_null,
        direct: calls.direct,
        through_compare: paths.compare.clone().zip(calls.through_compare),
        start_bootstrap: starts.bootstrap,
        start_null: starts.null,
        start_app: starts.app,
        bootstrap_idle: calls.bootstrap_idle,
        bootstrap_busy: calls.bootstrap_busy,
        app_idle: calls.app_idle,
        app_busy: calls.app_busy,
        size,
        body_through: calls.body_through,
        body_direct: calls.body_direct,
        cpu: calls.cpu,
    })
}

fn emulator_config(runtime: &Path, task_root: &Path) -> Config {
    let mut config = Config::new(runtime, task_root);
    config.function_name = "bench".to_owned();
    config.timeout = INVOKE_TIMEOUT;
    config
}

/// Starts a function and waits until its runtime calls `/next`.
async fn ready_emulator(runtime: &Path, task_root: &Path) -> anyhow::Result<Emulator> {
    let emulator = Emulator::start(emulator_config(runtime, task_root))
        .await
        .with_context(|| format!("cannot start {}", runtime.display()))?;
    emulator
        .wait_ready(READY_TIMEOUT)
        .await
        .with_context(|| format!("{} did not get ready", runtime.display()))?;
    Ok(emulator)
}

#[derive(Debug)]
struct Invocations {
    through_bootstrap: Summary,
    through_null: Summary,
    direct: Summary,
    through_compare: Option<Summary>,
    bootstrap_idle: Memory,
    bootstrap_busy: Memory,
    app_idle: Memory,
    app_busy: Memory,
    body_through: usize,
    body_direct: usize,
    cpu: CpuPerInvocation,
}

/// (a), (b) and (c), round-robin, plus the memory figures around them.
async fn invocations(
    settings: &Settings,
    paths: &Paths,
    task_root: &Path,
) -> anyhow::Result<Invocations> {
    // Memory is measured on this instance: its binary is read from disk as on a cold start.
    evict(&paths.bootstrap)?;
    let real = ready_emulator(&paths.bootstrap, task_root).await?;
    let bootstrap_pid = real
        .instances()
        .first()
        .map(|i| i.pid())
        .context("the emulator has no instance")?;
    let bootstrap_idle = procfs::memory(bootstrap_pid)?;
    let app_pid = *procfs::children(bootstrap_pid)
        .first()
        .context("the bootstrap has no child process: did it start the app?")?;
    let app_idle = procfs::memory(app_pid)?;

    let null = ready_emulator(&paths.null_runtime, task_root).await?;
    let compare = match &paths.compare {
        Some(path) => Some(ready_emulator(path, task_root).await?),
        None => None,
    };
    let variants = if compare.is_some() { 4 } else { 3 };
    let direct_app = tokio::task::spawn_blocking({
        let app = paths.app.clone();
        move || AppProcess::start(&app)
    })
    .await
    .context("the app start task failed")??;
    let mut direct = client::connect(&direct_app.addr.to_string()).await?;

    let null_pid = null
        .instances()
        .first()
        .map(|i| i.pid())
        .context("the emulator has no instance")?;
    // Whose CPU time is counted, in `CpuPerInvocation`'s order.
    let watched = [
        bootstrap_pid,
        app_pid,
        null_pid,
        direct_app.child.id(),
        std::process::id(),
    ];

    let event = event();
    let mut samples: [Vec<Duration>; 4] = std::array::from_fn(|_| Vec::with_capacity(settings.n));
    let (mut body_through, mut body_direct) = (0, 0);
    let mut cpu_before = None;
    for i in 0..settings.warmup + settings.n {
        if i == settings.warmup {
            cpu_before = Some(cpu_times(&watched)?);
        }
        // Rotate which variant goes first so none always follows the same one.
        for k in 0..variants {
            let variant = (i + k) % variants;
            let took = match (variant, &compare) {
                (0, _) => {
                    let (took, result) = through(&real, &event).await?;
                    body_through = check_result(&result)?;
                    took
                }
                (1, _) => through(&null, &event).await?.0,
                (3, Some(other)) => {
                    let (took, result) = through(other, &event).await?;
                    check_result(&result)?;
                    took
                }
                _ => {
                    let (took, body) = direct_request(&mut direct, direct_app.addr).await?;
                    body_direct = body;
                    took
                }
            };
            if i >= settings.warmup {
                samples[variant].push(took);
            }
        }
    }
    let cpu_after = cpu_times(&watched)?;
    let cpu = CpuPerInvocation::new(
        cpu_before.context("no recorded invocations")?,
        cpu_after,
        settings.n,
    );
    let bootstrap_busy = procfs::memory(bootstrap_pid)?;
    let app_busy = procfs::memory(app_pid)?;
    real.shutdown().await;
    null.shutdown().await;
    if let Some(other) = compare {
        other.shutdown().await;
    }
    drop(direct);
    drop(direct_app);

    let [mut a, mut b, mut c, mut a2] = samples;
    Ok(Invocations {
        through_bootstrap: Summary::of(&mut a).context("no samples")?,
        through_null: Summary::of(&mut b).context("no samples")?,
        direct: Summary::of(&mut c).context("no samples")?,
        through_compare: Summary::of(&mut a2),
        bootstrap_idle,
        bootstrap_busy,
        app_idle,
        app_busy,
        body_through,
        body_direct,
        cpu,
    })
}

/// Drops `path`'s pages from the page cache (after writing back any that are dirty), so the
/// next start reads it from disk as Lambda's cold start does. A binary the linker has just
/// written sits in the page cache in large folios, which the kernel maps whole on the first
/// touch: the RSS of a process started from it counts most of the binary, touched or not.
fn evict(path: &Path) -> anyhow::Result<()> {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {} back to disk", path.display()))?;
    posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
        .with_context(|| format!("cannot drop {} from the page cache", path.display()))?;
    Ok(())
}

/// On-CPU time of each of `pids`, all threads together.
fn cpu_times<const N: usize>(pids: &[u32; N]) -> anyhow::Result<[Duration; N]> {
    let mut times = [Duration::ZERO; N];
    for (time, pid) in times.iter_mut().zip(pids) {
        *time = procfs::cpu_time(*pid)?;
    }
    Ok(times)
}

/// On-CPU time per recorded invocation of each process involved: where the wall time of
/// (a), (b) and (c) is spent working rather than waiting.
#[derive(Debug, Clone, Copy)]
struct CpuPerInvocation {
    bootstrap: Duration,
    app_through: Duration,
    null_runtime: Duration,
    app_direct: Duration,
    /// The bench process (the emulator, the timing, the direct client), per a + b + c.
    bench: Duration,
}

impl CpuPerInvocation {
    fn new(before: [Duration; 5], after: [Duration; 5], n: usize) -> Self {
        let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        let per = |k: usize| after[k].saturating_sub(before[k]) / n;
        Self {
            bootstrap: per(0),
            app_through: per(1),
            null_runtime: per(2),
            app_direct: per(3),
            bench: per(4),
        }
    }
}

/// One invocation, timed around `invoke` only; returns the function's result.
async fn through(emulator: &Emulator, event: &Bytes) -> anyhow::Result<(Duration, Bytes)> {
    let started = Instant::now();
    let invocation = emulator.invoke(event.clone()).await?;
    let took = started.elapsed();
    match invocation.outcome {
        Outcome::Response(result) => Ok((took, result)),
        other => bail!("{} answered {other:?}", emulator.config().runtime.display()),
    }
}

/// Checks the bootstrap's result is a 200 v2 response; returns the length of its body.
fn check_result(result: &[u8]) -> anyhow::Result<usize> {
    let value: serde_json::Value =
        serde_json::from_slice(result).context("the bootstrap's result is not JSON")?;
    ensure!(value["statusCode"] == 200, "the bootstrap answered {value}");
    Ok(value["body"].as_str().map_or(0, str::len))
}

/// The request straight to the app, timed around the exchange; returns the body length.
async fn direct_request(
    sender: &mut Sender,
    addr: SocketAddr,
) -> anyhow::Result<(Duration, usize)> {
    // What the app receives from the bootstrap: the client's headers plus the ones it adds.
    let mut request = Request::builder()
        .uri("/bench?x=1")
        .header("host", HOST)
        .header("x-request-id", "d3b07384-d9a0-4c5e-8f1b-3c2a1e0f9a8b")
        .header("x-forwarded-for", SOURCE_IP)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-port", "443");
    for (name, value) in CLIENT_HEADERS {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::new()))?;
    let started = Instant::now();
    let response = tokio::time::timeout(INVOKE_TIMEOUT, client::exchange(sender, request))
        .await
        .with_context(|| format!("the app at {addr} did not answer within {INVOKE_TIMEOUT:?}"))??;
    let took = started.elapsed();
    ensure!(
        response.status() == 200,
        "the app answered {}",
        response.status()
    );
    Ok((took, response.body().len()))
}

/// A small HTTP API (payload 2.0) event: `GET /bench?x=1` with a few headers.
fn event() -> Bytes {
    let mut headers = serde_json::Map::new();
    for (name, value) in CLIENT_HEADERS {
        headers.insert((*name).to_owned(), (*value).into());
    }
    headers.insert("host".to_owned(), HOST.into());
    headers.insert("content-length".to_owned(), "0".into());
    headers.insert("x-forwarded-for".to_owned(), SOURCE_IP.into());
    headers.insert("x-forwarded-port".to_owned(), "443".into());
    headers.insert("x-forwarded-proto".to_owned(), "https".into());
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/bench",
        "rawQueryString": "x=1",
        "headers": headers,
        "queryStringParameters": { "x": "1" },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "bench",
            "domainName": HOST,
            "domainPrefix": "bench",
            "http": {
                "method": "GET",
                "path": "/bench",
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": "up-bench/0.1",
            },
            "requestId": "JKJcGh3nvHcEJzA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_795_435_200_000_u64,
        },
        "isBase64Encoded": false,
    });
    Bytes::from(event.to_string())
}

/// The app started directly, killed when dropped.
#[derive(Debug)]
struct AppProcess {
    child: Child,
    addr: SocketAddr,
}

impl AppProcess {
    /// Spawns the app on a free loopback port and waits (bounded) until it accepts.
    /// Blocking: the poll interval is finer than the async timer's millisecond.
    fn start(app: &Path) -> anyhow::Result<Self> {
        Ok(Self::start_timed(app)?.0)
    }

    /// As [`AppProcess::start`]; also returns the time from just before the spawn until the
    /// first accepted connection.
    fn start_timed(app: &Path) -> anyhow::Result<(Self, Duration)> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .context("cannot find a free port")?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        let child = Command::new(app)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", app.display()))?;
        let mut process = Self { child, addr };
        loop {
            if TcpStream::connect(addr).is_ok() {
                return Ok((process, started.elapsed()));
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                bail!("{} exited before listening: {status}", app.display());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} did not listen on {addr} within {READY_TIMEOUT:?}",
                    app.display()
                );
            }
            std::thread::sleep(START_POLL);
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Starts {
    bootstrap: Summary,
    null: Summary,
    app: Summary,
}

/// (i), (ii) and (iii), round-robin, after one unrecorded round.
async fn starts(settings: &Settings, paths: &Paths, task_root: &Path) -> anyhow::Result<Starts> {
    let mut samples = [
        Vec::with_capacity(settings.r),
        Vec::with_capacity(settings.r),
        Vec::with_capacity(settings.r),
    ];
    for round in 0..=settings.r {
        for k in 0..3 {
            let variant = (round + k) % 3;
            let took = match variant {
                0 => start_to_ready(&paths.bootstrap, task_root).await?,
                1 => start_to_ready(&paths.null_runtime, task_root).await?,
                _ => {
                    let app = paths.app.clone();
                    let (process, took) =
                        tokio::task::spawn_blocking(move || AppProcess::start_timed(&app))
                            .await
                            .context("the app start task failed")??;
                    tokio::task::spawn_blocking(move || drop(process))
                        .await
                        .context("the app stop task failed")?;
                    took
                }
            };
            if round > 0 {
                samples[variant].push(took);
            }
        }
    }
    let [mut i, mut ii, mut iii] = samples;
    Ok(Starts {
        bootstrap: Summary::of(&mut i).context("no samples")?,
        null: Summary::of(&mut ii).context("no samples")?,
        app: Summary::of(&mut iii).context("no samples")?,
    })
}

/// From just before `Emulator::start` until the runtime has called `/next`; then stops it.
async fn start_to_ready(runtime: &Path, task_root: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let emulator = ready_emulator(runtime, task_root).await?;
    let took = started.elapsed();
    emulator.shutdown().await;
    Ok(took)
}

impl Report {
    fn markdown(&self, placement: &str) -> String {
        let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        let mb = |bytes: u64| format!("{:.2} MB ({} KiB)", bytes as f64 / 1e6, bytes / 1024);
        let verdict = |ok: bool, over: String| {
            if ok {
                "✅ pass".to_owned()
            } else {
                format!("❌ fail ({over} over)")
            }
        };

        let (a, b, c) = (&self.through_bootstrap, &self.through_null, &self.direct);
        let own_median = residual_us(a.median, b.median, c.median);
        let own_p99 = residual_us(a.p99, b.p99, c.p99);
        let (i, ii, iii) = (&self.start_bootstrap, &self.start_null, &self.start_app);
        let own_start = residual_us(i.median, ii.median, iii.median) / 1e3;
        let own_start_p99 = residual_us(i.p99, ii.p99, iii.p99) / 1e3;

        let mut out = String::new();
        let _ = writeln!(out, "## up bootstrap benchmark\n");
        let _ = writeln!(
            out,
            "Machine: {} CPUs (nproc), {}; load average {} at start, {} at end; {placement}.  ",
            self.cpus, self.cpu_model, self.load_before, self.load_after
        );
        let _ = writeln!(
            out,
            "N = {} invocations per variant (a, b, c interleaved, after {} warm-up each); \
             R = {} starts per variant (i, ii, iii interleaved, after 1 warm-up each).\n",
            self.settings.n, self.settings.warmup, self.settings.r
        );
        let _ = writeln!(out, "| Figure | Median | p99 | Target | Result |");
        let _ = writeln!(out, "|---|---:|---:|---|---|");
        let mut row = |figure: &str, median: String, p99: String, target: &str, result: String| {
            let _ = writeln!(out, "| {figure} | {median} | {p99} | {target} | {result} |");
        };
        row(
            "(a) invocation: emulator → bootstrap → rust-echo",
            us(a.median),
            us(a.p99),
            "",
            String::new(),
        );
        row(
            "(b) invocation: emulator → null runtime (Runtime API floor)",
            us(b.median),
            us(b.p99),
            "",
            String::new(),
        );
        row(
            "(c) request straight to rust-echo, keep-alive (app floor)",
            us(c.median),
            us(c.p99),
            "",
            String::new(),
        );
        row(
            "**Bootstrap own cost per invocation** (a − b − c; p99 column ≈)",
            format!("**{own_median:.1} µs**"),
            format!("≈ {own_p99:.1} µs"),
            "≤ 50 µs median",
            verdict(
                own_median <= OWN_COST_TARGET_US,
                format!("{:.1} µs", own_median - OWN_COST_TARGET_US),
            ),
        );
        if let Some((path, a2)) = &self.through_compare {
            let own = residual_us(a2.median, b.median, c.median);
            row(
                &format!("(a′) invocation through {}", path.display()),
                us(a2.median),
                us(a2.p99),
                "",
                String::new(),
            );
            row(
                "Own cost of that build (a′ − b − c); a − a′ beside it",
                format!("{own:.1} µs"),
                format!("a − a′ = {:.1} µs", own_median - own),
                "",
                String::new(),
            );
        }
        row(
            "(i) start → ready: bootstrap + rust-echo",
            ms(i.median),
            ms(i.p99),
            "",
            String::new(),
        );
        row(
            "(ii) start → ready: null runtime (emulator spawn + Runtime API)",
            ms(ii.median),
            ms(ii.p99),
            "",
            String::new(),
        );
        row(
            "(iii) rust-echo's own start → accepting",
            ms(iii.median),
            ms(iii.p99),
            "",
            String::new(),
        );
        row(
            "**Bootstrap own start** (i − ii − iii; p99 column ≈)",
            format!("**{own_start:.2} ms**"),
            format!("≈ {own_start_p99:.2} ms"),
            "≤ 5 ms median",
            verdict(
                own_start <= OWN_START_TARGET_MS,
                format!("{:.2} ms", own_start - OWN_START_TARGET_MS),
            ),
        );
        // The value, then what the process holds now: private memory (heap, stacks) and
        // file-backed pages (its own binary's code, which the page cache shares).
        let rss_row = |out: &mut String, figure: &str, bytes: u64, now: &Memory, target: bool| {
            let result = if target {
                verdict(
                    bytes <= RSS_TARGET_BYTES,
                    mb(bytes.saturating_sub(RSS_TARGET_BYTES)),
                )
            } else {
                "(context)".to_owned()
            };
            let target = if target { "≤ 2.5 MB" } else { "" };
            let _ = writeln!(
                out,
                "| {figure}; then {} KiB anon + {} KiB file | {} | — | {target} | {result} |",
                now.anon / 1024,
                now.file / 1024,
                mb(bytes)
            );
        };
        rss_row(
            &mut out,
            "**Bootstrap RSS, idle** (VmRSS right after ready)",
            self.bootstrap_idle.rss,
            &self.bootstrap_idle,
            true,
        );
        rss_row(
            &mut out,
            "**Bootstrap RSS, busy** (VmHWM after the run)",
            self.bootstrap_busy.hwm,
            &self.bootstrap_busy,
            true,
        );
        rss_row(
            &mut out,
            "rust-echo RSS, idle (VmRSS)",
            self.app_idle.rss,
            &self.app_idle,
            false,
        );
        rss_row(
            &mut out,
            "rust-echo RSS, busy (VmHWM)",
            self.app_busy.hwm,
            &self.app_busy,
            false,
        );
        let _ = writeln!(
            out,
            "| **Bootstrap static binary size** | {} bytes ({:.2} MB) | — | ≤ 3.4 MB | {} |",
            self.size,
            self.size as f64 / 1e6,
            verdict(
                self.size <= SIZE_TARGET_BYTES,
                format!(
                    "{:.2} MB",
                    self.size.saturating_sub(SIZE_TARGET_BYTES) as f64 / 1e6
                )
            )
        );
        let cpu = &self.cpu;
        let _ = writeln!(
            out,
            "\nOn-CPU time per recorded invocation (schedstat, all threads), for context:\n"
        );
        let _ = writeln!(out, "| Process | On-CPU per invocation |");
        let _ = writeln!(out, "|---|---:|");
        for (process, time) in [
            ("bootstrap, in (a)", cpu.bootstrap),
            ("rust-echo under the bootstrap, in (a)", cpu.app_through),
            ("null runtime, in (b)", cpu.null_runtime),
            ("rust-echo direct, in (c)", cpu.app_direct),
            (
                "bench process (emulator + clients), per a + b + c",
                cpu.bench,
            ),
        ] {
            let _ = writeln!(out, "| {process} | {} |", us(time));
        }
        let _ = writeln!(
            out,
            "\nMB = 10⁶ bytes. Medians and p99s are nearest-rank. The app's answer body was {} \
             bytes through the bootstrap and {} bytes directly; the null runtime answers {} bytes.",
            self.body_through,
            self.body_direct,
            up_bench::null_runtime::RESPONSE.len()
        );
        out
    }
}
