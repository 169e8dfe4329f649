//! `up-emulator`: serve an `up` app locally through the real `bootstrap` on a local Lambda.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::net::TcpListener;
use up_emulator::{Config, Emulator, Error, local};

/// Run an app locally: a local Lambda running the `bootstrap` runtime, behind an
/// API Gateway HTTP API (payload 2.0) front.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The app directory (holds up.json); the function's task root.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The runtime binary; by default the workspace's bootstrap, built in release mode.
    #[arg(long)]
    bootstrap: Option<PathBuf>,
    /// Stage whose up.json overrides apply (sets UP_STAGE and the ARN's qualifier).
    #[arg(long)]
    stage: Option<String>,
    /// Maximum concurrent instances.
    #[arg(long, default_value = "1")]
    instances: NonZeroUsize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("up-emulator: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Builds or finds the runtime, starts the function, serves until Ctrl-C or SIGTERM.
async fn run(args: Args) -> anyhow::Result<()> {
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("app directory {}", args.dir.display()))?;
    let settings = local::read_function_settings(&dir)?;
    let bootstrap = match args.bootstrap {
        Some(path) => path,
        None => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
            local::build_bootstrap(&cargo, target_dir.as_deref()).await?
        }
    };

    let mut config = Config::new(bootstrap, &dir);
    config.function_name = dir.file_name().map_or_else(
        || "up-local".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    config.timeout = settings.timeout;
    config.memory_mb = settings.memory_mb;
    config.max_instances = args.instances;
    config.inherit_env = true;
    config.echo_logs = true;
    if let Some(stage) = &args.stage {
        config.env.push(("UP_STAGE".to_owned(), stage.clone()));
        config.qualifier = Some(stage.clone());
    }

    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr: SocketAddr = listener.local_addr().context("listener address")?;
    let emulator = Emulator::start(config)
        .await
        .context("starting the function")?;

    match emulator.wait_ready(settings.timeout).await {
        Ok(()) => {}
        Err(Error::Init(failure)) => {
            emulator.shutdown().await;
            bail!("the function failed to start: {failure}");
        }
        Err(err) => {
            emulator.shutdown().await;
            return Err(err).context("waiting for the function to start");
        }
    }
    println!("up: listening on http://{addr}");

    tokio::select! {
        () = up_emulator::serve_http(listener, emulator.clone()) => {}
        signal = shutdown_signal() => signal?,
    }
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        ctrl_c = tokio::signal::ctrl_c() => ctrl_c.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
