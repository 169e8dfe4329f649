//! API Gateway HTTP API, payload format 2.0: an HTTP request becomes the Lambda event,
//! the function's result becomes the HTTP response.
//!
//! The shapes follow
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>:
//! `rawPath` and `rawQueryString` verbatim, `queryStringParameters` decoded with repeated keys
//! joined by `,`, headers lower-cased with repeated ones joined by `,`, cookies moved out of
//! the headers into `cookies`, `X-Forwarded-*` added as API Gateway does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// What API Gateway knows about a request beyond the request itself.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The client's address: `requestContext.http.sourceIp`, last in `X-Forwarded-For`.
    pub source_ip: IpAddr,
    /// The port the client connected to: `X-Forwarded-Port`.
    pub local_port: u16,
    /// `requestContext.requestId`.
    pub request_id: String,
    /// When the request arrived: `requestContext.time` and `timeEpoch`.
    pub time: SystemTime,
}

/// Builds the payload 2.0 event for a request to the `$default` route of the `$default` stage.
pub fn http_api_event(parts: &http::request::Parts, body: &[u8], info: &RequestInfo) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let source_ip = info.source_ip.to_string();
    let forwarded_for = match headers.get("x-forwarded-for") {
        Some(client) => format!("{client}, {source_ip}"),
        None => source_ip.clone(),
    };
    headers.insert("x-forwarded-for".to_owned(), forwarded_for);
    headers.insert("x-forwarded-port".to_owned(), info.local_port.to_string());
    headers.insert("x-forwarded-proto".to_owned(), "http".to_owned());
    headers
        .entry("x-amzn-trace-id".to_owned())
        .or_insert_with(|| {
            crate::runtime_api::trace_id()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned()
        });

    let domain_name = headers
        .get("host")
        .cloned()
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| format!("localhost:{}", info.local_port));
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": crate::ACCOUNT_ID,
            "apiId": "local",
            "domainName": domain_name,
            "domainPrefix": domain_prefix(&domain_name),
            "http": {
                "method": parts.method.as_str(),
                "path": percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": info.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(info.time),
            "timeEpoch": crate::runtime_api::epoch_ms(info.time),
        },
        "isBase64Encoded": false,
    });
    // `json!` with an object literal always yields an object.
    if let Value::Object(event) = &mut event {
        if !cookies.is_empty() {
            event.insert("cookies".to_owned(), json!(cookies));
        }
        if !raw_query.is_empty() {
            event.insert(
                "queryStringParameters".to_owned(),
                json!(query_parameters(raw_query)),
            );
        }
        if !body.is_empty() {
            let (body, encoded) = match std::str::from_utf8(body) {
                Ok(text) => (text.to_owned(), false),
                Err(_) => (BASE64.encode(body), true),
            };
            event.insert("body".to_owned(), Value::String(body));
            event.insert("isBase64Encoded".to_owned(), Value::Bool(encoded));
        }
    }
    event
}

/// Decoded query parameters, repeated keys' values joined by `,`.
fn query_parameters(raw_query: &str) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        params
            .entry(key.into_owned())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    params
}

/// The first label of the host name, without the port: `abc` for `abc.example.com:443`.
fn domain_prefix(domain: &str) -> &str {
    let host = match domain.strip_prefix('[') {
        Some(v6) => return v6.split(']').next().unwrap_or(v6),
        None => domain.split(':').next().unwrap_or(domain),
    };
    host.split('.').next().unwrap_or(host)
}

/// Turns a function result into the HTTP response API Gateway would send.
///
/// An object with `statusCode` is a structured response (`headers`, `multiValueHeaders`,
/// `cookies` as `Set-Cookie`, `body`, `isBase64Encoded`). Any other JSON value is returned
/// as a 200 `application/json` body, verbatim. Anything else is a [`Error::MalformedResult`].
pub fn http_response(result: &[u8]) -> Result<Response<Bytes>> {
    let value: Value =
        serde_json::from_slice(result).map_err(|_| Error::MalformedResult("result is not JSON"))?;
    let Some(fields) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut resp = Response::new(Bytes::copy_from_slice(result));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    };
    structured_response(fields)
}

fn structured_response(fields: &Map<String, Value>) -> Result<Response<Bytes>> {
    let status = match fields.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .and_then(|code| StatusCode::from_u16(code).ok())
    .ok_or(Error::MalformedResult("statusCode is not an HTTP status"))?;

    let encoded = fields
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match fields.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if encoded => Bytes::from(
            BASE64
                .decode(text)
                .map_err(|_| Error::MalformedResult("body is not valid base64"))?,
        ),
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(_) => return Err(Error::MalformedResult("body is not a string")),
    };

    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Some(Value::Object(single)) = fields.get("headers") {
        for (name, value) in single {
            if let Some(value) = header_text(value)? {
                headers.insert(header_name(name)?, header_value(&value)?);
            }
        }
    }
    if let Some(Value::Object(multi)) = fields.get("multiValueHeaders") {
        for (name, values) in multi {
            let name = header_name(name)?;
            for value in values.as_array().into_iter().flatten() {
                if let Some(value) = header_text(value)? {
                    headers.append(name.clone(), header_value(&value)?);
                }
            }
        }
    }
    if let Some(Value::Array(cookies)) = fields.get("cookies") {
        for cookie in cookies {
            let cookie = cookie
                .as_str()
                .ok_or(Error::MalformedResult("cookies must be strings"))?;
            headers.append(header::SET_COOKIE, header_value(cookie)?);
        }
    }
    Ok(resp)
}

/// A header value as text: strings as they are, numbers and booleans printed, null skipped.
fn header_text(value: &Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(_) | Value::Bool(_) => Ok(Some(value.to_string())),
        _ => Err(Error::MalformedResult("header values must be strings")),
    }
}

fn header_name(name: &str) -> Result<HeaderName> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::MalformedResult("invalid header name"))
}

fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| Error::MalformedResult("invalid header value"))
}

/// A UTC calendar time split into fields.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Utc {
    fn from(time: SystemTime) -> Self {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let of_day = secs % 86_400;
        Self {
            year,
            month: u32::try_from(month).unwrap_or(1),
            day: u32::try_from(day).unwrap_or(1),
            hour: of_day / 3_600,
            minute: of_day % 3_600 / 60,
            second: of_day % 60,
        }
    }
}

/// `requestContext.time`: `12/Mar/2020:19:03:58 +0000`.
pub(crate) fn clf_time(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = Utc::from(time);
    let month = usize::try_from(t.month.saturating_sub(1))
        .ok()
        .and_then(|m| MONTHS.get(m))
        .unwrap_or(&"Jan");
    format!(
        "{:02}/{month}/{}:{:02}:{:02}:{:02} +0000",
        t.day, t.year, t.hour, t.minute, t.second
    )
}

/// `YYYY/MM/DD` in UTC, as in Lambda log stream names.
pub(crate) fn utc_date(time: SystemTime) -> String {
    let t = Utc::from(time);
    format!("{}/{:02}/{:02}", t.year, t.month, t.day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn info() -> RequestInfo {
        RequestInfo {
            source_ip: "192.0.2.7".parse().unwrap(),
            local_port: 3000,
            request_id: "req-1".to_owned(),
            // 2020-03-12T19:03:58.390Z
            time: UNIX_EPOCH + Duration::from_millis(1_584_039_838_390),
        }
    }

    fn parts(req: http::request::Builder) -> http::request::Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn builds_the_documented_event() {
        let req =
            http::Request::post("/my/path%20x?parameter1=value1&parameter1=value2&q=a+b%2Bc&flag")
                .header("Host", "abc.example.com:3000")
                .header("User-Agent", "agent/1")
                .header("Cookie", "cookie1=a; cookie2=b")
                .header("Cookie", "cookie3=c")
                .header("X-Multi", "one")
                .header("X-Multi", "two")
                .header("X-Forwarded-For", "203.0.113.9");
        let event = http_api_event(&parts(req), b"Hello from Lambda", &info());
        let expected = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/my/path%20x",
            "rawQueryString": "parameter1=value1&parameter1=value2&q=a+b%2Bc&flag",
            "cookies": ["cookie1=a", "cookie2=b", "cookie3=c"],
            "queryStringParameters": {"parameter1": "value1,value2", "q": "a b+c", "flag": ""},
            "body": "Hello from Lambda",
            "isBase64Encoded": false,
        });
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&event[key], value, "{key}");
        }
        let headers = &event["headers"];
        assert_eq!(headers["x-multi"], "one,two");
        assert_eq!(headers["host"], "abc.example.com:3000");
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 192.0.2.7");
        assert_eq!(headers["x-forwarded-port"], "3000");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert!(
            headers["x-amzn-trace-id"]
                .as_str()
                .unwrap()
                .starts_with("Root=1-")
        );
        assert!(headers.get("cookie").is_none());
        let ctx = &event["requestContext"];
        assert_eq!(
            ctx,
            &json!({
                "accountId": crate::ACCOUNT_ID,
                "apiId": "local",
                "domainName": "abc.example.com:3000",
                "domainPrefix": "abc",
                "http": {
                    "method": "POST",
                    "path": "/my/path x",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.7",
                    "userAgent": "agent/1",
                },
                "requestId": "req-1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "12/Mar/2020:19:03:58 +0000",
                "timeEpoch": 1_584_039_838_390_u64,
            })
        );
    }

    #[test]
    fn omits_absent_parts_and_base64_encodes_binary() {
        let event = http_api_event(&parts(http::Request::get("/")), b"", &info());
        let event = event.as_object().unwrap();
        for absent in ["cookies", "queryStringParameters", "body"] {
            assert!(!event.contains_key(absent), "{absent}");
        }
        assert_eq!(event["rawQueryString"], "");
        assert_eq!(event["headers"]["x-forwarded-for"], "192.0.2.7");
        assert_eq!(event["requestContext"]["domainName"], "localhost:3000");

        let binary = [0xff_u8, 0x00, 0x80];
        let event = http_api_event(&parts(http::Request::put("/b")), &binary, &info());
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(
            BASE64.decode(event["body"].as_str().unwrap()).unwrap(),
            binary
        );
    }

    #[test]
    fn domain_prefix_drops_port_and_labels() {
        assert_eq!(
            domain_prefix("abc.execute-api.us-east-1.amazonaws.com"),
            "abc"
        );
        assert_eq!(domain_prefix("localhost:3000"), "localhost");
        assert_eq!(domain_prefix("127.0.0.1:3000"), "127");
        assert_eq!(domain_prefix("[::1]:3000"), "::1");
    }

    #[test]
    fn structured_result_becomes_the_response() {
        let result = json!({
            "statusCode": 201,
            "headers": {"content-type": "text/plain", "x-n": 5},
            "multiValueHeaders": {"x-m": ["a", "b"]},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "created",
        });
        let resp = http_response(result.to_string().as_bytes()).unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert_eq!(resp.headers()["x-n"], "5");
        let multi: Vec<_> = resp.headers().get_all("x-m").iter().collect();
        assert_eq!(multi, ["a", "b"]);
        let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
        assert_eq!(resp.body().as_ref(), b"created");
    }

    #[test]
    fn base64_body_is_decoded() {
        let result = json!({"statusCode": 200, "body": BASE64.encode([1_u8, 2, 255]), "isBase64Encoded": true});
        let resp = http_response(result.to_string().as_bytes()).unwrap();
        assert_eq!(resp.body().as_ref(), [1, 2, 255]);
        let bad = json!({"statusCode": 200, "body": "%%%", "isBase64Encoded": true});
        assert!(matches!(
            http_response(bad.to_string().as_bytes()),
            Err(Error::MalformedResult(_))
        ));
    }

    #[test]
    fn bare_json_is_a_200_json_body() {
        for bare in [r#"{"hello":"world"}"#, r#""hi""#, "42", "[1,2]"] {
            let resp = http_response(bare.as_bytes()).unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], "application/json");
            assert_eq!(resp.body().as_ref(), bare.as_bytes());
        }
    }

    #[test]
    fn malformed_results_are_errors() {
        for bad in [
            "not json",
            r#"{"statusCode": "abc"}"#,
            r#"{"statusCode": 99999}"#,
            r#"{"statusCode": 200, "body": {"a": 1}}"#,
            r#"{"statusCode": 200, "headers": {"bad name": "x"}}"#,
        ] {
            assert!(
                matches!(
                    http_response(bad.as_bytes()),
                    Err(Error::MalformedResult(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn formats_times() {
        assert_eq!(clf_time(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(info().time), "12/Mar/2020:19:03:58 +0000");
        // 2024-02-29T23:59:59Z, a leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(1_709_251_199);
        assert_eq!(clf_time(leap), "29/Feb/2024:23:59:59 +0000");
        assert_eq!(utc_date(leap), "2024/02/29");
    }
}
