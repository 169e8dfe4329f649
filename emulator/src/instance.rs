//! One execution environment: the runtime process, its Runtime API server and its logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, InitFailure, Result, describe_exit};
use crate::logs::{LOG_CAPACITY, LogBuffer, LogLine, Stream, capture, lock};
use crate::runtime_api::{self, Completion, FunctionInfo, Job, Shared, Status};

/// How long a runtime that posted `/init/error` gets to exit on its own.
const INIT_ERROR_EXIT_GRACE: Duration = Duration::from_secs(1);
/// How long to wait for a killed runtime to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long to let the pipe readers drain after the runtime exited.
const DRAIN_WAIT: Duration = Duration::from_millis(500);
/// Stderr lines reported with an init failure.
const STDERR_TAIL: usize = 20;
/// Host variables passed to the runtime when the host environment is not inherited.
const PASS_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// How an invocation ended, as Lambda would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The runtime posted a response; the body is the function's result.
    Response(Bytes),
    /// The runtime posted to `/invocation/{id}/error`.
    FunctionError {
        /// `errorType` from the body, else the `Lambda-Runtime-Function-Error-Type` header.
        error_type: String,
        /// `errorMessage` from the body.
        error_message: String,
        /// The body as posted.
        body: Bytes,
    },
    /// The runtime failed its init phase; the instance was discarded.
    InitError(InitFailure),
    /// The function timeout elapsed; the instance was killed and will be replaced.
    Timeout,
    /// The runtime process died during the invocation; the instance will be replaced.
    RuntimeExited {
        /// Its exit status, when known.
        status: Option<ExitStatus>,
    },
}

impl Outcome {
    /// Whether the instance can serve another invocation after this outcome.
    pub fn keeps_instance(&self) -> bool {
        matches!(self, Self::Response(_) | Self::FunctionError { .. })
    }
}

/// Everything needed to start instances of one function.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) runtime: PathBuf,
    pub(crate) task_root: PathBuf,
    pub(crate) function: FunctionInfo,
    pub(crate) memory_mb: u32,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) inherit_env: bool,
    pub(crate) runtime_api_with_scheme: bool,
    pub(crate) echo_logs: bool,
}

/// A running execution environment. Dropping the last handle kills the runtime.
#[derive(Debug)]
pub struct Instance {
    index: usize,
    pid: u32,
    runtime_api: SocketAddr,
    shared: Arc<Shared>,
    logs: Arc<LogBuffer>,
    jobs: mpsc::Sender<Job>,
    /// Any message, or the sender's drop, makes the monitor kill the runtime.
    kill: mpsc::UnboundedSender<()>,
    server: JoinHandle<()>,
}

impl Instance {
    /// Binds a Runtime API for the new instance and starts the runtime process against it.
    pub(crate) async fn start(index: usize, spec: &Spec) -> Result<Self> {
        let listener = runtime_api::bind().await?;
        let runtime_api = listener.local_addr().map_err(Error::Bind)?;
        let (jobs, jobs_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared::new(spec.function.clone(), jobs_rx));
        let server = runtime_api::serve(listener, Arc::clone(&shared));

        let mut child = command(spec, runtime_api)
            .spawn()
            .map_err(|source| Error::Spawn {
                path: spec.runtime.clone(),
                source,
            })?;
        // `id` is `Some` until the child has been waited for, which has not happened yet.
        let pid = child.id().unwrap_or_default();
        tracing::info!(instance = index, pid, %runtime_api, "runtime started");

        let logs = Arc::new(LogBuffer::new(LOG_CAPACITY));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(capture(
                out,
                Stream::Stdout,
                Arc::clone(&logs),
                spec.echo_logs,
            ));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(capture(
                err,
                Stream::Stderr,
                Arc::clone(&logs),
                spec.echo_logs,
            ));
        }
        let (kill, kill_rx) = mpsc::unbounded_channel();
        tokio::spawn(monitor(index, child, kill_rx, readers, Arc::clone(&shared)));
        Ok(Self {
            index,
            pid,
            runtime_api,
            shared,
            logs,
            jobs,
            kill,
            server,
        })
    }

    /// The instance's number within its emulator, counting from 0 in start order.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The runtime process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The address of this instance's Runtime API.
    pub fn runtime_api(&self) -> SocketAddr {
        self.runtime_api
    }

    /// The runtime's output so far (both streams, in arrival order, bounded).
    pub fn logs(&self) -> Vec<String> {
        self.logs.texts()
    }

    /// The runtime's output so far, with the stream of each line.
    pub fn log_lines(&self) -> Vec<LogLine> {
        self.logs.lines()
    }

    /// Waits at most `timeout` for an output line satisfying `pred`; returns it if one came.
    pub async fn wait_for_log(
        &self,
        pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        self.logs.wait_for(pred, timeout).await
    }

    /// Whether the runtime has called `/next` at least once.
    pub fn is_ready(&self) -> bool {
        self.shared.status.borrow().ready
    }

    /// Whether the runtime process has exited.
    pub fn has_exited(&self) -> bool {
        self.shared.status.borrow().exited
    }

    /// The runtime's exit status, once it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.shared.status.borrow().exit_status
    }

    /// Names of the extensions registered through the Extensions API.
    pub fn extensions(&self) -> Vec<String> {
        lock(&self.shared.extensions)
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// Waits at most `timeout` until the runtime calls `/next`; fails with
    /// [`Error::Init`] if it reports an init error or exits first.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let mut status = self.shared.status.subscribe();
        let settled = tokio::time::timeout(
            timeout,
            settle(&mut status, |s| {
                s.ready || s.init_error.is_some() || s.exited
            }),
        )
        .await;
        match settled {
            Err(_) => Err(Error::NotReady(timeout)),
            Ok(()) if self.is_ready() => Ok(()),
            Ok(()) => Err(Error::Init(self.init_failure(None).await)),
        }
    }

    /// Waits at most `timeout` for the runtime to exit; tells whether it did.
    pub async fn wait_exited(&self, timeout: Duration) -> bool {
        let mut status = self.shared.status.subscribe();
        tokio::time::timeout(timeout, settle(&mut status, |s| s.exited))
            .await
            .is_ok()
    }

    /// Shuts the instance down: the `SHUTDOWN` event to registered extensions, SIGTERM to
    /// the runtime, `grace` to exit, then SIGKILL to the runtime's whole process group.
    ///
    /// Lambda sends SIGTERM only when an extension is registered (otherwise the runtime just
    /// gets SIGKILL); the emulator always sends it so a local run stops cleanly. Tests that
    /// rely on SIGTERM should also check [`Instance::extensions`].
    pub async fn shutdown(&self, grace: Duration) {
        if !self.has_exited() {
            let deadline = runtime_api::epoch_ms(SystemTime::now() + grace);
            self.shared.shutdown.send_replace(Some(deadline));
            tracing::debug!(instance = self.index, pid = self.pid, "sending SIGTERM");
            self.signal(Signal::SIGTERM);
            self.wait_exited(grace).await;
        }
        self.kill().await;
    }

    /// Kills the runtime and everything in its process group with SIGKILL, then waits
    /// (bounded) for the runtime to be reaped.
    pub async fn kill(&self) {
        self.start_kill();
        if !self.wait_exited(KILL_WAIT).await {
            tracing::warn!(
                instance = self.index,
                pid = self.pid,
                "runtime not reaped after SIGKILL"
            );
        }
    }

    /// Sends SIGKILL to the process group and asks the monitor to kill the runtime.
    pub(crate) fn start_kill(&self) {
        kill_group(self.pid);
        let _ = self.kill.send(());
    }

    /// Sends `signal` to the runtime process (not its group) unless it has exited.
    fn signal(&self, signal: Signal) {
        if self.has_exited() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.pid)
            && let Err(err) = kill(Pid::from_raw(pid), signal)
        {
            tracing::debug!(pid, cause = %err, "signal failed");
        }
    }

    /// Hands one event to the runtime and waits for the outcome: first for the runtime to
    /// take it (through its init on a cold start), then for its result, each bounded by
    /// `timeout`. The caller discards the instance unless [`Outcome::keeps_instance`].
    pub(crate) async fn invoke(
        &self,
        request_id: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Outcome {
        let (picked, picked_rx) = oneshot::channel();
        let (done, done_rx) = oneshot::channel();
        let mut status = self.shared.status.subscribe();
        let job = Job {
            request_id: request_id.to_owned(),
            payload,
            picked,
            done,
        };
        // The pool lends an instance to one invocation at a time, so the one-slot channel
        // is empty, and its receiver lives in `self.shared`: this cannot fail.
        if self.jobs.try_send(job).is_err() {
            return Outcome::RuntimeExited {
                status: self.exit_status(),
            };
        }

        let was_ready = self.is_ready();
        tokio::select! {
            biased;
            picked = picked_rx => {
                if picked.is_err() {
                    return Outcome::RuntimeExited { status: self.exit_status() };
                }
            }
            () = settle(&mut status, |s| s.init_error.is_some() || s.exited) => {
                let posted = self.shared.status.borrow().init_error.is_some();
                return if was_ready && !posted {
                    Outcome::RuntimeExited { status: self.exit_status() }
                } else {
                    Outcome::InitError(self.init_failure(Some(request_id)).await)
                };
            }
            () = tokio::time::sleep(timeout) => return Outcome::Timeout,
        }

        tokio::select! {
            biased;
            done = done_rx => match done {
                Ok(Completion::Response(body)) => Outcome::Response(body),
                Ok(Completion::Error { error_type, error_message, body }) => {
                    Outcome::FunctionError { error_type, error_message, body }
                }
                Err(_) => Outcome::RuntimeExited { status: self.exit_status() },
            },
            () = settle(&mut status, |s| s.exited) => Outcome::RuntimeExited { status: self.exit_status() },
            () = tokio::time::sleep(timeout) => Outcome::Timeout,
        }
    }

    /// Describes a failed init: the posted error, or the exit, with the stderr tail. A runtime
    /// that posted `/init/error` gets a moment to exit so its status can be included.
    async fn init_failure(&self, request_id: Option<&str>) -> InitFailure {
        let posted = self.shared.status.borrow().init_error.clone();
        if posted.is_some() {
            self.wait_exited(INIT_ERROR_EXIT_GRACE).await;
        }
        let status = self.exit_status();
        let (error_type, error_message) = posted.unwrap_or_else(|| {
            let prefix = request_id.map_or(String::new(), |id| format!("RequestId: {id} "));
            let message = match status {
                Some(s) if s.success() => {
                    format!("{prefix}Error: Runtime exited without providing a reason")
                }
                _ => format!(
                    "{prefix}Error: Runtime exited with error: {}",
                    describe_exit(status)
                ),
            };
            ("Runtime.ExitError".to_owned(), message)
        });
        InitFailure {
            error_type,
            error_message,
            status,
            stderr: self.logs.tail(Stream::Stderr, STDERR_TAIL),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Like Lambda discarding the sandbox: nothing the runtime started survives it.
        // (Dropping `self.kill` also makes the monitor kill and reap the runtime.)
        kill_group(self.pid);
        self.server.abort();
    }
}

/// The runtime's command: Lambda's environment, the task root as cwd, its own process group
/// (so a terminal's Ctrl-C reaches only the emulator, and a kill reaches the whole sandbox).
fn command(spec: &Spec, runtime_api: SocketAddr) -> Command {
    let mut cmd = Command::new(&spec.runtime);
    if !spec.inherit_env {
        cmd.env_clear();
        for name in PASS_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
    }
    let function = &spec.function;
    let runtime_dir = spec
        .runtime
        .parent()
        .map_or_else(|| spec.task_root.clone(), PathBuf::from);
    let stream = format!(
        "{}/[{}]{}",
        crate::apigw::utc_date(SystemTime::now()),
        function.version,
        uuid::Uuid::new_v4().simple()
    );
    cmd.env(
        "AWS_LAMBDA_RUNTIME_API",
        runtime_api::runtime_api_value(runtime_api, spec.runtime_api_with_scheme),
    )
    .env("AWS_LAMBDA_FUNCTION_NAME", &function.name)
    .env(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        spec.memory_mb.to_string(),
    )
    .env("AWS_LAMBDA_FUNCTION_VERSION", &function.version)
    .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    .env(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", function.name),
    )
    .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
    .env("AWS_REGION", crate::REGION)
    .env("AWS_DEFAULT_REGION", crate::REGION)
    .env("LAMBDA_TASK_ROOT", &spec.task_root)
    .env("LAMBDA_RUNTIME_DIR", runtime_dir)
    .env("_HANDLER", "bootstrap")
    .env("TZ", ":UTC")
    .envs(spec.env.iter().map(|(k, v)| (k, v)))
    .current_dir(&spec.task_root)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    cmd
}

/// Owns the child: reaps it, kills it on request (or when the instance is dropped), lets
/// the pipe readers drain, then publishes the exit.
async fn monitor(
    index: usize,
    mut child: Child,
    mut kill: mpsc::UnboundedReceiver<()>,
    readers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
) {
    let waited = tokio::select! {
        waited = child.wait() => waited,
        _ = kill.recv() => {
            if let Err(err) = child.start_kill() {
                tracing::debug!(instance = index, cause = %err, "kill failed");
            }
            child.wait().await
        }
    };
    // Bounded: a process the runtime started may hold the pipes open after it exited.
    let drained = tokio::time::Instant::now() + DRAIN_WAIT;
    for reader in readers {
        let _ = tokio::time::timeout_at(drained, reader).await;
    }
    let exit_status = match waited {
        Ok(status) => {
            tracing::info!(instance = index, status = %describe_exit(Some(status)), "runtime exited");
            Some(status)
        }
        Err(err) => {
            tracing::warn!(instance = index, cause = %err, "waiting for the runtime failed");
            None
        }
    };
    shared.status.send_modify(|s: &mut Status| {
        s.exited = true;
        s.exit_status = exit_status;
    });
}

/// Waits until the status satisfies `pred`. Unlike `watch::Receiver::wait_for` it holds no
/// guard afterwards: a guard kept across an await would block the monitor's update.
/// (The sender lives in `Shared`, which the caller holds, so waiting cannot fail.)
async fn settle(status: &mut watch::Receiver<Status>, pred: impl FnMut(&Status) -> bool) {
    let _ = status.wait_for(pred).await;
}

/// SIGKILL to the process group led by `pid`; a group already gone is fine.
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}
