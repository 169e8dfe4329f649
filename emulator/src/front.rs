//! The HTTP front: an API Gateway HTTP API (`$default` route and stage, payload 2.0) in
//! front of the emulator.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::apigw::{self, RequestInfo};
use crate::error::Error;
use crate::instance::Outcome;
use crate::pool::{Emulator, Invocation};

/// API Gateway's request payload limit (10 MB).
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Serves HTTP on `listener` forever, each request invoking `emulator` with an API Gateway
/// HTTP API event. Logs one line per request (method, path, status, duration).
pub async fn serve_http(listener: TcpListener, emulator: Emulator) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(cause = %err, "accept failed");
                // Back off so a persistent error (EMFILE) does not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let local_port = stream.local_addr().map_or(0, |a| a.port());
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let emulator = emulator.clone();
                async move { Ok::<_, Infallible>(handle(req, emulator, peer, local_port).await) }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(cause = %err, "connection ended");
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    emulator: Emulator,
    peer: SocketAddr,
    local_port: u16,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let resp = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Err(err) if err.is::<LengthLimitError>() => {
            message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
        }
        Err(_) => message(StatusCode::BAD_REQUEST, "Bad Request"),
        Ok(body) => {
            let info = RequestInfo {
                source_ip: peer.ip(),
                local_port,
                request_id: request_id.clone(),
                time: SystemTime::now(),
            };
            let event = apigw::http_api_event(&parts, &body.to_bytes(), &info);
            let payload = Bytes::from(event.to_string());
            // Own task: a client hanging up does not cancel the invocation (nor kill the
            // instance serving it), as with API Gateway.
            let invoked = tokio::spawn(async move { emulator.invoke(payload).await }).await;
            match invoked {
                Ok(result) => respond(result),
                Err(err) => {
                    tracing::error!(cause = %err, "invocation task failed");
                    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                }
            }
        }
    };
    let mut resp = resp;
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("apigw-requestid", id);
    }
    tracing::info!(
        method = %parts.method,
        path = parts.uri.path(),
        status = resp.status().as_u16(),
        duration_ms = started.elapsed().as_millis(),
        "request"
    );
    resp
}

/// Maps an invocation to the response API Gateway gives: the function's response, 502 for
/// failures (function error, init error, crash, malformed result), 504 for timeouts.
fn respond(result: Result<Invocation, Error>) -> Response<Full<Bytes>> {
    let invocation = match result {
        Ok(invocation) => invocation,
        Err(Error::PayloadTooLarge { .. }) => {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        Err(Error::ShutDown) => {
            return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
        Err(err) => {
            tracing::error!(cause = &err as &dyn std::error::Error, "invocation failed");
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    match invocation.outcome {
        Outcome::Response(result) => match apigw::http_response(&result) {
            Ok(resp) => resp.map(Full::new),
            Err(err) => {
                tracing::warn!(request_id = %invocation.request_id, cause = %err, "bad function result");
                message(StatusCode::BAD_GATEWAY, "Internal Server Error")
            }
        },
        Outcome::FunctionError {
            error_type,
            error_message,
            ..
        } => {
            tracing::warn!(request_id = %invocation.request_id, %error_type, %error_message, "function error");
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
        Outcome::InitError(failure) => {
            tracing::warn!(request_id = %invocation.request_id, %failure, "init error");
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
        Outcome::RuntimeExited { .. } => {
            tracing::warn!(request_id = %invocation.request_id, "runtime exited during the invocation");
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
        Outcome::Timeout => {
            tracing::warn!(request_id = %invocation.request_id, "function timed out");
            message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
        }
    }
}

/// API Gateway's error shape: `{"message": "..."}`.
fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(
        json!({ "message": text }).to_string(),
    )));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
