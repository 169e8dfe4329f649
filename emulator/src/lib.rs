//! A local AWS Lambda, good enough to drive the real `bootstrap` (or any custom runtime) in
//! fast end-to-end tests and to run an app locally.
//!
//! An [`Emulator`] is one function: a pool of up to `max_instances` [`Instance`]s, each a
//! runtime process started with Lambda's environment and served its own Runtime API on a
//! loopback port. [`Emulator::invoke`] hands an event to an idle instance (starting one on a
//! cold start) and reports the [`Outcome`] as Lambda would: a response, a function error, an
//! init error, a timeout (the instance is then killed and replaced) or a crash.
//! [`serve_http`] puts an API Gateway HTTP API (payload 2.0) in front of it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), up_emulator::Error> {
//! use std::time::Duration;
//! use up_emulator::{Config, Emulator, Outcome};
//!
//! let emulator = Emulator::start(Config::new("target/release/bootstrap", "examples/node")).await?;
//! emulator.wait_ready(Duration::from_secs(10)).await?;
//! let invocation = emulator.invoke(r#"{"up_warm": {}}"#.into()).await?;
//! if let Outcome::Response(body) = invocation.outcome {
//!     println!("{}", String::from_utf8_lossy(&body));
//! }
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`pool`]: [`Config`], [`Emulator`] (instance pool, Invoke API), [`Invocation`].
//! - [`instance`]: [`Instance`]: the runtime process, its environment, signals, [`Outcome`].
//! - [`runtime_api`]: the Runtime API and Extensions API server of one instance.
//! - [`logs`]: bounded capture of a runtime's stdout and stderr.
//! - [`apigw`]: HTTP request → payload 2.0 event, function result → HTTP response.
//! - [`front`]: [`serve_http`], the HTTP front.
//! - [`local`]: `up.json` settings and the bootstrap build, for the `up-emulator` binary.
//! - [`error`]: [`Error`], [`InitFailure`].

pub mod apigw;
pub mod error;
pub mod front;
pub mod instance;
pub mod local;
pub mod logs;
pub mod pool;
pub mod runtime_api;

pub use error::{Error, InitFailure, Result};
pub use front::serve_http;
pub use instance::{Instance, Outcome};
pub use logs::{LogLine, Stream};
pub use pool::{Config, Emulator, Invocation};

/// The region every instance is told it runs in.
pub const REGION: &str = "us-east-1";
/// The account in ARNs and request contexts.
pub const ACCOUNT_ID: &str = "000000000000";
/// `AWS_LAMBDA_FUNCTION_VERSION`.
pub const FUNCTION_VERSION: &str = "$LATEST";
