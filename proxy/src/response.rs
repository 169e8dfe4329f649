//! The app's HTTP response → the Lambda response of the event's shape, byte for byte.
//!
//! - REST (v1): every header in `multiValueHeaders`, so repeated headers (and each `Set-Cookie`)
//!   stay separate.
//! - HTTP API (v2) / Function URL: `Set-Cookie`s go to `cookies[]`; other repeated headers are
//!   joined with `, ` (the only form payload 2.0 has).
//! - ALB: `statusDescription` ("200 OK"); `multiValueHeaders` when the request used them, else
//!   `headers` (repeated values joined; of several `Set-Cookie`s only the last survives, as ALB
//!   cannot carry more without multi-value mode).
//! - Bodies: text (`text/*`, JSON, XML, JavaScript, `+json`/`+xml`, or any `charset=`) that is
//!   valid UTF-8 and not content-encoded is sent as text; everything else is base64, so no byte
//!   is ever re-encoded.

use crate::event::Shape;
use crate::headers::strip_hop_by_hop;
use aws_lambda_events::alb::AlbTargetGroupResponse;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, SET_COOKIE};
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;

/// A Lambda response for one of the HTTP event shapes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum LambdaResponse {
    /// REST API (payload 1.0).
    V1(ApiGatewayProxyResponse),
    /// HTTP API (payload 2.0) and Function URL.
    V2(ApiGatewayV2httpResponse),
    /// Application Load Balancer.
    Alb(AlbTargetGroupResponse),
}

impl LambdaResponse {
    /// About how many bytes the serialised response takes: the body (base64 grows it by a
    /// third) and the headers. Used against Lambda's 6 MB payload limit.
    pub fn encoded_size(&self) -> usize {
        let (headers, multi, body, cookies) = match self {
            LambdaResponse::V1(r) => (&r.headers, &r.multi_value_headers, &r.body, 0),
            LambdaResponse::V2(r) => (
                &r.headers,
                &r.multi_value_headers,
                &r.body,
                r.cookies.iter().map(|c| c.len() + 3).sum(),
            ),
            LambdaResponse::Alb(r) => (&r.headers, &r.multi_value_headers, &r.body, 0),
        };
        let header_bytes: usize = headers
            .iter()
            .chain(multi.iter())
            .map(|(k, v)| k.as_str().len() + v.len() + 6)
            .sum();
        let body_bytes = match body {
            Some(Body::Text(t)) => t.len(),
            Some(Body::Binary(b)) => b.len().div_ceil(3) * 4,
            _ => 0,
        };
        100 + header_bytes + cookies + body_bytes
    }

    /// The HTTP status carried.
    pub fn status(&self) -> i64 {
        match self {
            LambdaResponse::V1(r) => r.status_code,
            LambdaResponse::V2(r) => r.status_code,
            LambdaResponse::Alb(r) => r.status_code,
        }
    }
}

/// Converts the app's response for an event of `shape`.
pub fn to_lambda(shape: Shape, response: Response<Bytes>) -> LambdaResponse {
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    utf8_headers(&mut headers);
    let (body, is_base64) = encode_body(&headers, body);
    let status = i64::from(parts.status.as_u16());
    match shape {
        Shape::ApiGatewayV2 | Shape::FunctionUrl => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = status;
            r.cookies = headers
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            headers.remove(SET_COOKIE);
            r.headers = joined(&headers);
            r.body = body;
            r.is_base64_encoded = is_base64;
            LambdaResponse::V2(r)
        }
        Shape::Alb | Shape::AlbMultiValue => {
            let mut r = AlbTargetGroupResponse::default();
            r.status_code = status;
            r.status_description = Some(status_description(parts.status));
            if shape == Shape::AlbMultiValue {
                r.multi_value_headers = headers;
            } else {
                let cookie = headers.get_all(SET_COOKIE).iter().next_back().cloned();
                headers.remove(SET_COOKIE);
                r.headers = joined(&headers);
                if let Some(cookie) = cookie {
                    r.headers.insert(SET_COOKIE, cookie);
                }
            }
            r.body = body;
            r.is_base64_encoded = is_base64;
            LambdaResponse::Alb(r)
        }
        Shape::ApiGatewayV1 | Shape::Warm | Shape::Other => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = status;
            r.multi_value_headers = headers;
            r.body = body;
            r.is_base64_encoded = is_base64;
            LambdaResponse::V1(r)
        }
    }
}

/// A short response made by the bootstrap itself (400, 502, 504, ...), in the event's shape.
pub fn plain(shape: Shape, status: StatusCode, message: &str) -> LambdaResponse {
    let mut response = Response::new(Bytes::from(format!("{message}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    to_lambda(shape, response)
}

/// `200 OK`, `404 Not Found`, ... (ALB's `statusDescription`).
fn status_description(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Repeated headers joined with `, ` into one value each (payload 2.0 and single-value ALB).
fn joined(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else { continue };
        let mut value = first.as_bytes().to_vec();
        for more in values {
            value.extend_from_slice(b", ");
            value.extend_from_slice(more.as_bytes());
        }
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            out.insert(name.clone(), value);
        }
    }
    out
}

/// Lambda responses are JSON strings: a header value that is not UTF-8 (obs-text, in practice
/// Latin-1) is carried as its Latin-1 reading instead of failing the whole response.
fn utf8_headers(headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        if value.to_str().is_err() && std::str::from_utf8(value.as_bytes()).is_err() {
            let latin1: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
            if let Ok(v) = HeaderValue::try_from(latin1) {
                *value = v;
            }
        }
    }
}

/// The body and whether it is base64: text only when it is declared textual, not content-encoded
/// and valid UTF-8.
fn encode_body(headers: &HeaderMap, body: Bytes) -> (Option<Body>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    if textual(headers) {
        match String::from_utf8(body.into()) {
            Ok(text) => (Some(Body::Text(text)), false),
            Err(e) => (Some(Body::Binary(e.into_bytes())), true),
        }
    } else {
        (Some(Body::Binary(body.into())), true)
    }
}

/// Whether a body with these headers goes out as text (when it is valid UTF-8): a text type
/// that is not content-encoded.
pub fn textual(headers: &HeaderMap) -> bool {
    let encoded = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    !encoded
        && headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_text_type)
}

/// `text/*`, JSON, XML, JavaScript, `+json`, `+xml`, or any type with a `charset=` parameter.
pub fn is_text_type(content_type: &str) -> bool {
    let lower = content_type.to_ascii_lowercase();
    let essence = lower.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
                | "image/svg+xml"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || lower.contains("charset=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn response(headers: &[(&str, &str)], body: &[u8]) -> Response<Bytes> {
        let mut r = Response::new(Bytes::copy_from_slice(body));
        for (k, v) in headers {
            r.headers_mut().append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        r
    }

    fn json_of(shape: Shape, r: Response<Bytes>) -> Value {
        serde_json::to_value(to_lambda(shape, r)).unwrap()
    }

    #[test]
    fn v1_keeps_every_header_value_separately() {
        let v = json_of(
            Shape::ApiGatewayV1,
            response(
                &[
                    ("set-cookie", "a=1"),
                    ("set-cookie", "b=2"),
                    ("x-multi", "one"),
                    ("x-multi", "two"),
                    ("content-type", "text/plain"),
                ],
                b"hi",
            ),
        );
        assert_eq!(v["multiValueHeaders"]["set-cookie"], json!(["a=1", "b=2"]));
        assert_eq!(v["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
        assert_eq!(v["body"], "hi");
        assert_eq!(v["isBase64Encoded"], false);
        assert_eq!(v["statusCode"], 200);
    }

    #[test]
    fn v2_moves_cookies_and_joins_the_rest() {
        let v = json_of(
            Shape::ApiGatewayV2,
            response(
                &[
                    ("set-cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
                    ("set-cookie", "b=2"),
                    ("x-multi", "one"),
                    ("x-multi", "two"),
                ],
                b"",
            ),
        );
        assert_eq!(
            v["cookies"],
            json!(["a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT", "b=2"])
        );
        assert_eq!(v["headers"]["x-multi"], "one, two");
        assert!(v["headers"].get("set-cookie").is_none());
        assert!(v.get("body").is_none());
    }

    #[test]
    fn alb_has_status_description_and_the_request_form() {
        let single = json_of(
            Shape::Alb,
            response(&[("x-multi", "one"), ("x-multi", "two")], b"{}"),
        );
        assert_eq!(single["statusDescription"], "200 OK");
        assert_eq!(single["headers"]["x-multi"], "one, two");
        let multi = json_of(
            Shape::AlbMultiValue,
            response(&[("x-multi", "one"), ("x-multi", "two")], b"{}"),
        );
        assert_eq!(multi["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
    }

    #[test]
    fn binary_bodies_are_base64_and_text_is_text() {
        let bin = json_of(
            Shape::ApiGatewayV2,
            response(
                &[("content-type", "application/octet-stream")],
                &[0, 159, 255],
            ),
        );
        assert_eq!(bin["isBase64Encoded"], true);
        assert_eq!(bin["body"], "AJ//");
        let json = json_of(
            Shape::ApiGatewayV2,
            response(
                &[("content-type", "application/problem+json")],
                b"{\"a\":1}",
            ),
        );
        assert_eq!(json["isBase64Encoded"], false);
        assert_eq!(json["body"], "{\"a\":1}");
        // Declared text but not UTF-8 (Latin-1 "café"): base64, so the bytes survive.
        let latin1 = json_of(
            Shape::ApiGatewayV2,
            response(
                &[("content-type", "text/plain; charset=iso-8859-1")],
                b"caf\xe9",
            ),
        );
        assert_eq!(latin1["isBase64Encoded"], true);
        assert_eq!(latin1["body"], "Y2Fm6Q==");
        // Compressed text is binary.
        let gz = json_of(
            Shape::ApiGatewayV2,
            response(
                &[("content-type", "text/html"), ("content-encoding", "gzip")],
                b"\x1f\x8b",
            ),
        );
        assert_eq!(gz["isBase64Encoded"], true);
    }

    #[test]
    fn text_types() {
        for t in [
            "text/html",
            "application/json",
            "application/xml",
            "application/javascript",
            "application/ld+json",
            "application/atom+xml",
            "application/x-thing; charset=utf-8",
        ] {
            assert!(is_text_type(t), "{t}");
        }
        for t in ["application/octet-stream", "image/png", "application/pdf"] {
            assert!(!is_text_type(t), "{t}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let v = json_of(
            Shape::ApiGatewayV1,
            response(
                &[
                    ("connection", "close"),
                    ("transfer-encoding", "chunked"),
                    ("x-ok", "1"),
                ],
                b"",
            ),
        );
        assert_eq!(v["multiValueHeaders"], json!({"x-ok": ["1"]}));
    }
}
