//! The access log: one JSON line per request, written after the response.
//!
//! Fields: `method`, `path`, `query`, `status`, `duration_ms`, `bytes_in`, `bytes_out`, `ip`
//! (the request context's source IP), `user_agent`, `cold` (the environment's first
//! invocation), `x_request_id` (the id the app got as `X-Request-Id`), `cause` for a failure
//! inside the bootstrap; the log sink adds `request_id`, `instance` and `stage`. The level is
//! `info`, `warn` for 4xx, `error` for 5xx. `logs.disable` turns the lines off, except for
//! failures with a [`Cause`], which are always logged (once, here).
//!
//! The layer also puts `X-Request-Id` on the response when the app did not set one, so a client
//! can quote it.

use super::{Cause, Meta, Request, Response};
use http::header::{HeaderValue, USER_AGENT};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;
use tower::{Layer, Service};

static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Adds the access log (`enabled`: `!logs.disable`).
#[derive(Debug, Clone, Copy)]
pub struct AccessLogLayer {
    enabled: bool,
}

impl AccessLogLayer {
    /// Request lines on or off (failures are logged either way).
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            enabled: self.enabled,
        }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    enabled: bool,
}

/// What the line says about the request, taken before the request moves on.
#[derive(Debug)]
struct Line {
    started: Instant,
    method: http::Method,
    path: String,
    query: String,
    bytes_in: usize,
    ip: String,
    user_agent: String,
    cold: bool,
    request_id: Option<HeaderValue>,
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let meta = request.extensions().get::<Meta>();
        let line = Line {
            started: Instant::now(),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or("").to_owned(),
            bytes_in: request.body().len(),
            ip: meta.and_then(|m| m.source_ip.clone()).unwrap_or_default(),
            user_agent: request
                .headers()
                .get(USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
            cold: meta.is_some_and(|m| m.cold),
            request_id: request.headers().get(&X_REQUEST_ID).cloned(),
        };
        ResponseFuture {
            inner: self.inner.call(request),
            line: Some(line),
            enabled: self.enabled,
        }
    }
}

pin_project! {
    /// The future of [`AccessLog`]: logs once the inner response is there.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        line: Option<Line>,
        enabled: bool,
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let (Some(line), Ok(response)) = (this.line.take(), result.as_mut()) {
            if let Some(id) = &line.request_id
                && !response.headers().contains_key(&X_REQUEST_ID)
            {
                response
                    .headers_mut()
                    .insert(X_REQUEST_ID.clone(), id.clone());
            }
            let cause = response.extensions().get::<Cause>();
            if *this.enabled || cause.is_some() {
                write(&line, response, cause);
            }
        }
        Poll::Ready(result)
    }
}

fn write(line: &Line, response: &Response, cause: Option<&Cause>) {
    let status = response.status().as_u16();
    let duration_ms = line.started.elapsed().as_secs_f64() * 1000.0;
    let bytes_out = response.body().len();
    let x_request_id = line
        .request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let cause = cause.map(|c| c.0.as_str());
    macro_rules! emit {
        ($level:ident) => {
            tracing::$level!(
                method = %line.method,
                path = %line.path,
                query = %line.query,
                status,
                duration_ms,
                bytes_in = line.bytes_in,
                bytes_out,
                ip = %line.ip,
                user_agent = %line.user_agent,
                cold = line.cold,
                x_request_id,
                cause,
                "request"
            )
        };
    }
    match status {
        500.. => emit!(error),
        400..500 => emit!(warn),
        _ => emit!(info),
    }
}
