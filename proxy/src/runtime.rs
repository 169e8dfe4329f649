//! The invocation loop: start-up, then one event at a time from the Runtime API.
//!
//! Start-up loads `up.json`, starts the app and waits until it listens; only then does the loop
//! ask `/next` for an event, so the first request never races the app. A start-up failure goes
//! to `/runtime/init/error` (`Up.InvalidConfig`, `Up.AppStartFailed`) and the process exits
//! non-zero.
//!
//! Each event is looked at raw before any HTTP parsing ([`crate::event`]): HTTP shapes are
//! translated ([`crate::request`]), forwarded ([`crate::forward`]) and translated back
//! ([`crate::response`]); warm-up pings are answered here ([`crate::warm`]); anything else is
//! refused with `Up.UnsupportedEvent`.

use crate::env::Env;
use crate::error::StartError;
use crate::event::Probe;
use crate::event::Shape;
use crate::guard::{EventGuardLayer, ProbeSlot};
use crate::log::LogSink;
use crate::middleware::app::{App, Upstream};
use crate::middleware::{self, Meta, Stack};
use crate::request::translate;
use crate::response::{LambdaResponse, plain, to_lambda};
use crate::supervisor::Supervisor;
use crate::warm::{self, Count, Environment, Ping};
use bytes::Bytes;
use http::StatusCode;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;
use up_config::Config;

/// The whole bootstrap: returns the process exit code.
pub async fn run(env: Env) -> i32 {
    let instance = uuid::Uuid::new_v4().to_string();
    let environment = Environment::new(instance.clone());
    let sink = Arc::new(LogSink::stdout(instance, &env));
    crate::log::init(sink.clone());
    let code = match start(&env, sink.clone(), environment).await {
        Ok(proxy) => serve(proxy, &env).await,
        Err(e) => {
            tracing::error!(error_type = e.error_type(), cause = %e, "start-up failed");
            report_init_error(&env, &e).await;
            1
        }
    };
    sink.flush();
    code
}

/// Everything an invocation needs.
#[derive(Debug)]
pub struct Proxy {
    config: Config,
    upstream: Arc<Upstream>,
    stack: Stack,
    sink: Arc<LogSink>,
    probes: ProbeSlot,
    environment: Environment,
}

async fn start(
    env: &Env,
    sink: Arc<LogSink>,
    environment: Environment,
) -> Result<Proxy, StartError> {
    env.check_runtime()?;
    let config = up_config::load(&env.task_root(), env.stage())?;
    let supervisor = Supervisor::start(config.clone(), env.clone(), sink.clone()).await?;
    let upstream = Arc::new(Upstream::new(
        supervisor,
        config.proxy.max_body.0,
        config.proxy.timeout.get(),
    ));
    let stack = middleware::stack(&config, env, App::new(upstream.clone()))?;
    Ok(Proxy {
        upstream,
        stack,
        config,
        sink,
        probes: ProbeSlot::default(),
        environment,
    })
}

async fn serve(proxy: Proxy, env: &Env) -> i32 {
    let grace = proxy
        .config
        .proxy
        .shutdown_timeout
        .get()
        .min(SHUTDOWN_BUDGET);
    let proxy = Arc::new(proxy);
    tokio::spawn(stop_on_signal(proxy.clone(), grace));
    let registered = register_shutdown_extension(env).await;
    tracing::debug!(registered, "graceful-shutdown extension");
    let guard = EventGuardLayer::new(proxy.probes.clone());
    let handler = lambda_runtime::service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let proxy = proxy.clone();
        async move { proxy.invoke(event).await }
    });
    match lambda_runtime::Runtime::new(handler)
        .layer(guard)
        .run()
        .await
    {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(cause = %e, "the Runtime API loop stopped");
            1
        }
    }
}

/// Lambda's shutdown phase lasts 500 ms for a runtime with internal extensions; the app's
/// grace period stays inside it, whatever `proxy.shutdown_timeout` says.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(450);

/// On SIGTERM (Lambda's shutdown, or a local emulator stopping) or SIGINT: stop the app's whole
/// process group, then exit.
async fn stop_on_signal(proxy: Arc<Proxy>, grace: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM; the app will be killed with the bootstrap");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = name,
        grace_ms = grace.as_millis() as u64,
        "shutting down"
    );
    proxy.upstream.supervisor().group().stop(grace).await;
    proxy.sink.flush();
    std::process::exit(0);
}

impl Proxy {
    /// Handles one invocation. HTTP failures are HTTP responses; only events that are not HTTP
    /// requests at all become invocation errors.
    async fn invoke(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Reply, Diagnostic> {
        let id = event.context.request_id.clone();
        self.sink.set_request_id(Some(&id));
        let count = self.environment.invoked();
        let result = self.dispatch(event, count).await;
        self.sink.set_request_id(None);
        result
    }

    async fn dispatch(
        &self,
        event: LambdaEvent<Box<RawValue>>,
        count: Count,
    ) -> Result<Reply, Diagnostic> {
        let raw = event.payload.get();
        let probe = self
            .probe(raw, &event.context.request_id)
            .map_err(|reason| {
                tracing::warn!(cause = %reason, error_type = "Up.InvalidEvent", "invalid event; refused");
                diagnostic("Up.InvalidEvent", reason)
            })?;
        let shape = probe.shape();
        if shape == Shape::Warm {
            return Ok(Reply::Warm(self.warm(&probe, count).await));
        }
        if let (Shape::Other, Some(path)) = (shape, &self.config.proxy.events_path) {
            return self
                .pass_through(raw, path, &event.context)
                .await
                .map(Reply::Event);
        }
        if !shape.is_http() {
            tracing::warn!(
                event = shape.name(),
                error_type = "Up.UnsupportedEvent",
                "event is not an HTTP request; refused"
            );
            return Err(diagnostic(
                "Up.UnsupportedEvent",
                "the event is not an API Gateway, ALB or Function URL request".to_owned(),
            ));
        }
        let translated = match translate(raw, probe, shape, &event.context.request_id) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(event = shape.name(), cause = %e, status = 400, "cannot translate the event");
                return Ok(Reply::Http(plain(
                    shape,
                    StatusCode::BAD_REQUEST,
                    &format!("Bad Request: {e}"),
                )));
            }
        };
        let mut request = translated.request;
        request.extensions_mut().insert(Meta {
            shape,
            source_ip: translated.info.source_ip,
            request_id: translated.info.request_id,
            cold: count.cold,
            budget: request_budget(
                self.config.proxy.timeout.get(),
                event.context.deadline,
                SystemTime::now(),
            ),
        });
        let Ok(response) = self.stack.clone().oneshot(request).await;
        let response = within_limit(shape, to_lambda(shape, response));
        Ok(Reply::Http(response))
    }

    /// Answers a warm-up ping after holding it, without the app. A cold environment only gets
    /// here once the app listens, so warming warms the app too.
    async fn warm(&self, probe: &Probe, count: Count) -> warm::Reply {
        let ping = Ping::from_value(probe.up_warm.as_ref());
        tokio::time::sleep(ping.hold()).await;
        let reply =
            self.environment
                .reply(&ping, count, self.upstream.supervisor().restarts().await);
        tracing::debug!(
            run = ping.run.as_deref().unwrap_or(""),
            index = ping.index,
            cold = count.cold,
            hold_ms = ping.hold().as_millis() as u64,
            "warm ping"
        );
        reply
    }

    /// `proxy.events_path`: an event that is not an HTTP request is POSTed to the app as JSON
    /// (as Lambda Web Adapter's pass-through does); a 2xx answer is the invocation's result.
    async fn pass_through(
        &self,
        raw: &str,
        path: &str,
        context: &lambda_runtime::Context,
    ) -> Result<serde_json::Value, Diagnostic> {
        let mut request = http::Request::new(Bytes::copy_from_slice(raw.as_bytes()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = path
            .parse()
            .map_err(|e| diagnostic("Up.InvalidConfig", format!("proxy.events_path: {e}")))?;
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(raw.len()),
        );
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
        if let Ok(id) = http::HeaderValue::from_str(&context.request_id) {
            headers.insert("x-request-id", id);
        }
        let budget = request_budget(
            self.config.proxy.timeout.get(),
            context.deadline,
            SystemTime::now(),
        );
        let response = self
            .upstream
            .exchange(&request, budget)
            .await
            .map_err(|failure| {
                tracing::error!(cause = %failure, path, "event not delivered to the app");
                diagnostic("Up.AppUnavailable", failure.to_string())
            })?;
        let body = response.body();
        if !response.status().is_success() {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            tracing::error!(
                status = response.status().as_u16(),
                path,
                "the app failed the event"
            );
            return Err(diagnostic(
                "Up.EventFailed",
                format!(
                    "the app answered {} for the event at {path}: {excerpt}",
                    response.status()
                ),
            ));
        }
        tracing::info!(
            status = response.status().as_u16(),
            path,
            "event passed to the app"
        );
        Ok(serde_json::from_slice(body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        }))
    }
}

/// What an invocation returns: an HTTP response of the event's shape, or for a passed-through
/// event, the app's answer as JSON.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
// One value per invocation, moved once: boxing the common variant would cost an allocation on
// every request to save a copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// An answer to an HTTP event.
    Http(LambdaResponse),
    /// The app's answer to a passed-through event.
    Event(serde_json::Value),
    /// The answer to a warm-up ping.
    Warm(warm::Reply),
}

/// Time left before Lambda would time the invocation out, less what posting the response takes.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
/// Lambda's limit on a buffered response payload.
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024;

/// How long the app may take on this request: `proxy.timeout`, but never past the invocation's
/// deadline (less a margin), so the client gets a `504` rather than Lambda timing the whole
/// invocation out. A deadline that is not a plausible epoch time (in the past, or further ahead
/// than Lambda's 15-minute maximum; some emulators send a constant) is ignored.
pub fn request_budget(proxy_timeout: Duration, deadline_ms: u64, now: SystemTime) -> Duration {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let ahead = deadline_ms.saturating_sub(now_ms);
    if deadline_ms <= now_ms || ahead > 16 * 60 * 1000 {
        return proxy_timeout;
    }
    proxy_timeout.min(Duration::from_millis(ahead).saturating_sub(DEADLINE_MARGIN))
}

/// A response Lambda would refuse (over 6 MB once serialised) becomes a clear `502` instead of a
/// failed invocation.
fn within_limit(shape: Shape, response: LambdaResponse) -> LambdaResponse {
    let size = response.encoded_size();
    if size <= MAX_RESPONSE {
        return response;
    }
    let message = format!("response of {size} bytes exceeds Lambda's 6 MB limit");
    tracing::error!(status = 502, cause = %message, "response refused");
    plain(shape, StatusCode::BAD_GATEWAY, &message)
}

impl Proxy {
    /// The probe the guard took of this invocation's event (else a fresh one).
    fn probe(&self, raw: &str, request_id: &str) -> Result<Probe, String> {
        let probed = self
            .probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match probed {
            Some(p) if p.request_id == request_id => p.probe,
            _ => crate::guard::probe(raw.as_bytes()),
        }
    }
}

fn diagnostic(error_type: &str, error_message: String) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message,
    }
}

/// A client for the Runtime and Extensions APIs (`AWS_LAMBDA_RUNTIME_API`).
fn api_client(env: &Env) -> Option<lambda_runtime_api_client::Client> {
    let uri = env.runtime_api()?.parse::<http::Uri>().ok()?;
    lambda_runtime_api_client::Client::builder()
        .with_endpoint(uri)
        .build()
        .ok()
}

/// Tells Lambda why start-up failed (`POST /runtime/init/error`); Lambda then records the
/// error type and message for the invocation that was waiting.
async fn report_init_error(env: &Env, error: &StartError) {
    let Some(client) = api_client(env) else {
        return;
    };
    let body = serde_json::json!({
        "errorType": error.error_type(),
        "errorMessage": error.to_string(),
        "stackTrace": [],
    });
    let request = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", error.error_type())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(lambda_runtime_api_client::body::Body::from(Bytes::from(
            body.to_string(),
        )));
    let Ok(request) = request else { return };
    if let Err(e) = client.call(request).await {
        tracing::error!(cause = %e, "cannot report the init error to the Runtime API");
    }
}

/// The internal extension's name (unique within the function).
pub const EXTENSION_NAME: &str = "up-graceful-shutdown";

/// Registers a no-op internal extension, as `lambda_runtime`'s `graceful-shutdown` feature does:
/// Lambda sends a runtime SIGTERM at shutdown only when some extension is registered. Unlike
/// that feature, a Runtime API without the Extensions API (some local emulators) is not fatal:
/// the bootstrap then runs on, just without the SIGTERM. Must run before the first `/next`.
async fn register_shutdown_extension(env: &Env) -> bool {
    let Some(client) = api_client(env) else {
        return false;
    };
    let request = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri("/2020-01-01/extension/register")
        .header("Lambda-Extension-Name", EXTENSION_NAME)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(lambda_runtime_api_client::body::Body::from(
            Bytes::from_static(br#"{"events":[]}"#),
        ));
    let Ok(request) = request else { return false };
    let id = match client.call(request).await {
        Ok(response) if response.status().is_success() => response
            .headers()
            .get("Lambda-Extension-Identifier")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        Ok(response) => {
            tracing::debug!(
                status = response.status().as_u16(),
                "no Extensions API; no SIGTERM at shutdown"
            );
            None
        }
        Err(e) => {
            tracing::debug!(cause = %e, "no Extensions API; no SIGTERM at shutdown");
            None
        }
    };
    let Some(id) = id else { return false };
    // An extension ends its init by asking for its next event; with no events subscribed, the
    // request simply stays open for the life of the environment.
    tokio::spawn(async move {
        let request = lambda_runtime_api_client::build_request()
            .method(http::Method::GET)
            .uri("/2020-01-01/extension/event/next")
            .header("Lambda-Extension-Identifier", id)
            .body(lambda_runtime_api_client::body::Body::empty());
        if let Ok(request) = request {
            let _ = client.call(request).await;
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_the_smaller_of_timeout_and_deadline() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_435_200);
        let now_ms = 1_795_435_200_000;
        let fifteen = Duration::from_secs(15);
        assert_eq!(request_budget(fifteen, now_ms + 60_000, now), fifteen);
        assert_eq!(
            request_budget(fifteen, now_ms + 3_000, now),
            Duration::from_millis(2_750)
        );
        assert_eq!(request_budget(fifteen, now_ms + 100, now), Duration::ZERO);
    }

    #[test]
    fn implausible_deadlines_are_ignored() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_435_200);
        let fifteen = Duration::from_secs(15);
        // A constant from the past (lambda_runtime's own tests use 1542409706888).
        assert_eq!(request_budget(fifteen, 1_542_409_706_888, now), fifteen);
        // Far in the future.
        assert_eq!(request_budget(fifteen, 9_999_999_999_999, now), fifteen);
        assert_eq!(request_budget(fifteen, 0, now), fifteen);
    }
}
