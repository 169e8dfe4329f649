//! The Lambda Runtime API (and the part of the Extensions API that `lambda_runtime` uses),
//! served to one instance on its own loopback port.
//!
//! One server per instance means the server knows which instance polls, like the real
//! per-sandbox endpoint. Paths and headers follow
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html> and
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html>.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::logs::lock;

/// Largest function response Lambda accepts for a synchronous invocation.
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
const TRACE_ID: &str = "lambda-runtime-trace-id";
const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const EXTENSION_NAME: &str = "lambda-extension-name";
const EXTENSION_ID: &str = "lambda-extension-identifier";

/// What every instance of one function is told about the function.
#[derive(Debug, Clone)]
pub(crate) struct FunctionInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) arn: String,
    pub(crate) timeout: Duration,
}

/// One invocation handed to an instance.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    /// Fired when the runtime has taken the event from `/next`.
    pub(crate) picked: oneshot::Sender<()>,
    /// Fired when the runtime posts the response or the error.
    pub(crate) done: oneshot::Sender<Completion>,
}

/// How the runtime finished an invocation.
#[derive(Debug)]
pub(crate) enum Completion {
    Response(Bytes),
    Error {
        error_type: String,
        error_message: String,
        body: Bytes,
    },
}

/// An instance's life as seen through its Runtime API and its process.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// The runtime has called `/next` at least once.
    pub(crate) ready: bool,
    /// `errorType` and `errorMessage` posted to `/init/error`.
    pub(crate) init_error: Option<(String, String)>,
    /// The process has exited (and was reaped).
    pub(crate) exited: bool,
    /// Its exit status, when waiting for it succeeded.
    pub(crate) exit_status: Option<ExitStatus>,
}

/// A registered extension.
#[derive(Debug, Clone)]
pub(crate) struct Extension {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// State shared by an instance and its Runtime API server.
#[derive(Debug)]
pub(crate) struct Shared {
    function: FunctionInfo,
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Completion>>>,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) extensions: Mutex<Vec<Extension>>,
    /// `Some(deadline in epoch ms)` once shutdown has begun.
    pub(crate) shutdown: watch::Sender<Option<u64>>,
}

impl Shared {
    pub(crate) fn new(function: FunctionInfo, jobs: mpsc::Receiver<Job>) -> Self {
        Self {
            function,
            jobs: tokio::sync::Mutex::new(jobs),
            in_flight: Mutex::new(HashMap::new()),
            status: watch::Sender::new(Status::default()),
            extensions: Mutex::new(Vec::new()),
            shutdown: watch::Sender::new(None),
        }
    }
}

/// Binds a listener on a free loopback port.
pub(crate) async fn bind() -> Result<TcpListener> {
    TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(Error::Bind)
}

/// Serves the Runtime API on `listener` until the returned task is aborted.
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(cause = %err, "runtime API accept failed");
                    // Back off so a persistent error (EMFILE) does not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(handle(req, &shared).await) }
                });
                if let Err(err) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(cause = %err, "runtime API connection ended");
                }
            });
        }
    })
}

/// Routes one Runtime API request.
async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => next(shared).await,
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            let id = (*id).to_owned();
            match body(req).await {
                Ok(body) => respond(shared, &id, body),
                Err(resp) => resp,
            }
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let id = (*id).to_owned();
            let header_type = header_str(&req, FUNCTION_ERROR_TYPE);
            match body(req).await {
                Ok(body) => fail(shared, &id, header_type, body),
                Err(resp) => resp,
            }
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let header_type = header_str(&req, FUNCTION_ERROR_TYPE);
            match body(req).await {
                Ok(body) => init_error(shared, header_type, &body),
                Err(resp) => resp,
            }
        }
        (&Method::POST, ["2020-01-01", "extension", "register"]) => {
            let name = header_str(&req, EXTENSION_NAME);
            match body(req).await {
                Ok(_) => register(shared, name),
                Err(resp) => resp,
            }
        }
        (&Method::GET, ["2020-01-01", "extension", "event", "next"]) => {
            extension_next(shared, header_str(&req, EXTENSION_ID)).await
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "unknown Runtime API path",
        ),
    }
}

/// `GET /runtime/invocation/next`: marks the instance ready, then blocks for an event.
async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    shared
        .status
        .send_if_modified(|s| !std::mem::replace(&mut s.ready, true));
    let job = shared.jobs.lock().await.recv().await;
    let Some(job) = job else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.Gone",
            "this instance is being torn down",
        );
    };
    // No await from here on: the job cannot be lost to a cancelled request.
    let deadline = epoch_ms(SystemTime::now() + shared.function.timeout);
    lock(&shared.in_flight).insert(job.request_id.clone(), job.done);
    let _ = job.picked.send(());
    let mut resp = Response::new(Full::new(job.payload));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    insert(headers, REQUEST_ID, &job.request_id);
    insert(headers, DEADLINE_MS, &deadline.to_string());
    insert(headers, FUNCTION_ARN, &shared.function.arn);
    insert(headers, TRACE_ID, &trace_id());
    resp
}

/// `POST /runtime/invocation/{id}/response`.
fn respond(shared: &Shared, id: &str, body: Bytes) -> Response<Full<Bytes>> {
    let Some(done) = lock(&shared.in_flight).remove(id) else {
        return unknown_request(id);
    };
    if body.len() > MAX_RESPONSE_BYTES {
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            body.len()
        );
        let _ = done.send(Completion::Error {
            error_type: "Function.ResponseSizeTooLarge".to_owned(),
            body: Bytes::from(
                json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message})
                    .to_string(),
            ),
            error_message: message,
        });
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "response payload too large",
        );
    }
    let _ = done.send(Completion::Response(body));
    accepted()
}

/// `POST /runtime/invocation/{id}/error`.
fn fail(
    shared: &Shared,
    id: &str,
    header_type: Option<String>,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let Some(done) = lock(&shared.in_flight).remove(id) else {
        return unknown_request(id);
    };
    let (error_type, error_message) = error_fields(&body, header_type);
    let _ = done.send(Completion::Error {
        error_type,
        error_message,
        body,
    });
    accepted()
}

/// `POST /runtime/init/error`.
fn init_error(shared: &Shared, header_type: Option<String>, body: &[u8]) -> Response<Full<Bytes>> {
    let fields = error_fields(body, header_type);
    tracing::info!(error_type = %fields.0, error_message = %fields.1, "runtime reported an init error");
    shared.status.send_modify(|s| s.init_error = Some(fields));
    accepted()
}

/// `POST /extension/register`.
fn register(shared: &Shared, name: Option<String>) -> Response<Full<Bytes>> {
    let Some(name) = name else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "missing Lambda-Extension-Name header",
        );
    };
    let id = uuid::Uuid::new_v4().to_string();
    tracing::debug!(extension = %name, "extension registered");
    lock(&shared.extensions).push(Extension {
        id: id.clone(),
        name,
    });
    let body = json!({
        "functionName": shared.function.name,
        "functionVersion": shared.function.version,
        "handler": "bootstrap",
    });
    let mut resp = json_response(StatusCode::OK, &body);
    insert(resp.headers_mut(), EXTENSION_ID, &id);
    resp
}

/// `GET /extension/event/next`: blocks until shutdown, then sends the `SHUTDOWN` event.
async fn extension_next(shared: &Shared, id: Option<String>) -> Response<Full<Bytes>> {
    let known = id.is_some_and(|id| lock(&shared.extensions).iter().any(|e| e.id == id));
    if !known {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.InvalidExtensionId",
            "unknown Lambda-Extension-Identifier",
        );
    }
    let mut shutdown = shared.shutdown.subscribe();
    // The sender lives in `shared`, so `wait_for` cannot fail while we hold it.
    let deadline = match shutdown.wait_for(Option::is_some).await {
        Ok(deadline) => deadline.unwrap_or_default(),
        Err(_) => 0,
    };
    json_response(
        StatusCode::OK,
        &json!({"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline}),
    )
}

/// `errorType` and `errorMessage` of an error body; the header's type when the body has none.
fn error_fields(body: &[u8], header_type: Option<String>) -> (String, String) {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let error_type = field("errorType")
        .or(header_type)
        .unwrap_or_else(|| "Unhandled".to_owned());
    let error_message = field("errorMessage").unwrap_or_default();
    (error_type, error_message)
}

/// Collects a request body.
async fn body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    match req.into_body().collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("cannot read the request body: {err}"),
        )),
    }
}

fn header_str(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn insert(headers: &mut http::HeaderMap, name: &'static str, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => tracing::warn!(header = name, value, "value is not a valid header"),
    }
}

fn accepted() -> Response<Full<Bytes>> {
    json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
}

fn unknown_request(id: &str) -> Response<Full<Bytes>> {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("Invalid request ID: {id} is not an invocation in progress"),
    )
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({"errorType": error_type, "errorMessage": message}),
    )
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Milliseconds since the Unix epoch (0 for times before it).
pub(crate) fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An X-Ray trace header: `Root=1-<epoch hex>-<96 random bits>;Parent=<64 bits>;Sampled=0`.
pub(crate) fn trace_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let secs = epoch_ms(SystemTime::now()) / 1000;
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &random[..24],
        &random[16..]
    )
}

/// The address the runtime is told in `AWS_LAMBDA_RUNTIME_API`.
pub(crate) fn runtime_api_value(addr: SocketAddr, with_scheme: bool) -> String {
    if with_scheme {
        format!("http://{addr}")
    } else {
        addr.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields_prefer_the_body_then_the_header() {
        let body = br#"{"errorType":"Up.AppUnavailable","errorMessage":"down"}"#;
        assert_eq!(
            error_fields(body, Some("Other".into())),
            ("Up.AppUnavailable".into(), "down".into())
        );
        assert_eq!(
            error_fields(b"not json", Some("Runtime.Header".into())),
            ("Runtime.Header".into(), String::new())
        );
        assert_eq!(error_fields(b"{}", None).0, "Unhandled");
    }

    #[test]
    fn trace_ids_have_the_xray_shape() {
        let id = trace_id();
        let root = id.strip_prefix("Root=1-").unwrap();
        let (secs, rest) = root.split_once('-').unwrap();
        assert_eq!(secs.len(), 8);
        let (random, rest) = rest.split_once(";Parent=").unwrap();
        assert_eq!(random.len(), 24);
        let (parent, sampled) = rest.split_once(';').unwrap();
        assert_eq!(parent.len(), 16);
        assert_eq!(sampled, "Sampled=0");
    }

    #[test]
    fn runtime_api_value_with_and_without_scheme() {
        let addr: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        assert_eq!(runtime_api_value(addr, false), "127.0.0.1:9001");
        assert_eq!(runtime_api_value(addr, true), "http://127.0.0.1:9001");
    }
}
