//! What can go wrong: a bad target or event ([`Error`]), one failed ping ([`PingError`]).

use crate::target::MAX_CONCURRENCY;

/// A warm target or event that cannot be used. The message names the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `concurrency` is 0 or above [`MAX_CONCURRENCY`].
    #[error("concurrency {concurrency} is outside 1..={MAX_CONCURRENCY}")]
    Concurrency { concurrency: u32 },
    /// A required text field is empty.
    #[error("`{field}` must not be empty")]
    Empty { field: &'static str },
    /// The event does not have the target list's shape; `path` locates the bad value.
    #[error("warm event: {path}: {message}")]
    Event { path: String, message: String },
    /// The event is neither `{"targets": [...]}` nor an array of targets.
    #[error("warm event: expected {{\"targets\": [...]}} or an array of targets, got {found}")]
    EventShape { found: &'static str },
    /// The event lists no target.
    #[error("warm event: no targets")]
    NoTargets,
    /// The event lists one alias twice; two runs at once would share its environments.
    #[error("warm event: {function}:{qualifier} is listed twice")]
    DuplicateTarget { function: String, qualifier: String },
}

/// Why one ping did not count as answered. Its text goes to [`crate::Report::error_messages`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PingError {
    /// The target was refused before any Invoke was sent.
    #[error("not sent: {0}")]
    Refused(Error),
    /// The invocation failed (`FunctionError` set): the function's `errorType` and
    /// `errorMessage`, e.g. `Up.UnsupportedEvent` from a bootstrap without warm pings.
    #[error("{error_type}: {message}")]
    Function { error_type: String, message: String },
    /// The invocation succeeded but its payload is not a warm reply: the target does not run
    /// the up bootstrap, or the alias points at another function.
    #[error("not a warm reply: {payload}")]
    NotAReply { payload: String },
    /// A warm reply that answers another run or another ping of this run.
    #[error("reply to {got} (expected run {run} index {index})")]
    Mismatch {
        run: String,
        index: u32,
        got: String,
    },
    /// The Invoke call itself failed: timeout, connection, permission, unknown function…
    #[error("Invoke failed: {0}")]
    Invoke(String),
    /// The task sending the ping panicked or was cancelled.
    #[error("ping task failed: {0}")]
    Task(String),
}
