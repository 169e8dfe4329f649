//! `up.json` loading as a user meets it: defaults, stage overrides and the errors they see.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;
use up_config::{ConfigError, load, parse};

fn parse_ok(text: &str, stage: Option<&str>) -> up_config::Config {
    parse(text, Path::new("up.json"), stage).unwrap()
}

fn parse_err(text: &str) -> String {
    parse(text, Path::new("up.json"), None)
        .unwrap_err()
        .to_string()
}

#[test]
fn apex_defaults() {
    let c = parse_ok("{}", None);
    assert_eq!(c.proxy.timeout.get(), Duration::from_secs(15));
    assert_eq!(c.proxy.listen_timeout.get(), Duration::from_secs(15));
    assert_eq!(c.proxy.shutdown_timeout.get(), Duration::from_secs(5));
    assert_eq!(c.proxy.backoff.min.get(), Duration::from_millis(100));
    assert_eq!(c.proxy.backoff.max.get(), Duration::from_secs(5));
    assert_eq!(c.proxy.max_body.0, 6 * 1024 * 1024);
    assert_eq!(c.lambda.memory.get(), 512);
    assert_eq!(c.lambda.timeout.get(), Duration::from_secs(60));
    assert_eq!(c.logs.stdout, up_config::value::Level::Info);
    assert_eq!(c.logs.stderr, up_config::value::Level::Error);
    assert!(c.proxy.command.is_none());
}

#[test]
fn every_apex_key_parses() {
    let c = parse_ok(
        r#"{
        "name": "app", "description": "d", "type": "server", "profile": "p", "regions": ["eu-west-1"],
        "environment": {"A": "1"},
        "headers": {"/*.css": {"Cache-Control": "max-age=60"}},
        "redirects": {"/old/:id": {"location": "/new/:id", "status": 308, "force": true}},
        "cors": true,
        "error_pages": {"enable": true, "dir": "errors"},
        "static": {"dir": "public", "prefix": "/assets/"},
        "logs": {"disable": true, "stdout": "debug", "stderr": "warn"},
        "hooks": {"build": "make", "clean": ["rm -f server"]},
        "lambda": {"memory": 1024, "timeout": 30, "policy": [{"Effect": "Allow"}]},
        "proxy": {"command": "./server", "timeout": "20s", "listen_timeout": 10, "backoff": {"min": 50}},
        "stages": {"production": {"domain": "example.com"}}
    }"#,
        None,
    );
    assert_eq!(c.name, "app");
    assert_eq!(c.redirects.get("/old/:id").unwrap().status, 308);
    assert_eq!(c.cors.unwrap().allowed_origins, ["*"]);
    assert_eq!(c.hooks.build.0, ["make"]);
    assert_eq!(c.proxy.timeout.get(), Duration::from_secs(20));
    assert_eq!(c.proxy.backoff.min.get(), Duration::from_millis(50));
    assert_eq!(
        c.stages["production"].domain.as_deref(),
        Some("example.com")
    );
}

#[test]
fn bad_value_names_key_path_and_value() {
    assert_eq!(
        parse_err(r#"{"proxy": {"listen_timeout": "abc"}}"#),
        r#"up.json: proxy.listen_timeout: expected seconds (1..=25), got "abc""#
    );
    assert_eq!(
        parse_err(r#"{"lambda": {"memory": 64}}"#),
        "up.json: lambda.memory: expected an integer (128..=10240), got 64"
    );
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let e = parse_err(r#"{"proxy": {"comand": "x"}}"#);
    assert!(
        e.starts_with("up.json: proxy.comand: unknown field `comand`"),
        "{e}"
    );
    let e = parse_err(r#"{"nmae": "x"}"#);
    assert!(e.starts_with("up.json: nmae: unknown field"), "{e}");
    let e = parse_err(r#"{"cors": {"allowed_origin": ["*"]}}"#);
    assert!(
        e.starts_with("up.json: cors.allowed_origin: unknown field"),
        "{e}"
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = parse_err("{\n  \"name\": \"x\",\n}");
    assert_eq!(
        e,
        "up.json: not valid JSON: trailing comma (line 3, column 1)"
    );
}

#[test]
fn stage_overrides_merge_into_the_base() {
    let text = r#"{
        "environment": {"A": "base", "B": "base"},
        "lambda": {"memory": 512},
        "stages": {"production": {"environment": {"B": "prod"}, "lambda": {"memory": 2048}}}
    }"#;
    let base = parse_ok(text, None);
    assert_eq!(base.lambda.memory.get(), 512);
    let prod = parse_ok(text, Some("production"));
    assert_eq!(prod.lambda.memory.get(), 2048);
    assert_eq!(prod.environment["A"], "base");
    assert_eq!(prod.environment["B"], "prod");
    assert_eq!(parse_ok(text, Some("staging")).lambda.memory.get(), 512);
}

#[test]
fn every_stage_is_validated_with_its_path() {
    let e = parse_err(r#"{"stages": {"production": {"lambda": {"memory": 5}}}}"#);
    assert_eq!(
        e,
        "up.json: stages.production.lambda.memory: expected an integer (128..=10240), got 5"
    );
    let e = parse_err(r#"{"stages": {"production": {"nmae": "x"}}}"#);
    assert!(
        e.starts_with("up.json: stages.production.nmae: unknown key"),
        "{e}"
    );
}

#[test]
fn unknown_stage_is_an_error() {
    let e = parse(
        r#"{"stages": {"qa": {}}}"#,
        Path::new("up.json"),
        Some("prd"),
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::UnknownStage { .. }));
    assert!(
        e.to_string()
            .contains("development, staging, production, qa"),
        "{e}"
    );
}

#[test]
fn plain_text_passwords_are_refused() {
    let e = parse_err(r#"{"auth": {"basic": {"users": {"alice": "hunter2"}}}}"#);
    assert!(e.contains("auth.basic.users"), "{e}");
    assert!(e.contains("plain-text password"), "{e}");
    parse_ok(
        r#"{"auth": {"basic": {"users": {"alice": "$2b$12$abcdefghijklmnopqrstuv"}}}}"#,
        None,
    );
}

#[test]
fn throttle_keys() {
    let c = parse_ok(
        r#"{"throttle": {"rate": 10, "per": "1s", "burst": 20, "key": "header:X-Api-Key"}}"#,
        None,
    );
    assert_eq!(
        c.throttle.unwrap().key,
        up_config::ThrottleKey::Header("x-api-key".into())
    );
    let e = parse_err(r#"{"throttle": {"rate": 10, "key": "cookie"}}"#);
    assert!(e.starts_with("up.json: throttle.key: expected"), "{e}");
}

#[test]
fn load_reads_the_dir_and_detects_the_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), "").unwrap();
    let c = load(dir.path(), None).unwrap();
    assert_eq!(c.proxy.command.as_deref(), Some("python3 app.py"));
    assert!(!c.name.is_empty());
    std::fs::write(
        dir.path().join("up.json"),
        r#"{"name": "x", "proxy": {"command": "./run"}}"#,
    )
    .unwrap();
    let c = load(dir.path(), None).unwrap();
    assert_eq!(c.proxy.command.as_deref(), Some("./run"));
    assert_eq!(c.name, "x");
}

#[test]
fn web_feature_keys_of_apex_configs() {
    let c = parse_ok(r#"{"cors": {"enable": true}}"#, None);
    let cors = c.cors.unwrap();
    assert!(cors.enable);
    assert_eq!(cors.allowed_origins, ["*"]);
    let c = parse_ok(r#"{"cors": {"enable": false, "max_age": 60}}"#, None);
    assert!(!c.cors.unwrap().enable);
    assert!(parse_ok(r#"{"cors": true}"#, None).cors.unwrap().enable);

    let c = parse_ok(
        r#"{"error_pages": {"disable": true, "variables": {"color": "red"}}}"#,
        None,
    );
    assert!(c.error_pages.disable);
    assert!(!c.error_pages.enable);
    assert_eq!(c.error_pages.dir, ".");
    assert_eq!(c.error_pages.variables["color"], "red");

    let c = parse_ok(
        r#"{"redirects": {"/b/:x": {"location": "/c/:x"}, "/a/*": {"location": "/", "status": 200}}}"#,
        None,
    );
    let patterns: Vec<&str> = c.redirects.iter().map(|(p, _)| p).collect();
    assert_eq!(patterns, ["/b/:x", "/a/*"], "rules keep their file order");
    assert_eq!(c.redirects.get("/b/:x").unwrap().status, 301);
    assert!(!c.redirects.get("/a/*").unwrap().force);

    let e = parse_err(r#"{"redirects": {"/a": {"location": "/b", "status": 303}}}"#);
    assert!(
        e.starts_with("up.json: redirects./a.status: expected 301"),
        "{e}"
    );
    let e = parse_err(r#"{"static": {"dir": "public", "prefixx": "/"}}"#);
    assert!(
        e.starts_with("up.json: static.prefixx: unknown field"),
        "{e}"
    );
}

#[test]
fn warm_rate_takes_minutes_or_apex_durations() {
    let rate = |v: &str| {
        parse_ok(
            &format!(r#"{{"name": "a", "lambda": {{"warm_rate": {v}}}}}"#),
            None,
        )
    };
    assert_eq!(rate("10").lambda.warm_rate.get(), 10);
    assert_eq!(rate(r#""15m""#).lambda.warm_rate.get(), 15);
    assert_eq!(rate(r#""1h""#).lambda.warm_rate.get(), 60);
    let e = parse_err(r#"{"name": "a", "lambda": {"warm_rate": "90s"}}"#);
    assert!(e.contains("lambda.warm_rate"), "{e}");
    let e = parse_err(r#"{"name": "a", "lambda": {"warm_rate": "2h"}}"#);
    assert!(e.contains("lambda.warm_rate"), "{e}");
}
