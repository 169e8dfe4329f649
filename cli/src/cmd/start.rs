//! `up start`: run the app locally exactly as Lambda would.
//!
//! The real `bootstrap` runs under `up-emulator`'s Runtime API, with the app of `up.json`
//! behind it; an HTTP listener (default `localhost:3000`) turns each request into an API
//! Gateway HTTP API (payload 2.0) event, invokes the function and answers from its result,
//! logging one line per request. The runtime's own output (the bootstrap's JSON log lines,
//! the app's output among them) goes to stderr as it would go to CloudWatch.
//!
//! The bootstrap is `--bootstrap` / `$UP_BOOTSTRAP`, else built from this workspace
//! (`cargo build --release -p up-proxy`). Ctrl-C or SIGTERM shuts the function down: SIGTERM
//! to the bootstrap (which stops the app), then SIGKILL to whatever is left of its process
//! group.

use crate::Globals;
use anyhow::{Context, bail};
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;
use up_emulator::{Emulator, Error as EmulatorError, local};

/// Arguments of `up start`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen: `host:port`, `port`, or `127.0.0.1:0` for any free port.
    #[arg(long, default_value = "localhost:3000")]
    pub listen: String,
    /// The stage whose up.json overrides apply (sets UP_STAGE).
    #[arg(long, default_value = "development")]
    pub stage: String,
    /// The bootstrap binary; by default this workspace's, built in release mode.
    #[arg(long, env = "UP_BOOTSTRAP")]
    pub bootstrap: Option<PathBuf>,
    /// How many instances may run at once (concurrent requests beyond that wait).
    #[arg(long, default_value = "1")]
    pub instances: NonZeroUsize,
}

/// Runs `up start` until Ctrl-C or SIGTERM.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    // Logs go to stderr: the per-request line, instances starting and exiting.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();

    let config = crate::project::load(&globals.dir, &args.stage)?;
    let dir = std::fs::canonicalize(&globals.dir)
        .with_context(|| format!("app directory {}", globals.dir.display()))?;
    let (host, port) = parse_listen(&args.listen)?;
    let bootstrap = match args.bootstrap {
        Some(path) if path.is_file() => path,
        Some(path) => bail!(
            "bootstrap {} not found: set UP_BOOTSTRAP (or --bootstrap) to a built bootstrap",
            path.display()
        ),
        None => build_bootstrap().await?,
    };

    let mut emulated = up_emulator::Config::new(bootstrap, &dir);
    emulated.function_name = crate::names::function_name(&config);
    emulated.qualifier = Some(crate::names::alias(&args.stage));
    emulated.timeout = config.lambda.timeout.get();
    emulated.memory_mb = u32::try_from(config.lambda.memory.get()).unwrap_or(u32::MAX);
    emulated.max_instances = args.instances;
    // The function's environment as `up deploy` sets it; the host's too, so local tools
    // (PATH, a virtualenv, nvm) work as in the shell that ran `up start`.
    emulated
        .env
        .push(("UP_STAGE".to_owned(), args.stage.clone()));
    emulated.env.extend(
        config
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    emulated.inherit_env = true;
    emulated.echo_logs = true;

    let listener = TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listener's address")?;
    let emulator = Emulator::start(emulated)
        .await
        .context("starting the function")?;
    match emulator.wait_ready(config.lambda.timeout.get()).await {
        Ok(()) => {}
        Err(EmulatorError::Init(failure)) => {
            emulator.shutdown().await;
            bail!("the app failed to start: {failure}");
        }
        Err(err) => {
            emulator.shutdown().await;
            return Err(err).context("waiting for the function to start");
        }
    }
    let shown_host = if host.parse::<std::net::IpAddr>().is_ok() {
        addr.ip().to_string()
    } else {
        host
    };
    let url = match addr {
        std::net::SocketAddr::V6(_) if shown_host.contains(':') => {
            format!("http://[{shown_host}]:{}", addr.port())
        }
        _ => format!("http://{shown_host}:{}", addr.port()),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "up: listening on {url}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }

    let stopped = tokio::select! {
        () = up_emulator::serve_http(listener, emulator.clone()) => Ok(()),
        signal = shutdown_signal() => signal,
    };
    eprintln!("up: stopping the function");
    emulator.shutdown().await;
    stopped
}

/// `host:port`, `[v6]:port`, `:port` or `port` (host `localhost`).
pub fn parse_listen(text: &str) -> anyhow::Result<(String, u16)> {
    let bad = || {
        anyhow::anyhow!(
            "--listen {text:?}: expected host:port, a port, or 127.0.0.1:0 for any free port"
        )
    };
    let text = text.trim();
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if host.contains(':') && !text.starts_with('[') {
                return Err(bad());
            }
            (host.to_owned(), port)
        }
        Some((_, port)) => ("localhost".to_owned(), port),
        None => ("localhost".to_owned(), text),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// Builds this workspace's bootstrap with cargo (its output on stderr).
async fn build_bootstrap() -> anyhow::Result<PathBuf> {
    let root = local::workspace_root();
    if !root.join("proxy").join("Cargo.toml").is_file() {
        bail!(
            "no bootstrap: set UP_BOOTSTRAP (or --bootstrap) to a built bootstrap (the up source tree at {} is not there to build one)",
            root.display()
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    eprintln!("up: building the bootstrap (cargo build --release -p up-proxy)");
    local::build_bootstrap(&cargo, target_dir.as_deref().map(Path::new))
        .await
        .context("no bootstrap: set UP_BOOTSTRAP to a built one, or fix the build")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let parsed = |s: &str| parse_listen(s).unwrap();
        assert_eq!(parsed("localhost:3000"), ("localhost".into(), 3000));
        assert_eq!(parsed("127.0.0.1:0"), ("127.0.0.1".into(), 0));
        assert_eq!(parsed("8080"), ("localhost".into(), 8080));
        assert_eq!(parsed(":8080"), ("localhost".into(), 8080));
        assert_eq!(parsed("[::1]:3000"), ("::1".into(), 3000));
        assert_eq!(parsed("0.0.0.0:80"), ("0.0.0.0".into(), 80));
        for bad in [
            "",
            "host:",
            "host:port",
            "::1:3000",
            "1:2:3",
            "[]:1",
            "70000",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}
