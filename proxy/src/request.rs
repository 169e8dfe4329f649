//! Lambda HTTP events → the real HTTP request the app receives.
//!
//! The event types are `aws_lambda_events`' (the ones `lambda_http` uses); the conversion is
//! ours, because `lambda_http`'s gets several things wrong for a transparent proxy:
//! - it merges `headers` over `multiValueHeaders` with `HeaderMap::extend`, which keeps only the
//!   last value of a repeated header;
//! - it rebuilds the query from a hash map: order is lost, ALB's still-encoded values are encoded
//!   again (`%20` → `%2520`), and spaces become `+`;
//! - it leaves the stage in HTTP API paths and decodes text bodies through their charset.
//!
//! Rules, per shape:
//! - REST (v1): `path` as is; query from `multiValueQueryStringParameters` (else the single map),
//!   whose values API Gateway has decoded, so each is percent-encoded again (space → `%20`);
//!   headers from `multiValueHeaders` (every value), else `headers`.
//! - HTTP API (v2) and Function URL: `rawPath` minus a leading `/{stage}` segment when the stage
//!   is not `$default`; `rawQueryString` verbatim; `cookies` joined into one `Cookie` header.
//! - ALB: `path` as is; query values passed through verbatim (ALB does not decode them);
//!   headers from `multiValueHeaders` in multi-value mode.
//! - All: base64 bodies decoded; hop-by-hop headers dropped; `Host`, `X-Request-Id`,
//!   `X-Forwarded-For` (ending with the source IP), `X-Forwarded-Proto`, `X-Forwarded-Port` set.

use crate::error::TranslateError;
use crate::event::{Pairs, Probe, Shape};
use crate::headers::strip_hop_by_hop;
use aws_lambda_events::alb::AlbTargetGroupRequest;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use base64::Engine;
use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, COOKIE, EXPECT, HOST, HeaderName, HeaderValue, TRANSFER_ENCODING,
};
use http::{HeaderMap, Method, Request, Uri};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

/// What the rest of the bootstrap needs to know about a translated request.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The client's IP from the request context (for ALB: the last `X-Forwarded-For` entry).
    pub source_ip: Option<String>,
    /// API Gateway's request id (what the app gets as `X-Request-Id`).
    pub request_id: String,
}

/// A translated request: the HTTP request and what is known about its origin.
#[derive(Debug)]
pub struct Translated {
    /// The request for the app. The URI is origin-form (`/path?query`).
    pub request: Request<Bytes>,
    /// Context facts.
    pub info: RequestInfo,
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// Bytes that must be escaped to put a path into a request target. `%` is left alone: a path
/// that is already escaped stays as it is.
pub(crate) const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Bytes escaped when re-encoding a decoded query name or value (API Gateway v1): all but the
/// unreserved set, so a space is `%20` (never `+`) and `&`, `=`, `+` stay data.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Translates the raw event, already probed as `shape`, into a request. `lambda_request_id` is
/// used as `X-Request-Id` when the event has no request id of its own (ALB).
pub fn translate(
    raw: &str,
    probe: Probe,
    shape: Shape,
    lambda_request_id: &str,
) -> Result<Translated, TranslateError> {
    match shape {
        Shape::ApiGatewayV1 => from_v1(parse(raw, shape)?, probe, lambda_request_id),
        Shape::ApiGatewayV2 | Shape::FunctionUrl => from_v2(parse(raw, shape)?, lambda_request_id),
        Shape::Alb | Shape::AlbMultiValue => from_alb(
            parse(raw, shape)?,
            probe,
            shape == Shape::AlbMultiValue,
            lambda_request_id,
        ),
        Shape::Warm | Shape::Other => Err(TranslateError::Invalid {
            shape: shape.name(),
            message: "not an HTTP event".into(),
        }),
    }
}

fn parse<T: serde::de::DeserializeOwned>(raw: &str, shape: Shape) -> Result<T, TranslateError> {
    serde_json::from_str(raw).map_err(|e| TranslateError::Invalid {
        shape: shape.name(),
        message: e.to_string(),
    })
}

fn from_v1(
    event: ApiGatewayProxyRequest,
    probe: Probe,
    lambda_request_id: &str,
) -> Result<Translated, TranslateError> {
    let query = match probe.multi_value_query {
        Some(q) if !q.0.is_empty() => q,
        _ => probe.query.unwrap_or_default(),
    };
    let headers = if event.multi_value_headers.is_empty() {
        event.headers
    } else {
        event.multi_value_headers
    };
    let ctx = event.request_context;
    let info = RequestInfo {
        source_ip: ctx.identity.source_ip,
        request_id: ctx
            .request_id
            .unwrap_or_else(|| lambda_request_id.to_owned()),
    };
    let path = event.path.or(ctx.path).unwrap_or_else(|| "/".into());
    let target = target(&path, &encode_pairs(&query));
    let body = body(event.body, event.is_base64_encoded)?;
    build(
        event.http_method,
        &target,
        headers,
        body,
        ctx.domain_name.as_deref(),
        info,
    )
}

fn from_v2(
    event: ApiGatewayV2httpRequest,
    lambda_request_id: &str,
) -> Result<Translated, TranslateError> {
    let ctx = event.request_context;
    let raw_path = event
        .raw_path
        .or(ctx.http.path)
        .unwrap_or_else(|| "/".into());
    let path = strip_stage(&raw_path, ctx.stage.as_deref());
    let target = target(path, event.raw_query_string.as_deref().unwrap_or(""));
    let mut headers = event.headers;
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty()) {
        let mut joined = cookies.join("; ");
        if let Some(existing) = headers.get(COOKIE).and_then(|v| v.to_str().ok()) {
            joined = format!("{existing}; {joined}");
        }
        let value = HeaderValue::try_from(joined).map_err(|e| TranslateError::Invalid {
            shape: "apigateway_v2",
            message: format!("cookies: {e}"),
        })?;
        headers.insert(COOKIE, value);
    }
    let info = RequestInfo {
        source_ip: ctx.http.source_ip,
        request_id: ctx
            .request_id
            .unwrap_or_else(|| lambda_request_id.to_owned()),
    };
    let body = body(event.body, event.is_base64_encoded)?;
    build(
        ctx.http.method,
        &target,
        headers,
        body,
        ctx.domain_name.as_deref(),
        info,
    )
}

fn from_alb(
    event: AlbTargetGroupRequest,
    probe: Probe,
    multi_value: bool,
    lambda_request_id: &str,
) -> Result<Translated, TranslateError> {
    let query = if multi_value {
        probe.multi_value_query
    } else {
        probe.query
    }
    .unwrap_or_default();
    let headers = if multi_value {
        event.multi_value_headers
    } else {
        event.headers
    };
    // ALB has no source IP in its context: it appends the client's address to X-Forwarded-For.
    let source_ip = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| !ip.is_empty());
    let info = RequestInfo {
        source_ip,
        request_id: lambda_request_id.to_owned(),
    };
    let raw_query = join_pairs(&query, |s| s.into());
    let target = target(event.path.as_deref().unwrap_or("/"), &raw_query);
    let body = body(event.body, event.is_base64_encoded)?;
    build(event.http_method, &target, headers, body, None, info)
}

/// Removes a leading `/{stage}` *segment* (not a mere prefix) unless the stage is `$default`.
pub fn strip_stage<'a>(path: &'a str, stage: Option<&str>) -> &'a str {
    let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") else {
        return path;
    };
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// `path?query` with the path made safe for a request target.
fn target(path: &str, query: &str) -> String {
    let path: std::borrow::Cow<'_, str> = utf8_percent_encode(path, PATH).into();
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}").into()
    };
    if query.is_empty() {
        path.into_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// Re-encodes decoded query pairs (API Gateway v1).
fn encode_pairs(pairs: &Pairs) -> String {
    join_pairs(pairs, |s| utf8_percent_encode(s, QUERY_COMPONENT).into())
}

fn join_pairs<'a>(pairs: &'a Pairs, enc: impl Fn(&'a str) -> std::borrow::Cow<'a, str>) -> String {
    let mut out = String::new();
    for (name, values) in &pairs.0 {
        for value in values {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&enc(name));
            out.push('=');
            out.push_str(&enc(value));
        }
    }
    out
}

fn body(body: Option<String>, base64: bool) -> Result<Bytes, TranslateError> {
    match body {
        None => Ok(Bytes::new()),
        Some(b) if base64 => Ok(base64::engine::general_purpose::STANDARD
            .decode(b.trim())?
            .into()),
        Some(b) => Ok(b.into()),
    }
}

fn build(
    method: Method,
    target: &str,
    mut headers: HeaderMap,
    body: Bytes,
    domain: Option<&str>,
    info: RequestInfo,
) -> Result<Translated, TranslateError> {
    strip_hop_by_hop(&mut headers);
    // The body is complete: nothing to continue.
    headers.remove(EXPECT);
    join_cookies(&mut headers);
    let had_length = headers.remove(CONTENT_LENGTH).is_some();
    headers.remove(TRANSFER_ENCODING);
    if !body.is_empty()
        || had_length
        || matches!(method, Method::POST | Method::PUT | Method::PATCH)
    {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    if !headers.contains_key(HOST)
        && let Some(value) = domain.and_then(|d| HeaderValue::from_str(d).ok())
    {
        headers.insert(HOST, value);
    }
    if let Ok(value) = HeaderValue::from_str(&info.request_id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
    if let Some(ip) = &info.source_ip {
        forwarded_for(&mut headers, ip);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
    }
    if !headers.contains_key(&X_FORWARDED_PORT) {
        headers.insert(X_FORWARDED_PORT.clone(), HeaderValue::from_static("443"));
    }
    let uri: Uri = target.parse()?;
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(Translated { request, info })
}

/// Several `Cookie` headers (ALB multi-value, HTTP/2 clients) become one, joined with `; ` as
/// an HTTP/1.1 server expects (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(COOKIE).iter().nth(1).is_none() {
        return;
    }
    let mut joined = Vec::new();
    for value in headers.get_all(COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(COOKIE, value);
    }
}

/// Makes `X-Forwarded-For` end with `ip`: API Gateway normally appended it already; a client's
/// own `X-Forwarded-For` is kept in front of it.
fn forwarded_for(headers: &mut HeaderMap, ip: &str) {
    let current: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let joined = current.join(", ");
    let last = joined.rsplit(',').next().map(str::trim).unwrap_or("");
    let value = if last == ip {
        if current.len() == 1 {
            return;
        }
        joined
    } else if joined.trim().is_empty() {
        ip.to_owned()
    } else {
        format!("{joined}, {ip}")
    };
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
}

#[cfg(test)]
mod tests;
