//! The crate's error type.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong in the emulator itself.
///
/// What the *function* does wrong (a function error, a timeout, a crash) is not an error
/// here: it is an [`Outcome`](crate::Outcome) of an invocation, as in real Lambda.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime binary or the task root does not exist.
    #[error("{what} {path} not found")]
    NotFound {
        /// `runtime binary` or `task root`.
        what: &'static str,
        /// The path as configured.
        path: PathBuf,
        /// Why it could not be resolved.
        source: std::io::Error,
    },
    /// Binding a loopback listener for an instance's Runtime API failed.
    #[error("cannot bind the Runtime API listener")]
    Bind(#[source] std::io::Error),
    /// The runtime process could not be started.
    #[error("cannot start runtime {path}")]
    Spawn {
        /// The runtime binary.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The runtime failed its init phase (posted `/init/error` or exited before `/next`).
    #[error("runtime failed to initialise: {0}")]
    Init(InitFailure),
    /// No instance called `/next` within the bound given to `wait_ready`.
    #[error("no instance became ready within {0:?}")]
    NotReady(Duration),
    /// The emulator was shut down; it takes no more invocations.
    #[error("the emulator is shut down")]
    ShutDown,
    /// An invocation payload over Lambda's synchronous limit.
    #[error("payload of {size} bytes exceeds Lambda's limit of {limit} bytes")]
    PayloadTooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A function result that API Gateway could not turn into an HTTP response.
    #[error("malformed function result: {0}")]
    MalformedResult(&'static str),
    /// `up.json` could not be read.
    #[error("cannot read {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `up.json` is not JSON, or `lambda.timeout`/`lambda.memory` has the wrong type.
    #[error("{path}: {reason}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// `cargo build` for the bootstrap could not be run or failed.
    #[error("building the bootstrap (`{command}`) failed: {reason}")]
    Build {
        /// The command line.
        command: String,
        /// The exit status or the I/O error.
        reason: String,
    },
}

/// Why a runtime failed its init phase: what it reported, how it exited, what it last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitFailure {
    /// `errorType` from `/init/error`, or `Runtime.ExitError` when the runtime just exited.
    pub error_type: String,
    /// `errorMessage` from `/init/error`, or a description of the exit.
    pub error_message: String,
    /// The runtime's exit status, if it had exited when the failure was reported.
    pub status: Option<ExitStatus>,
    /// The runtime's last stderr lines, oldest first.
    pub stderr: Vec<String>,
}

impl fmt::Display for InitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)?;
        let exit = describe_exit(self.status);
        if self.status.is_some() && !self.error_message.contains(&exit) {
            write!(f, " ({exit})")?;
        }
        Ok(())
    }
}

/// Describes an exit the way Lambda's messages do: `exit status 1`, `signal: killed`.
pub(crate) fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => match nix::sys::signal::Signal::try_from(signal) {
                Ok(name) => format!("signal: {signal} ({name})"),
                Err(_) => format!("signal: {signal}"),
            },
            (None, None) => "unknown exit".to_owned(),
        },
        None => "exit status unknown".to_owned(),
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
