//! The library's error type.

/// What can go wrong talking HTTP or reading `/proc`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `AWS_LAMBDA_RUNTIME_API` is not set.
    #[error("AWS_LAMBDA_RUNTIME_API is not set")]
    NoRuntimeApi,
    /// Connecting to the server failed.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange failed")]
    Http(#[from] hyper::Error),
    /// A request could not be built (a bad path or header).
    #[error("cannot build the request")]
    Request(#[from] hyper::http::Error),
    /// The server answered with an unexpected status.
    #[error("{what} answered {status}")]
    Status {
        /// Which request.
        what: &'static str,
        /// The status received.
        status: hyper::StatusCode,
    },
    /// `/next` answered without `Lambda-Runtime-Aws-Request-Id`.
    #[error("/next answered without a request id")]
    NoRequestId,
    /// A `/proc` file could not be read or lacked the field.
    #[error("cannot read {field} from {path}")]
    Proc {
        /// The file.
        path: String,
        /// The field looked for.
        field: &'static str,
    },
}
