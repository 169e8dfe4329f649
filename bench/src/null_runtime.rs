//! A Lambda runtime that does nothing: `GET /next`, then at once `POST /response` with a
//! constant answer, forever, on one keep-alive connection. Timed against the real bootstrap
//! it gives the Runtime API's own floor (the emulator's work, the two HTTP exchanges, the
//! process hops), which is not the bootstrap's cost.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};

use crate::Error;
use crate::client::{self, Sender};

/// The answer to every event: a small API Gateway HTTP API (payload 2.0) response.
pub const RESPONSE: &str = r#"{"statusCode":200,"headers":{"content-type":"application/json"},"body":"{\"ok\":true}","isBase64Encoded":false}"#;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const REQUEST_ID: &str = "lambda-runtime-aws-request-id";

/// `host:port` from an `AWS_LAMBDA_RUNTIME_API` value, which may carry `http://` and a
/// trailing slash.
pub fn api_address(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix("http://")
        .unwrap_or(value)
        .trim_end_matches('/')
}

/// Serves events from the Runtime API at `api` (`host:port`) until the connection fails
/// (the emulator stops it with a signal or goes away).
pub async fn run(api: &str) -> Result<(), Error> {
    let mut sender = client::connect(api).await?;
    let response = Bytes::from_static(RESPONSE.as_bytes());
    loop {
        let id = next(&mut sender, api).await?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/2018-06-01/runtime/invocation/{id}/response"))
            .header(HOST, api)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(response.clone()))?;
        let answer = client::exchange(&mut sender, request).await?;
        if !answer.status().is_success() {
            return Err(Error::Status {
                what: "/response",
                status: answer.status(),
            });
        }
    }
}

/// Long-polls `/next`; returns the event's request id (the event itself is not looked at).
async fn next(sender: &mut Sender, api: &str) -> Result<String, Error> {
    let request = Request::builder()
        .method(Method::GET)
        .uri(NEXT)
        .header(HOST, api)
        .body(Full::new(Bytes::new()))?;
    let event = client::exchange(sender, request).await?;
    if !event.status().is_success() {
        return Err(Error::Status {
            what: "/next",
            status: event.status(),
        });
    }
    event
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or(Error::NoRequestId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_api_with_or_without_scheme() {
        assert_eq!(api_address("127.0.0.1:9001"), "127.0.0.1:9001");
        assert_eq!(api_address("http://127.0.0.1:9001"), "127.0.0.1:9001");
        assert_eq!(api_address("http://127.0.0.1:9001/"), "127.0.0.1:9001");
    }

    #[test]
    fn response_is_json() {
        let v: serde_json::Value = serde_json::from_str(RESPONSE).unwrap();
        assert_eq!(v["statusCode"], 200);
    }
}
