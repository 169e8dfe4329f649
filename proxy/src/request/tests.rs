//! One test per translation rule, on the AWS-shaped events of `tests/data/`.

use super::*;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn translate_str(raw: &str) -> Translated {
    let probe = Probe::read(raw).unwrap();
    let shape = probe.shape();
    translate(raw, probe, shape, "lambda-req-1").unwrap()
}

fn translate_fixture(name: &str) -> Translated {
    translate_str(&fixture(name))
}

fn values<'a>(t: &'a Translated, name: &str) -> Vec<&'a str> {
    t.request
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

fn one<'a>(t: &'a Translated, name: &str) -> &'a str {
    let v = values(t, name);
    assert_eq!(v.len(), 1, "{name}: {v:?}");
    v[0]
}

#[test]
fn v1_path_query_and_every_header_value() {
    let t = translate_fixture("apigw-v1.json");
    assert_eq!(t.request.method(), Method::GET);
    assert_eq!(t.request.uri().path(), "/items/42");
    // Decoded values re-encoded: space as %20, & as %26, keys in event order.
    assert_eq!(t.request.uri().query(), Some("tag=a&tag=b&q=a%20b%26c"));
    assert_eq!(values(&t, "x-repeat"), ["one", "two"]);
    assert_eq!(
        one(&t, "host"),
        "r3pmxmplak.execute-api.us-east-1.amazonaws.com"
    );
    assert_eq!(
        one(&t, "x-request-id"),
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    );
    assert_eq!(one(&t, "x-forwarded-for"), "198.51.100.1, 203.0.113.9");
    assert_eq!(one(&t, "x-forwarded-proto"), "https");
    assert_eq!(one(&t, "x-forwarded-port"), "443");
    assert_eq!(t.info.source_ip.as_deref(), Some("203.0.113.9"));
    assert!(t.request.body().is_empty());
}

#[test]
fn v1_base64_body_decoded_and_forwarded_for_ends_with_source_ip() {
    let t = translate_fixture("apigw-v1-binary.json");
    assert_eq!(t.request.method(), Method::POST);
    assert_eq!(
        t.request.body().as_ref(),
        [
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80, 0x75, 0x70,
            0xc3, 0x28, 0x7f
        ]
    );
    assert_eq!(one(&t, "content-length"), "17");
    assert!(one(&t, "x-forwarded-for").ends_with(", 203.0.113.9"));
}

#[test]
fn v2_stage_segment_stripped_raw_query_verbatim_cookies_joined() {
    let t = translate_fixture("apigw-v2.json");
    assert_eq!(t.request.method(), Method::POST);
    assert_eq!(t.request.uri().path(), "/items/42");
    assert_eq!(
        t.request.uri().query(),
        Some("tag=a&tag=b&q=a%20b%26c&plus=1+2")
    );
    assert_eq!(one(&t, "cookie"), "session=abc; theme=dark");
    assert_eq!(one(&t, "x-repeat"), "one,two");
    assert_eq!(one(&t, "x-request-id"), "JKJaXmPLvHcESHA=");
    assert!(one(&t, "x-forwarded-for").ends_with("203.0.113.9"));
    assert_eq!(t.request.body().as_ref(), br#"{"name":"widget","qty":2}"#);
}

#[test]
fn v2_default_stage_keeps_the_path() {
    let t = translate_fixture("apigw-v2-default.json");
    assert_eq!(t.request.uri().path(), "/production/items");
    assert_eq!(t.request.uri().query(), None);
    assert!(values(&t, "cookie").is_empty());
    assert_eq!(one(&t, "x-forwarded-for"), "203.0.113.9");
}

#[test]
fn stage_is_a_segment_not_a_prefix() {
    assert_eq!(strip_stage("/prod/items", Some("prod")), "/items");
    assert_eq!(strip_stage("/prod", Some("prod")), "/");
    assert_eq!(
        strip_stage("/production/items", Some("prod")),
        "/production/items"
    );
    assert_eq!(strip_stage("/prod/items", Some("$default")), "/prod/items");
    assert_eq!(strip_stage("/prod/items", None), "/prod/items");
}

#[test]
fn alb_single_value_query_passed_through_encoded() {
    let t = translate_fixture("alb.json");
    assert_eq!(t.request.uri().path(), "/items/42");
    assert_eq!(t.request.uri().query(), Some("q=a%20b%26c&page=2"));
    assert!(values(&t, "connection").is_empty());
    assert_eq!(one(&t, "x-forwarded-for"), "198.51.100.1, 203.0.113.9");
    assert_eq!(t.info.source_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(one(&t, "x-request-id"), "lambda-req-1");
}

#[test]
fn alb_multi_value_keeps_repeats() {
    let t = translate_fixture("alb-multi.json");
    assert_eq!(t.request.method(), Method::POST);
    assert_eq!(t.request.uri().query(), Some("tag=a&tag=b&q=a%20b%26c"));
    assert_eq!(values(&t, "x-repeat"), ["one", "two"]);
    assert_eq!(one(&t, "cookie"), "session=abc; theme=dark");
    assert_eq!(t.request.body().as_ref(), b"name=alice&note=caf%C3%A9");
}

#[test]
fn function_url_binary_body() {
    let t = translate_fixture("function-url.json");
    assert_eq!(t.request.method(), Method::PUT);
    assert_eq!(t.request.uri().path(), "/upload/raw");
    assert_eq!(
        t.request.uri().query(),
        Some("name=blob.bin&overwrite=true")
    );
    assert_eq!(
        one(&t, "host"),
        "a3ly7x5kzqjsg2sfx6hnnw3esa0lgbpg.lambda-url.us-east-1.on.aws"
    );
    assert_eq!(
        t.request.body().as_ref(),
        [
            0x00, 0x01, 0xfe, 0xff, 0x80, 0x7f, 0x75, 0x70, 0xc3, 0x28, 0xa0, 0xa1
        ]
    );
}

#[test]
fn client_forwarded_for_without_gateway_entry_gets_source_ip_appended() {
    let raw = r#"{"version":"2.0","rawPath":"/","headers":{"x-forwarded-for":"1.2.3.4"},
        "requestContext":{"http":{"method":"GET","sourceIp":"203.0.113.9"},"requestId":"r"}}"#;
    let t = translate_str(raw);
    assert_eq!(one(&t, "x-forwarded-for"), "1.2.3.4, 203.0.113.9");
}

#[test]
fn a_spoofed_request_id_is_replaced() {
    let raw = r#"{"version":"2.0","rawPath":"/","headers":{"x-request-id":"evil"},
        "requestContext":{"http":{"method":"GET","sourceIp":"203.0.113.9"},"requestId":"real"}}"#;
    assert_eq!(one(&translate_str(raw), "x-request-id"), "real");
}

#[test]
fn v1_single_value_maps_when_no_multi_value_ones() {
    let raw = r#"{"httpMethod":"GET","path":"/a b","headers":{"X-One":"1"},
        "queryStringParameters":{"x":"1+1=2"},"requestContext":{"httpMethod":"GET","requestId":"r","identity":{"sourceIp":"10.0.0.1"}}}"#;
    let t = translate_str(raw);
    assert_eq!(t.request.uri().path(), "/a%20b");
    assert_eq!(t.request.uri().query(), Some("x=1%2B1%3D2"));
    assert_eq!(one(&t, "x-one"), "1");
}

#[test]
fn v1_body_with_content_length_is_recomputed() {
    let raw = r#"{"httpMethod":"POST","path":"/","headers":{"Content-Length":"999","Transfer-Encoding":"chunked"},
        "body":"hello","requestContext":{"httpMethod":"POST"}}"#;
    let t = translate_str(raw);
    assert_eq!(one(&t, "content-length"), "5");
    assert!(values(&t, "transfer-encoding").is_empty());
}

#[test]
fn invalid_base64_is_a_translate_error() {
    let raw = r#"{"version":"2.0","rawPath":"/","body":"%%%","isBase64Encoded":true,
        "requestContext":{"http":{"method":"POST"}}}"#;
    let probe = Probe::read(raw).unwrap();
    let err = translate(raw, probe, Shape::ApiGatewayV2, "x").unwrap_err();
    assert!(matches!(err, TranslateError::Base64(_)));
}

#[test]
fn invalid_header_is_a_translate_error() {
    let raw = "{\"version\":\"2.0\",\"rawPath\":\"/\",\"headers\":{\"x-bad\":\"a\\r\\nb\"},\
        \"requestContext\":{\"http\":{\"method\":\"GET\"}}}";
    let probe = Probe::read(raw).unwrap();
    assert!(translate(raw, probe, Shape::ApiGatewayV2, "x").is_err());
}
