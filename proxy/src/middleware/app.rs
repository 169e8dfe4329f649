//! The bottom of the stack: the request sent to the app over loopback.
//!
//! [`Upstream`] owns the app's [`Supervisor`]: before each exchange it makes sure the app runs
//! (restarting it if it died, waiting for it within the request's budget), sends the request
//! through the keep-alive pool, and tells a failure apart: the app died (`502`, with its exit
//! status), it keeps crashing (`503` with `Retry-After`), it was too slow (`504`), or it broke
//! the connection (`502`). [`App`] is the tower service around it; failures become responses
//! carrying their [`Cause`] for the access log.

use super::{Cause, Meta, Request, Response, text};
use crate::error::ForwardError;
use crate::supervisor::{Supervisor, Unavailable};
use bytes::Bytes;
use http::StatusCode;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The app, as the requests see it.
#[derive(Debug)]
pub struct Upstream {
    supervisor: Supervisor,
    max_body: u64,
    timeout: Duration,
}

impl Upstream {
    /// The app run by `supervisor`; request bodies over `max_body` bytes are refused; `timeout`
    /// bounds a request that has no [`Meta`] budget.
    pub fn new(supervisor: Supervisor, max_body: u64, timeout: Duration) -> Self {
        Self {
            supervisor,
            max_body,
            timeout,
        }
    }

    /// The app's supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// One exchange with the app: restart it first if it died, and once more if it turns out
    /// to have died at rest (the request was refused, so it never reached the app).
    pub async fn exchange(
        &self,
        request: &http::Request<Bytes>,
        budget: Duration,
    ) -> Result<http::Response<Bytes>, Failure> {
        let started = Instant::now();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let left = budget.saturating_sub(started.elapsed());
            let forwarder = match self.supervisor.ready(left).await {
                Ok(forwarder) => forwarder,
                Err(Unavailable::CrashLoop(wait)) => {
                    let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
                    return Err(Failure::CrashLoop { retry_after });
                }
            };
            let left = budget.saturating_sub(started.elapsed());
            let outcome = match tokio::time::timeout(left, forwarder.send(request)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ForwardError::Timeout(budget)),
            };
            let refused = matches!(outcome, Err(ForwardError::Connect(_)));
            if refused
                && attempts == 1
                && self
                    .exit_status(budget.saturating_sub(started.elapsed()))
                    .await
                    .is_some()
            {
                continue;
            }
            break outcome;
        };
        match outcome {
            Ok(response) => {
                self.supervisor.answered();
                Ok(response)
            }
            // A timeout says nothing about the app's death, and its budget is spent.
            Err(e @ ForwardError::Timeout(_)) => Err(Failure::Forward(e)),
            Err(e) => match self
                .exit_status(budget.saturating_sub(started.elapsed()))
                .await
            {
                Some(status) => Err(Failure::Died(status)),
                None => Err(Failure::Forward(e)),
            },
        }
    }

    /// After a failed exchange: did the app die? Its exit may trail the closed connection by a
    /// moment, so look again for up to 200 ms, never past `left` of the request's budget.
    async fn exit_status(&self, left: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + left.min(Duration::from_millis(200));
        loop {
            if let Some(status) = self.supervisor.died().await {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The response the client gets for `request`: the app's, or the failure's.
    pub async fn respond(&self, request: &Request, budget: Duration) -> Response {
        let size = request.body().len() as u64;
        if size > self.max_body {
            let message = format!(
                "request body of {size} bytes exceeds proxy.max_body ({} bytes)",
                self.max_body
            );
            return failed(text(StatusCode::PAYLOAD_TOO_LARGE, &message), message);
        }
        match self.exchange(request, budget).await {
            Ok(response) => response,
            Err(Failure::CrashLoop { retry_after }) => {
                let mut response = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable: the app keeps crashing and is restarting",
                );
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(retry_after),
                );
                failed(
                    response,
                    format!("the app keeps crashing; next start in {retry_after} s"),
                )
            }
            Err(failure) => {
                let message = failure.to_string();
                failed(text(failure.status(), &message), message)
            }
        }
    }
}

/// `response`, marked with why it is a failure.
fn failed(mut response: Response, cause: String) -> Response {
    response.extensions_mut().insert(Cause(cause));
    response
}

/// Why an exchange with the app gave no response.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The app keeps crashing; its next start is `retry_after` seconds away.
    #[error("the app keeps crashing and is restarting")]
    CrashLoop {
        /// Seconds until the next start.
        retry_after: u64,
    },
    /// The app died while handling the request.
    #[error("the app exited ({0}) while handling the request; it is being restarted")]
    Died(std::process::ExitStatus),
    /// Any other failure to get an answer.
    #[error(transparent)]
    Forward(ForwardError),
}

impl Failure {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::CrashLoop { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Died(_) => StatusCode::BAD_GATEWAY,
            Failure::Forward(e) => e.status(),
        }
    }
}

/// The tower service at the bottom of the stack.
#[derive(Debug, Clone)]
pub struct App {
    upstream: Arc<Upstream>,
}

impl App {
    /// The service sending requests to `upstream`.
    pub fn new(upstream: Arc<Upstream>) -> Self {
        Self { upstream }
    }
}

impl tower::Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let upstream = self.upstream.clone();
        Box::pin(async move {
            let budget = request
                .extensions()
                .get::<Meta>()
                .map_or(upstream.timeout, |m| m.budget);
            Ok(upstream.respond(&request, budget).await)
        })
    }
}
