//! The middleware stack through the real `bootstrap` under `up-emulator`, wrapping the real
//! Python app: the access log line, throttling, auth, and the order of the layers.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use base64::Engine;
use serde_json::{Value, json};
use up_tests::harness::{Function, START_BOUND, lambda_body, task_root, v2_event};

/// The bootstrap over python-echo with `up_json` (and `env`), ready.
async fn function(up_json: Value, env: &[(&str, &str)]) -> Function {
    let dir = task_root("python-echo", &up_json);
    let mut all = vec![("UP_STAGE", "staging")];
    all.extend_from_slice(env);
    Function::start(dir.path(), &all).await.owning(dir)
}

/// Requests the app logged itself (its own access lines).
fn app_requests(function: &Function) -> Vec<String> {
    function
        .json_logs()
        .into_iter()
        .filter(|l| l["source"] == "app")
        .filter_map(|l| l["msg"].as_str().map(str::to_owned))
        .filter(|m| m.starts_with("python-echo ") && !m.contains("listening"))
        .collect()
}

/// The bootstrap's access-log lines, once there are `n` (the log thread writes them after the
/// response; waits at most [`START_BOUND`], then returns what there is).
async fn access_lines(function: &Function, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + START_BOUND;
    loop {
        let lines: Vec<Value> = function
            .json_logs()
            .into_iter()
            .filter(|l| l["msg"] == "request" && l["source"].is_null())
            .collect();
        if lines.len() >= n || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until the app has logged `n` requests, then returns them.
async fn app_saw(function: &Function, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + START_BOUND;
    loop {
        let seen = app_requests(function);
        if seen.len() >= n || std::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn header(response: &Value, name: &str) -> Option<String> {
    response["headers"]
        .as_object()
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

/// The headers python-echo received, from its echo document.
fn echoed_headers(response: &Value) -> Vec<(String, String)> {
    let body: Value = serde_json::from_slice(&lambda_body(response)).unwrap();
    body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_ascii_lowercase(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn one_access_line_per_request_with_every_field() {
    let f = function(
        json!({"name": "t", "proxy": {"command": "python3 app.py"}}),
        &[],
    )
    .await;
    let ua = [("user-agent", "curl/8.5"), ("content-type", "text/plain")];
    let r = f
        .invoke_json(&v2_event("POST", "/things", "a=1&b=2", &ua, Some("hello")))
        .await;
    assert_eq!(r["statusCode"], 200);
    assert_eq!(
        header(&r, "x-request-id").as_deref(),
        Some("req-v2"),
        "the client can quote the request id"
    );
    f.invoke_json(&v2_event("GET", "/status/404", "", &[], None))
        .await;
    f.invoke_json(&v2_event("GET", "/status/503", "", &[], None))
        .await;

    let lines = access_lines(&f, 3).await;
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let first = &lines[0];
    for key in ["request_id", "instance", "stage", "duration_ms"] {
        assert!(!first[key].is_null(), "{key} missing: {first}");
    }
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/things");
    assert_eq!(first["query"], "a=1&b=2");
    assert_eq!(first["status"], 200);
    assert_eq!(first["bytes_in"], 5);
    assert!(first["bytes_out"].as_u64().unwrap() > 100, "{first}");
    assert_eq!(first["ip"], "203.0.113.9");
    assert_eq!(first["user_agent"], "curl/8.5");
    assert_eq!(first["stage"], "staging");
    assert_eq!(first["cold"], true, "first request of the environment");
    assert_eq!(first["level"], "info");
    assert_eq!(lines[1]["cold"], false);
    assert_eq!(lines[1]["level"], "warn");
    assert_eq!(lines[1]["status"], 404);
    assert_eq!(lines[2]["level"], "error");
    assert_eq!(lines[2]["status"], 503);
}

#[tokio::test]
async fn logs_disable_turns_request_lines_off_but_failures_stay_logged() {
    let f = function(
        json!({"name": "t", "proxy": {"command": "python3 app.py", "max_body": "10"}, "logs": {"disable": true}}),
        &[],
    )
    .await;
    f.invoke_json(&v2_event("GET", "/", "", &[], None)).await;
    let r = f
        .invoke_json(&v2_event("POST", "/", "", &[], Some("more than ten bytes")))
        .await;
    assert_eq!(r["statusCode"], 413);
    // The 413 came second: once its line is there, the first request's would be too.
    let lines = access_lines(&f, 1).await;
    assert_eq!(lines.len(), 1, "only the failure: {lines:#?}");
    assert_eq!(lines[0]["status"], 413);
    assert!(
        lines[0]["cause"]
            .as_str()
            .unwrap()
            .contains("exceeds proxy.max_body"),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn throttled_requests_get_429_and_never_reach_the_app() {
    let f = function(
        json!({"name": "t", "proxy": {"command": "python3 app.py"},
               "throttle": {"rate": 2, "per": "1m", "key": "ip", "exempt": ["/health"]}}),
        &[],
    )
    .await;
    for _ in 0..2 {
        let r = f.invoke_json(&v2_event("GET", "/a", "", &[], None)).await;
        assert_eq!(r["statusCode"], 200);
    }
    // A different X-Forwarded-For does not make a new client: the key is the context's IP.
    let spoof = [("x-forwarded-for", "198.51.100.1")];
    let r = f
        .invoke_json(&v2_event("GET", "/a", "", &spoof, None))
        .await;
    assert_eq!(r["statusCode"], 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("30"));
    assert!(
        String::from_utf8(lambda_body(&r))
            .unwrap()
            .contains("Too Many Requests")
    );
    let r = f
        .invoke_json(&v2_event("GET", "/health", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200, "exempt");
    assert_eq!(
        app_saw(&f, 3).await.len(),
        3,
        "the 429 never reached the app"
    );
    let lines = access_lines(&f, 4).await;
    assert_eq!(lines[2]["status"], 429);
    assert_eq!(lines[2]["level"], "warn");
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[tokio::test]
async fn auth_guards_the_app_and_passes_the_user() {
    let hash = bcrypt::hash_with_salt("hunter2", 4, [3u8; 16])
        .unwrap()
        .to_string();
    let f = function(
        json!({"name": "t", "proxy": {"command": "python3 app.py"},
               "auth": {"public": ["/public/*"],
                        "basic": {"realm": "team", "users": {"alice": hash}},
                        "bearer": {"tokens_env": "UP_API_TOKENS", "header": "x-api-key"}}}),
        &[("UP_API_TOKENS", "deploy-bot:t0ken")],
    )
    .await;
    let r = f
        .invoke_json(&v2_event("GET", "/private", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 401);
    let challenge = header(&r, "www-authenticate").unwrap();
    assert!(challenge.contains("Basic realm=\"team\""), "{challenge}");
    assert!(challenge.contains("Bearer"), "{challenge}");

    let creds = basic("alice", "hunter2");
    let r = f
        .invoke_json(&v2_event(
            "GET",
            "/private",
            "",
            &[("authorization", &creds), ("x-up-user", "root")],
            None,
        ))
        .await;
    assert_eq!(r["statusCode"], 200);
    let seen = echoed_headers(&r);
    assert!(
        seen.contains(&("x-up-user".into(), "alice".into())),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|(k, _)| k == "authorization"), "{seen:?}");

    let r = f
        .invoke_json(&v2_event(
            "GET",
            "/private",
            "",
            &[("x-api-key", "t0ken")],
            None,
        ))
        .await;
    assert_eq!(r["statusCode"], 200);
    assert!(echoed_headers(&r).contains(&("x-up-user".into(), "deploy-bot".into())));

    let r = f
        .invoke_json(&v2_event("GET", "/public/x", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200);
    for trick in [
        "/public/..%2fprivate",
        "/public/%2e%2e/private",
        "//public/../private",
    ] {
        let r = f.invoke_json(&v2_event("GET", trick, "", &[], None)).await;
        assert_eq!(r["statusCode"], 401, "{trick}");
    }
    assert_eq!(
        app_saw(&f, 3).await.len(),
        3,
        "refused requests never reach the app"
    );
}

#[tokio::test]
async fn the_stack_throttles_before_auth_and_logs_what_the_client_got() {
    let f = function(
        json!({"name": "t", "proxy": {"command": "python3 app.py"},
               "throttle": {"rate": 1, "per": "1m"},
               "auth": {"bearer": {"tokens_env": "T"}}}),
        &[("T", "secret")],
    )
    .await;
    let ok = [("authorization", "Bearer secret")];
    let r = f.invoke_json(&v2_event("GET", "/", "", &ok, None)).await;
    assert_eq!(r["statusCode"], 200);
    // Over the limit, with or without credentials: 429, not 401 — auth never ran.
    let r = f.invoke_json(&v2_event("GET", "/", "", &[], None)).await;
    assert_eq!(r["statusCode"], 429);
    let r = f.invoke_json(&v2_event("GET", "/", "", &ok, None)).await;
    assert_eq!(r["statusCode"], 429);
    let statuses: Vec<Value> = access_lines(&f, 3)
        .await
        .iter()
        .map(|l| l["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(200), json!(429), json!(429)]);
    assert_eq!(app_saw(&f, 1).await.len(), 1);
}
