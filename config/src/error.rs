//! Errors of loading `up.json`.

use std::path::PathBuf;

/// Why `up.json` could not be turned into a [`crate::Config`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path}: not valid JSON: {message} (line {line}, column {column})")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said, without its position suffix.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A key is unknown or a value is out of range; `key` is its dotted path.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key path, e.g. `proxy.listen_timeout` or `stages.production.lambda.memory`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// `UP_STAGE` (or the stage asked for) names a stage that `up.json` does not define.
    #[error("{path}: unknown stage {stage:?}; defined stages: {known}")]
    UnknownStage {
        /// The file.
        path: PathBuf,
        /// The stage asked for.
        stage: String,
        /// The stages that exist, comma-separated.
        known: String,
    },
}
