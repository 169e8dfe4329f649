//! The invocation loop: start-up, then one event at a time from the Runtime API.
//!
//! Start-up loads `up.json`, starts the app and waits until it listens; only then does the loop
//! ask `/next` for an event, so the first request never races the app. A start-up failure goes
//! to `/runtime/init/error` (`Up.InvalidConfig`, `Up.AppStartFailed`) and the process exits
//! non-zero.
//!
//! Each event is looked at raw before any HTTP parsing ([`crate::event`]): HTTP shapes are
//! translated ([`crate::request`]), forwarded ([`crate::forward`]) and translated back
//! ([`crate::response`]); anything else is refused with `Up.UnsupportedEvent`.

use crate::env::Env;
use crate::error::{ForwardError, StartError};
use crate::event::Probe;
use crate::forward::Forwarder;
use crate::log::LogSink;
use crate::request::translate;
use crate::response::{LambdaResponse, plain, to_lambda};
use crate::supervisor::{App, Group};
use bytes::Bytes;
use http::StatusCode;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;
use up_config::Config;

/// The whole bootstrap: returns the process exit code.
pub async fn run(env: Env) -> i32 {
    let instance = uuid::Uuid::new_v4().to_string();
    let sink = Arc::new(LogSink::stdout(instance, &env));
    crate::log::init(sink.clone());
    match start(&env, sink).await {
        Ok(proxy) => serve(proxy).await,
        Err(e) => {
            tracing::error!(error_type = e.error_type(), cause = %e, "start-up failed");
            report_init_error(&env, &e).await;
            1
        }
    }
}

/// Everything an invocation needs.
#[derive(Debug)]
pub struct Proxy {
    config: Config,
    forwarder: Forwarder,
    sink: Arc<LogSink>,
    // Held so the app lives (and is killed on drop) with the proxy.
    _app: App,
    invocations: AtomicU64,
}

async fn start(env: &Env, sink: Arc<LogSink>) -> Result<Proxy, StartError> {
    env.check_runtime()?;
    let config = up_config::load(&env.task_root(), env.stage())?;
    let app = App::start(&config, env, sink.clone(), 0).await?;
    Ok(Proxy {
        forwarder: Forwarder::new(app.addr()),
        config,
        sink,
        _app: app,
        invocations: AtomicU64::new(0),
    })
}

async fn serve(proxy: Proxy) -> i32 {
    let grace = proxy
        .config
        .proxy
        .shutdown_timeout
        .get()
        .min(SHUTDOWN_BUDGET);
    tokio::spawn(stop_on_signal(proxy._app.group(), grace));
    let proxy = Arc::new(proxy);
    let handler = lambda_runtime::service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let proxy = proxy.clone();
        async move { proxy.invoke(event).await }
    });
    match lambda_runtime::Runtime::new(handler).run().await {
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
async fn stop_on_signal(group: Group, grace: Duration) {
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
    group.stop(grace).await;
    std::process::exit(0);
}

impl Proxy {
    /// Handles one invocation. HTTP failures are HTTP responses; only events that are not HTTP
    /// requests at all become invocation errors.
    async fn invoke(
        &self,
        event: LambdaEvent<Box<RawValue>>,
    ) -> Result<LambdaResponse, Diagnostic> {
        let id = event.context.request_id.clone();
        self.invocations.fetch_add(1, Ordering::Relaxed);
        self.sink.set_request_id(Some(&id));
        let span = tracing::info_span!("invocation");
        let result = self.dispatch(event).instrument(span).await;
        self.sink.set_request_id(None);
        result
    }

    async fn dispatch(
        &self,
        event: LambdaEvent<Box<RawValue>>,
    ) -> Result<LambdaResponse, Diagnostic> {
        let raw = event.payload.get();
        let probe = Probe::read(raw).map_err(|e| {
            diagnostic(
                "Up.InvalidEvent",
                format!("the event is not a JSON object: {e}"),
            )
        })?;
        let shape = probe.shape();
        if !shape.is_http() {
            tracing::warn!(
                event = shape.name(),
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
                return Ok(plain(
                    shape,
                    StatusCode::BAD_REQUEST,
                    &format!("Bad Request: {e}"),
                ));
            }
        };
        let started = Instant::now();
        let request = translated.request;
        let timeout = self.config.proxy.timeout.get();
        let outcome = match tokio::time::timeout(timeout, self.forwarder.send(&request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ForwardError::Timeout(timeout)),
        };
        let response = match outcome {
            Ok(response) => to_lambda(shape, response),
            Err(e) => {
                tracing::error!(cause = %e, status = e.status().as_u16(), "request failed");
                plain(shape, e.status(), &e.to_string())
            }
        };
        if !self.config.logs.disable {
            tracing::info!(
                event = shape.name(),
                method = %request.method(),
                path = request.uri().path(),
                status = response.status(),
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                ip = translated.info.source_ip.as_deref().unwrap_or(""),
                "request"
            );
        }
        Ok(response)
    }
}

fn diagnostic(error_type: &str, error_message: String) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message,
    }
}

/// Tells Lambda why start-up failed (`POST /runtime/init/error`); Lambda then records the
/// error type and message for the invocation that was waiting.
async fn report_init_error(env: &Env, error: &StartError) {
    let Some(base) = env.runtime_api() else {
        return;
    };
    let Ok(uri) = base.parse::<http::Uri>() else {
        return;
    };
    let Ok(client) = lambda_runtime_api_client::Client::builder()
        .with_endpoint(uri)
        .build()
    else {
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
