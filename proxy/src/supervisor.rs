//! Running the user's server: spawn it, wait until it listens, forward its output as logs.
//!
//! The app runs as `sh -c "$proxy.command"` in the task root, in a process group of its own
//! (so a signal reaches everything it started) and with `PR_SET_PDEATHSIG` set (so it dies if
//! the bootstrap is killed). `PR_SET_PDEATHSIG` reaches only the process the bootstrap started,
//! not what that process starts (a compound command's programs, `npm start`'s node, a
//! server's workers), so a watchdog ([`watchdog`]) kills the app's whole group when the
//! bootstrap goes away, even by SIGKILL. It gets `PORT` (a free loopback port), `UP_STAGE`, `UP_RESTARTS`,
//! the function's environment, and `up.json`'s `environment` for any key the function's
//! environment does not set.

use crate::env::Env;
use crate::error::StartError;
use crate::log::LogSink;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use up_config::Config;

/// How often the app's port is tried while it starts (the bound is 5 ms).
const LISTEN_POLL: Duration = Duration::from_millis(1);
/// Lines of output kept for error messages.
const TAIL_LINES: usize = 20;
/// Longest app output line logged as is; longer lines are cut with a marker.
pub const MAX_LINE: usize = 16 * 1024;
/// How much of the app's output is read at a time: a pipe's atomic write. A longer line is
/// put together over several reads (up to [`MAX_LINE`]); the bootstrap holds 4 KiB per stream
/// rather than a line's worth.
const READ_BUFFER: usize = 4 * 1024;

/// A running app.
#[derive(Debug)]
pub struct App {
    child: Child,
    /// The app's process group (its pid: it was started with `process_group(0)`).
    pgid: Option<Pid>,
    addr: SocketAddr,
    tail: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<JoinHandle<()>>,
    /// The write end of the watchdog's pipe: dropping it (or the bootstrap dying) sets the
    /// watchdog off.
    _watchdog: Option<tokio::process::ChildStdin>,
}

impl App {
    /// Spawns the app and waits until its port accepts connections, at most
    /// `proxy.listen_timeout`.
    pub async fn start(
        config: &Config,
        env: &Env,
        sink: Arc<LogSink>,
        restarts: u32,
    ) -> Result<App, StartError> {
        let port = free_port().map_err(StartError::NoPort)?;
        let command = config
            .proxy
            .command
            .clone()
            .unwrap_or_else(|| "./server".to_owned());
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(exec_form(&command))
            .current_dir(env.task_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for (key, value) in &config.environment {
            if env.get(key).is_none() {
                cmd.env(key, value);
            }
        }
        cmd.env("PORT", port.to_string())
            .env("UP_STAGE", env.stage().unwrap_or(""))
            .env("UP_RESTARTS", restarts.to_string());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| StartError::Spawn {
            command: command.clone(),
            source,
        })?;
        tracing::info!(command = %command, port, pid = child.id(), restarts, "app started");

        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let mut readers = Vec::with_capacity(2);
        if let Some(out) = child.stdout.take() {
            let level = config.logs.stdout;
            readers.push(forward_output(
                out,
                "stdout",
                level,
                sink.clone(),
                tail.clone(),
            ));
        }
        if let Some(err) = child.stderr.take() {
            let level = config.logs.stderr;
            readers.push(forward_output(err, "stderr", level, sink, tail.clone()));
        }
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let watchdog = pgid.and_then(|pgid| match watchdog(pgid) {
            Ok(pipe) => Some(pipe),
            Err(e) => {
                tracing::warn!(cause = %e, "no watchdog for the app's process group");
                None
            }
        });
        let mut app = App {
            child,
            pgid,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            tail,
            readers,
            _watchdog: watchdog,
        };

        let started = Instant::now();
        let limit = config.proxy.listen_timeout.get();
        loop {
            if let Ok(Some(status)) = app.child.try_wait() {
                app.drain_output().await;
                return Err(StartError::ExitedEarly {
                    status: status.to_string(),
                    port,
                    output: app.tail(),
                });
            }
            if let Some(addr) = listening(port).await {
                app.addr = addr;
                tracing::info!(
                    port,
                    ms = started.elapsed().as_millis() as u64,
                    "app listening"
                );
                return Ok(app);
            }
            if started.elapsed() >= limit {
                let _ = app.child.start_kill();
                let _ = app.child.wait().await;
                app.drain_output().await;
                return Err(StartError::ListenTimeout {
                    port,
                    waited: limit,
                    output: app.tail(),
                });
            }
            tokio::time::sleep(LISTEN_POLL).await;
        }
    }

    /// The exit status, if the app's process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Where the app listens (127.0.0.1, or ::1 for apps that bind only IPv6 `localhost`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that can stop the app's whole process group from elsewhere.
    pub fn group(&self) -> Group {
        Group(self.pgid)
    }

    /// The last lines the app wrote, oldest first.
    pub fn tail(&self) -> String {
        let tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tail.is_empty() {
            return "(no output)".to_owned();
        }
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits (briefly) for the output readers to reach the end of the app's output, so an error
    /// message can quote its last lines.
    async fn drain_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // `kill_on_drop` reaches only the shell; whatever it started must go too.
        self.group().kill();
    }
}

/// The app's process group: everything `proxy.command` started.
#[derive(Debug, Clone, Copy)]
pub struct Group(Option<Pid>);

impl Group {
    /// SIGTERM to the group, then SIGKILL to whatever is left after `grace`.
    pub async fn stop(self, grace: Duration) {
        let Some(pgid) = self.0 else { return };
        if killpg(pgid, Signal::SIGTERM).is_err() {
            return;
        }
        let started = Instant::now();
        while started.elapsed() < grace {
            // Signal 0 only asks whether any process of the group is left.
            if killpg(pgid, None).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "app did not stop after SIGTERM; killing it"
        );
        self.kill();
    }

    /// SIGKILL to the whole group.
    pub fn kill(self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// `exec <command>` when the command is one simple command, so the shell is replaced by the app
/// and `PR_SET_PDEATHSIG` applies to the app itself; compound commands run as written.
pub fn exec_form(command: &str) -> String {
    let trimmed = command.trim();
    let first = trimmed.split_whitespace().next().unwrap_or("");
    let compound = trimmed.is_empty()
        || trimmed.contains([';', '&', '|', '(', ')', '`', '\n', '{', '}'])
        || first.contains('=')
        || matches!(
            first,
            "exec"
                | "if"
                | "for"
                | "while"
                | "until"
                | "case"
                | "!"
                | "cd"
                | "export"
                | "set"
                | "."
                | "source"
        );
    if compound {
        command.to_owned()
    } else {
        format!("exec {trimmed}")
    }
}

/// Keeps the app running: notices when it has died, restarts it with exponential backoff
/// (`proxy.backoff`), counts restarts (`UP_RESTARTS`), and tells a request when to come back if
/// the app is in a crash loop.
#[derive(Debug)]
pub struct Supervisor {
    config: Config,
    env: Env,
    sink: Arc<LogSink>,
    state: tokio::sync::Mutex<State>,
    group: std::sync::Mutex<Group>,
}

#[derive(Debug)]
struct State {
    app: App,
    forwarder: Arc<crate::forward::Forwarder>,
    restarts: u32,
    /// Consecutive failures (deaths and failed starts) since the app last answered.
    failures: u32,
    /// When the next start may happen.
    retry_at: Instant,
    /// Set once a death has been noticed (so it is logged and counted once).
    dead: bool,
}

/// Why no app can take a request right now.
#[derive(Debug)]
pub enum Unavailable {
    /// The app is crash-looping; the next start is due after this long.
    CrashLoop(Duration),
}

impl Supervisor {
    /// Starts the app (restart count 0) and supervises it.
    pub async fn start(config: Config, env: Env, sink: Arc<LogSink>) -> Result<Self, StartError> {
        let app = App::start(&config, &env, sink.clone(), 0).await?;
        let group = std::sync::Mutex::new(app.group());
        let forwarder = Arc::new(crate::forward::Forwarder::new(app.addr()));
        let state = State {
            app,
            forwarder,
            restarts: 0,
            failures: 0,
            retry_at: Instant::now(),
            dead: false,
        };
        Ok(Self {
            config,
            env,
            sink,
            state: tokio::sync::Mutex::new(state),
            group,
        })
    }

    /// The current app's process group.
    pub fn group(&self) -> Group {
        *self
            .group
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many times the app was restarted.
    pub async fn restarts(&self) -> u32 {
        self.state.lock().await.restarts
    }

    /// If the app has died, its exit status (logged, and its restart scheduled, once).
    pub async fn died(&self) -> Option<std::process::ExitStatus> {
        let mut state = self.state.lock().await;
        let status = state.app.exited()?;
        if !state.dead {
            state.dead = true;
            state.failures += 1;
            state.retry_at = Instant::now() + self.backoff(state.failures);
            tracing::error!(status = %status, restarts = state.restarts, output = %state.app.tail(), "app exited");
        }
        Some(status)
    }

    /// A forwarder to a running app, restarting it first if it died. Waits for a due restart
    /// when that fits in `budget`; otherwise says when to come back.
    pub async fn ready(
        &self,
        budget: Duration,
    ) -> Result<Arc<crate::forward::Forwarder>, Unavailable> {
        let deadline = Instant::now() + budget;
        // After a thaw, the invocation and news of the app's death (its connections closing)
        // arrive together; let the runtime take in that news before a request is sent.
        tokio::task::yield_now().await;
        if self.died().await.is_none() {
            return Ok(self.state.lock().await.forwarder.clone());
        }
        let mut state = self.state.lock().await;
        loop {
            if !state.dead {
                // Another request restarted it while this one waited for the lock.
                return Ok(state.forwarder.clone());
            }
            let now = Instant::now();
            if state.retry_at > deadline {
                return Err(Unavailable::CrashLoop(
                    state.retry_at.saturating_duration_since(now),
                ));
            }
            tokio::time::sleep_until(state.retry_at.into()).await;
            let restarts = state.restarts + 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let started = tokio::time::timeout(
                left,
                App::start(&self.config, &self.env, self.sink.clone(), restarts),
            )
            .await;
            match started {
                Ok(Ok(app)) => {
                    *self
                        .group
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = app.group();
                    state.forwarder = Arc::new(crate::forward::Forwarder::new(app.addr()));
                    state.app = app;
                    state.restarts = restarts;
                    state.dead = false;
                    tracing::info!(restarts, "app restarted");
                    return Ok(state.forwarder.clone());
                }
                Ok(Err(e)) => {
                    state.failures += 1;
                    state.retry_at = Instant::now() + self.backoff(state.failures);
                    tracing::error!(cause = %e, restarts, "app restart failed");
                }
                Err(_) => {
                    state.retry_at = Instant::now();
                    return Err(Unavailable::CrashLoop(Duration::from_secs(1)));
                }
            }
        }
    }

    /// The app answered: a later death starts the backoff from its minimum again.
    pub fn answered(&self) {
        if let Ok(mut state) = self.state.try_lock() {
            state.failures = 0;
        }
    }

    /// `min × factor^(failures − 1)`, at most `max`.
    fn backoff(&self, failures: u32) -> Duration {
        let b = &self.config.proxy.backoff;
        let exp = b
            .factor
            .max(1.0)
            .powi(i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX));
        let delay = b.min.get().as_secs_f64() * exp;
        Duration::from_secs_f64(delay.min(b.max.get().as_secs_f64()))
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Tries 127.0.0.1 and then ::1 (Node binds `localhost` to ::1 only on some systems).
async fn listening(port: u16) -> Option<SocketAddr> {
    for addr in [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ] {
        if TcpStream::connect(addr).await.is_ok() {
            return Some(addr);
        }
    }
    None
}

/// Sets `PR_SET_PDEATHSIG` so the app gets SIGKILL when the bootstrap dies, whatever kills it.
/// Starts the watchdog of process group `pgid`: a shell in a process group of its own (so that
/// a signal to the bootstrap's group, as emulators send, does not take it along) that blocks
/// reading a pipe from the bootstrap (the `read` builtin: no child process) and, once the
/// pipe closes, kills the whole group with SIGKILL. The pipe closes when the bootstrap exits or
/// is killed (the kernel closes its descriptors) or when the [`App`] holding its write end is
/// dropped; the shell then exits on its own.
fn watchdog(pgid: Pid) -> std::io::Result<tokio::process::ChildStdin> {
    let script = format!("read -r _; kill -9 -{pgid} 2>/dev/null; exit 0");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    // Dropping the handle without waiting: tokio reaps the shell when it exits.
    child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the watchdog has no stdin"))
}

#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2) and
    // getppid(2), both async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would signal us.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other(
                    "the bootstrap exited while starting the app",
                ));
            }
            Ok(())
        });
    }
}

/// Reads `stream` line by line into log entries, keeping the last lines for error messages.
fn forward_output<R>(
    stream: R,
    name: &'static str,
    level: up_config::value::Level,
    sink: Arc<LogSink>,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match read_line_bounded(&mut reader, &mut buf).await {
                Ok(None) => break,
                Ok(Some(cut)) => {
                    let mut line = String::from_utf8_lossy(&buf).into_owned();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                    if cut > 0 {
                        line.push_str(&format!(" …[line cut: {cut} more bytes]"));
                    }
                    sink.app_line(name, &line, level);
                    let mut tail = tail
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(format!("[{name}] {line}"));
                }
                Err(e) => {
                    tracing::warn!(stream = name, cause = %e, "cannot read the app's output");
                    break;
                }
            }
        }
    })
}

/// Reads one line (without its `\n`) into `buf`, keeping at most [`MAX_LINE`] bytes. Returns
/// `None` at the end of the stream, else how many bytes of the line were dropped.
async fn read_line_bounded<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    let mut dropped = 0usize;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(any.then_some(dropped));
        }
        any = true;
        let (part, done) = match memchr(chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        let keep = part.len().min(room);
        buf.extend_from_slice(&part[..keep]);
        dropped += part.len() - keep;
        let consumed = done.unwrap_or(chunk.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(dropped));
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands_are_execed() {
        assert_eq!(exec_form("python3 app.py"), "exec python3 app.py");
        assert_eq!(
            exec_form("./server --port $PORT"),
            "exec ./server --port $PORT"
        );
        assert_eq!(exec_form("cd api && ./server"), "cd api && ./server");
        assert_eq!(exec_form("FOO=1 ./server"), "FOO=1 ./server");
        assert_eq!(exec_form("exec ./server"), "exec ./server");
        assert_eq!(exec_form("a; b"), "a; b");
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_counted() {
        let mut input = vec![b'a'; MAX_LINE + 10];
        input.extend_from_slice(b"\nshort\nlast");
        let mut reader = BufReader::new(&input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut reader, &mut buf).await.unwrap(),
            Some(10)
        );
        assert_eq!(buf.len(), MAX_LINE);
        buf.clear();
        assert_eq!(
            read_line_bounded(&mut reader, &mut buf).await.unwrap(),
            Some(0)
        );
        assert_eq!(buf, b"short");
        buf.clear();
        assert_eq!(
            read_line_bounded(&mut reader, &mut buf).await.unwrap(),
            Some(0)
        );
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(
            read_line_bounded(&mut reader, &mut buf).await.unwrap(),
            None
        );
    }
}
