//! up's Lambda custom runtime: the `bootstrap` that runs an unchanged HTTP server on Lambda.
//!
//! The bootstrap starts the user's server from `up.json`'s `proxy.command`, waits until it
//! listens, then takes events from the Lambda Runtime API, turns each API Gateway (REST v1,
//! HTTP API v2), ALB or Function URL event into a real HTTP request to the server over loopback,
//! and turns the server's response back into the event's response shape, byte for byte.
//!
//! # Layout
//! - `check`: the pure event → response path, for fuzzing and its regression tests.
//! - `env`: the one seam through which the process environment is read.
//! - `event`: classifying the raw event before any HTTP parsing.
//! - `guard`: probing each raw event before `lambda_runtime`, turning unreadable ones into errors.
//! - `request`: event → HTTP request (the translation rules live in its docs).
//! - `response`: HTTP response → Lambda response of the same shape.
//! - `headers`: hop-by-hop headers, dropped both ways.
//! - `forward`: the keep-alive pool to the app, with one retry on a stale connection.
//! - `supervisor`: spawning the app, waiting for it to listen, its output as logs.
//! - `middleware`: the tower stack between the translated request and the app.
//! - `brotli`: a small brotli encoder for `Content-Encoding: br` (no dictionary, no big tables).
//! - `log`: JSON-lines logging on stdout.
//! - `warm`: warm-up pings, answered without the app.
//! - `runtime`: start-up and the invocation loop on `lambda_runtime`.
//! - `error`: the error types and their Lambda `errorType`s.

pub mod brotli;
pub mod check;
pub mod env;
pub mod error;
pub mod event;
pub mod forward;
pub mod guard;
pub mod headers;
pub mod log;
pub mod middleware;
pub mod request;
pub mod response;
pub mod runtime;
pub mod supervisor;
pub mod warm;

pub use env::Env;
pub use runtime::run;
