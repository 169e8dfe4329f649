//! The tower stack every translated request goes through before it reaches the app.
//!
//! Every layer is a `Service<Request, Response = Response, Error = Infallible>` over buffered
//! bodies ([`Request`], [`Response`]): Lambda hands the whole request over and takes the whole
//! response back, so nothing streams. A policy outcome (401, 403, 429, a redirect, a static
//! file, an error page) is a response, never an error: an error out of the stack would fail the
//! invocation and API Gateway would show a bare 502.
//!
//! Each layer is always in the stack and passes requests through untouched when `up.json` does
//! not configure it, so the stack has one type whatever the configuration. [`stack`] builds it
//! and says why the layers stand in their order.
//!
//! What a layer needs to know beyond the HTTP request (the request context's source IP, whether
//! the environment is cold, the time budget) travels in the request's extensions as [`Meta`].
//!
//! # Layout
//! - `access_log`: one JSON line per request, after the response (also puts `X-Request-Id` on
//!   the response).
//! - `limit`: a response Lambda would refuse (over 6 MB) becomes a clear `502`.
//! - `throttle`: `governor` rate limits per source IP, per header value, or global: `429`.
//! - `cors`: `cors` (tower-http's CORS layer, configured from up.json).
//! - `auth`: basic, bearer token and JWT auth, with `public` paths: `401`/`403`.
//! - `headers`: `headers` rules by path pattern, and `X-Robots-Tag: none` outside production.
//! - `compression`: gzip and br for responses worth compressing.
//! - `redirects`: `redirects` (3xx redirects and 200 rewrites).
//! - `static_files`: `static` (files served without the app).
//! - `error_pages`: `error_pages` (HTML pages for 4xx/5xx when the client accepts HTML).
//! - `app`: the bottom of the stack: the request sent to the app over loopback.
//! - `pattern`: path patterns (`/api/*`, `/users/:id`) and path normalisation shared by rules.

pub mod access_log;
pub mod app;
pub mod auth;
pub mod compression;
pub mod cors;
pub mod error_pages;
pub mod headers;
pub mod limit;
pub mod pattern;
pub mod redirects;
pub mod static_files;
pub mod throttle;

use crate::event::Shape;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use std::convert::Infallible;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use up_config::Config;

/// A translated request, body buffered.
pub type Request = http::Request<Bytes>;
/// A response, body buffered.
pub type Response = http::Response<Bytes>;
/// The whole stack, boxed once.
pub type Stack = BoxCloneSyncService<Request, Response, Infallible>;

/// What the stack knows about a request beyond its HTTP form (a request extension).
#[derive(Debug, Clone)]
pub struct Meta {
    /// The event's shape (the response is converted back to it).
    pub shape: Shape,
    /// The client's IP from the request context; never a client-supplied header.
    pub source_ip: Option<String>,
    /// The event's own request id (API Gateway's; the app gets it as `X-Request-Id`).
    pub request_id: String,
    /// True for the first invocation this execution environment serves.
    pub cold: bool,
    /// How long the app may take (the smaller of `proxy.timeout` and the invocation deadline).
    pub budget: Duration,
}

/// Why a request failed inside the bootstrap (a response extension): the access log writes it
/// as `cause`, so each failure is logged once, on the request's line.
#[derive(Debug, Clone)]
pub struct Cause(pub String);

/// A short plain-text response.
pub fn text(status: StatusCode, message: &str) -> Response {
    let mut response = http::Response::new(Bytes::from(format!("{message}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A configuration the stack cannot be built from (reported as `Up.InvalidConfig`).
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A layer's configuration is unusable (a missing environment variable, an unreadable
    /// key file, ...).
    #[error("{key}: {message}")]
    Config {
        /// The up.json key path.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Builds the stack in front of `app`.
///
/// Outermost first, and why there:
/// 1. `access_log`: sees every request and the response the client really gets, whatever
///    answered it (a throttle, auth, a static file, the app).
/// 2. `limit`: right inside the log, so an oversized response is logged as the `502` the
///    client gets.
/// 3. `throttle`: before anything costly; refusing a flood must stay cheap, so it runs before
///    auth's password hashing and signature checks (a brute-force attempt is throttled, not
///    hashed).
/// 4. `cors`: before auth, because browsers send preflight `OPTIONS` without credentials, and so
///    that `401`s still carry CORS headers the page can read.
/// 5. `auth`: before every layer that serves content (rules, redirects, static files, the app).
/// 6. `headers`: the `headers` rules and `X-Robots-Tag` apply to every response that is
///    content, static files and error pages included.
/// 7. `compression`: outside the layers that produce bodies, so static files, error pages and
///    the app's responses are all compressed, and the 6 MB limit applies to what is sent.
/// 8. `redirects`: before static files, so a rewrite can point at a file.
/// 9. `static_files`: answers from `static.dir` without touching the app; misses fall through.
/// 10. `error_pages`: wraps the app only, replacing its (and the bootstrap's own 502/504) error
///     bodies with the HTML pages.
/// 11. `app`: the request to the app.
///
/// `app` is [`app::App`] in the bootstrap; benchmarks and tests put a stand-in there.
pub fn stack<A>(config: &Config, env: &crate::Env, app: A) -> Result<Stack, StackError>
where
    A: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync,
    A: 'static,
    A::Future: Send + 'static,
{
    let service = ServiceBuilder::new()
        .layer(access_log::AccessLogLayer::new(!config.logs.disable))
        .layer(limit::LimitLayer::new(crate::runtime::MAX_RESPONSE))
        .layer(throttle::layer(config, env)?)
        .layer(cors::layer(config, env)?)
        .layer(auth::layer(config, env)?)
        .layer(headers::layer(config, env)?)
        .layer(compression::layer(config, env)?)
        .layer(redirects::layer(config, env)?)
        .layer(static_files::layer(config, env)?)
        .layer(error_pages::layer(config, env)?)
        .service(app);
    Ok(BoxCloneSyncService::new(service))
}
