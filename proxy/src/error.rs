//! The bootstrap's errors, and the Lambda `errorType` each one is reported as.

use std::time::Duration;

/// Why the bootstrap could not get to its first `/next`. Reported through `/runtime/init/error`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A Lambda runtime variable is missing (not running under a Runtime API).
    #[error("missing environment variables: {0} (is this running under a Lambda Runtime API?)")]
    MissingEnv(String),
    /// `up.json` is broken.
    #[error("{0}")]
    Config(#[from] up_config::ConfigError),
    /// The app could not be spawned at all.
    #[error("cannot start the app with `{command}`: {source}")]
    Spawn {
        /// The shell command.
        command: String,
        /// The spawn failure.
        source: std::io::Error,
    },
    /// The app exited before it listened.
    #[error("the app exited ({status}) before listening on port {port}; last output:\n{output}")]
    ExitedEarly {
        /// Exit status, as the OS describes it.
        status: String,
        /// The port it was given.
        port: u16,
        /// Its last lines of stderr (and stdout).
        output: String,
    },
    /// The app did not listen in time.
    #[error(
        "the app did not listen on port {port} within {waited:?} (proxy.listen_timeout); last output:\n{output}"
    )]
    ListenTimeout {
        /// The port it was given.
        port: u16,
        /// How long we waited.
        waited: Duration,
        /// Its last lines of stderr (and stdout).
        output: String,
    },
    /// A middleware's configuration is unusable (auth keys, throttle, rules).
    #[error("up.json: {0}")]
    Middleware(#[from] crate::middleware::StackError),
    /// No free loopback port could be found.
    #[error("cannot find a free loopback port: {0}")]
    NoPort(std::io::Error),
}

impl StartError {
    /// The `errorType` Lambda records for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            StartError::MissingEnv(_) => "Up.RuntimeEnvironment",
            StartError::Config(_) | StartError::Middleware(_) => "Up.InvalidConfig",
            StartError::Spawn { .. }
            | StartError::ExitedEarly { .. }
            | StartError::ListenTimeout { .. }
            | StartError::NoPort(_) => "Up.AppStartFailed",
        }
    }
}

/// Why one request could not be forwarded to the app. Each becomes an HTTP response (see
/// [`ForwardError::status`]), never an invocation error.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The app could not be reached or broke the connection.
    #[error("the app did not answer: {0}")]
    Unreachable(#[source] hyper::Error),
    /// Connecting to the app failed.
    #[error("cannot connect to the app: {0}")]
    Connect(#[source] std::io::Error),
    /// The app took longer than the request's time budget.
    #[error("the app did not answer within {0:?}")]
    Timeout(Duration),
    /// Reading the app's response body failed.
    #[error("the app's response body failed: {0}")]
    Body(#[source] hyper::Error),
}

impl ForwardError {
    /// The status the client gets.
    pub fn status(&self) -> http::StatusCode {
        match self {
            ForwardError::Timeout(_) => http::StatusCode::GATEWAY_TIMEOUT,
            ForwardError::Unreachable(_) | ForwardError::Connect(_) | ForwardError::Body(_) => {
                http::StatusCode::BAD_GATEWAY
            }
        }
    }
}

/// Why an HTTP-shaped event could not be turned into a request. Answered with `400`.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The event matched an HTTP shape but a field is invalid (header, method, ...).
    #[error("invalid {shape} event: {message}")]
    Invalid {
        /// Which event shape.
        shape: &'static str,
        /// What was wrong.
        message: String,
    },
    /// `isBase64Encoded` was true but the body is not base64.
    #[error("the request body is marked base64 but is not: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The path or query cannot form a request target.
    #[error("invalid request path or query: {0}")]
    Uri(#[from] http::uri::InvalidUri),
}
