//! The real `bootstrap` under `up-emulator`, wrapping the real example apps: what an app
//! receives for each AWS event shape, compared with the same request sent to it directly, and
//! what the client gets back.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use base64::Engine;
use bytes::Bytes;
use http::Request;
use serde_json::{Value, json};
use up_emulator::Outcome;
use up_tests::harness::{
    DirectApp, Function, decoded_body, fixture, lambda_body, rust_echo_binary, task_root, v2_event,
};
use up_tests::paths::example_dir;

/// The echo document inside a Lambda response.
fn echo(response: &Value) -> Value {
    assert_eq!(response["statusCode"], 200, "{response}");
    serde_json::from_slice(&decoded_body(response)).expect("echo JSON")
}

/// Headers of an echo as lower-cased (name, value) pairs, in the order received.
fn headers(echo: &Value) -> Vec<(String, String)> {
    echo["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_ascii_lowercase(),
                h[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn header_values(echo: &Value, name: &str) -> Vec<String> {
    headers(echo)
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect()
}

fn body(echo: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(echo["body_b64"].as_str().unwrap())
        .unwrap()
}

/// Sends to the app directly the request the echo says it received, and checks the app sees
/// exactly the same thing: the translation is a real HTTP request, not an approximation.
async fn same_as_direct(direct: &DirectApp, via_bootstrap: &Value) {
    let target = match via_bootstrap["query"].as_str().unwrap() {
        "" => via_bootstrap["path"].as_str().unwrap().to_owned(),
        q => format!("{}?{q}", via_bootstrap["path"].as_str().unwrap()),
    };
    let mut request = Request::builder()
        .method(via_bootstrap["method"].as_str().unwrap())
        .uri(target);
    for (name, value) in headers(via_bootstrap) {
        request = request.header(name, value);
    }
    let response = direct
        .send(request.body(Bytes::from(body(via_bootstrap))).unwrap())
        .await;
    let direct_echo: Value = serde_json::from_slice(response.body()).unwrap();
    for key in ["method", "path", "query", "body_b64"] {
        assert_eq!(direct_echo[key], via_bootstrap[key], "{key}");
    }
    assert_eq!(headers(&direct_echo), headers(via_bootstrap));
}

async fn python() -> (Function, DirectApp) {
    let dir = example_dir("python-echo");
    let function = Function::start(&dir, &[("UP_STAGE", "staging")]).await;
    let direct = DirectApp::start(&dir, "python3 app.py").await;
    (function, direct)
}

#[tokio::test]
async fn rest_v1_event_reaches_the_app_with_every_header_and_query_value() {
    let (function, direct) = python().await;
    let e = echo(&function.invoke_json(&fixture("apigw-v1.json")).await);
    assert_eq!(e["method"], "GET");
    assert_eq!(e["path"], "/items/42");
    assert_eq!(e["query"], "tag=a&tag=b&q=a%20b%26c");
    assert_eq!(header_values(&e, "x-repeat"), ["one", "two"]);
    assert_eq!(
        header_values(&e, "host"),
        ["r3pmxmplak.execute-api.us-east-1.amazonaws.com"]
    );
    assert_eq!(
        header_values(&e, "x-request-id"),
        ["c6af9ac6-7b61-11e6-9a41-93e8deadbeef"]
    );
    assert!(header_values(&e, "x-forwarded-for")[0].ends_with("203.0.113.9"));
    assert_eq!(header_values(&e, "x-forwarded-proto"), ["https"]);
    assert_eq!(header_values(&e, "x-forwarded-port"), ["443"]);
    assert_eq!(e["env"]["UP_STAGE"], "staging");
    assert_eq!(e["env"]["UP_RESTARTS"], "0");
    same_as_direct(&direct, &e).await;
}

#[tokio::test]
async fn rest_v1_binary_upload_is_byte_exact() {
    let (function, direct) = python().await;
    let e = echo(&function.invoke_json(&fixture("apigw-v1-binary.json")).await);
    assert_eq!(e["method"], "POST");
    assert_eq!(
        body(&e),
        [
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80, 0x75, 0x70,
            0xc3, 0x28, 0x7f
        ]
    );
    assert_eq!(header_values(&e, "content-length"), ["17"]);
    assert!(header_values(&e, "x-forwarded-for")[0].ends_with(", 203.0.113.9"));
    same_as_direct(&direct, &e).await;
}

#[tokio::test]
async fn http_api_v2_event_has_no_stage_raw_query_and_cookies() {
    let (function, direct) = python().await;
    let e = echo(&function.invoke_json(&fixture("apigw-v2.json")).await);
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], "/items/42");
    assert_eq!(e["query"], "tag=a&tag=b&q=a%20b%26c&plus=1+2");
    assert_eq!(header_values(&e, "cookie"), ["session=abc; theme=dark"]);
    assert_eq!(header_values(&e, "x-repeat"), ["one,two"]);
    assert_eq!(body(&e), br#"{"name":"widget","qty":2}"#);
    same_as_direct(&direct, &e).await;

    let e = echo(
        &function
            .invoke_json(&fixture("apigw-v2-default.json"))
            .await,
    );
    assert_eq!(e["path"], "/production/items");
    assert_eq!(e["query"], "");
}

#[tokio::test]
async fn alb_events_pass_encoded_queries_through() {
    let (function, direct) = python().await;
    let e = echo(&function.invoke_json(&fixture("alb.json")).await);
    assert_eq!(e["query"], "q=a%20b%26c&page=2");
    assert!(header_values(&e, "connection").is_empty());
    same_as_direct(&direct, &e).await;

    let e = echo(&function.invoke_json(&fixture("alb-multi.json")).await);
    assert_eq!(e["query"], "tag=a&tag=b&q=a%20b%26c");
    assert_eq!(header_values(&e, "x-repeat"), ["one", "two"]);
    assert_eq!(header_values(&e, "cookie"), ["session=abc; theme=dark"]);
    same_as_direct(&direct, &e).await;
}

#[tokio::test]
async fn function_url_binary_body_is_byte_exact() {
    let (function, direct) = python().await;
    let e = echo(&function.invoke_json(&fixture("function-url.json")).await);
    assert_eq!(e["method"], "PUT");
    assert_eq!(e["path"], "/upload/raw");
    assert_eq!(
        body(&e),
        [
            0x00, 0x01, 0xfe, 0xff, 0x80, 0x7f, 0x75, 0x70, 0xc3, 0x28, 0xa0, 0xa1
        ]
    );
    same_as_direct(&direct, &e).await;
}

#[tokio::test]
async fn responses_keep_cookies_repeated_headers_status_and_bytes() {
    let (function, _direct) = python().await;

    // v2: Set-Cookie → cookies[], other repeats joined.
    let r = function
        .invoke_json(&v2_event("GET", "/cookies", "", &[], None))
        .await;
    assert_eq!(
        r["cookies"],
        json!([
            "a=1; Path=/",
            "b=2; Path=/; HttpOnly; Expires=Wed, 21 Oct 2037 07:28:00 GMT"
        ])
    );
    assert_eq!(r["headers"]["x-multi"], "one, two");

    // v1: every value separately in multiValueHeaders.
    let mut v1: Value = serde_json::from_str(&fixture("apigw-v1.json")).unwrap();
    v1["path"] = json!("/cookies");
    let r = function.invoke_json(&v1.to_string()).await;
    assert_eq!(
        r["multiValueHeaders"]["set-cookie"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(r["multiValueHeaders"]["x-multi"], json!(["one", "two"]));

    // ALB: status description; multi-value form when the request used it.
    let mut alb: Value = serde_json::from_str(&fixture("alb-multi.json")).unwrap();
    alb["path"] = json!("/status/404");
    let r = function.invoke_json(&alb.to_string()).await;
    assert_eq!(r["statusCode"], 404);
    assert_eq!(r["statusDescription"], "404 Not Found");
    assert!(r["multiValueHeaders"]["content-type"].is_array());

    // Status codes.
    for code in [201, 404, 503] {
        let r = function
            .invoke_json(&v2_event("GET", &format!("/status/{code}"), "", &[], None))
            .await;
        assert_eq!(r["statusCode"], code);
        assert_eq!(lambda_body(&r), format!("status {code}").as_bytes());
    }

    // Binary download: base64, byte-exact.
    let r = function
        .invoke_json(&v2_event("GET", "/bytes/1000", "", &[], None))
        .await;
    assert_eq!(r["isBase64Encoded"], true);
    let expected: Vec<u8> = (0..1000).map(|i| (i % 256) as u8).collect();
    assert_eq!(lambda_body(&r), expected);

    // Text in a charset that is not UTF-8 survives byte for byte.
    let r = function
        .invoke_json(&v2_event("GET", "/text/latin-1", "", &[], None))
        .await;
    assert_eq!(lambda_body(&r), b"caf\xe9");
    let r = function
        .invoke_json(&v2_event("GET", "/text/utf-8", "", &[], None))
        .await;
    assert_eq!(r["isBase64Encoded"], false);
    assert_eq!(r["body"], "café");
}

#[tokio::test]
async fn sequential_requests_reuse_one_app_process() {
    let (function, _direct) = python().await;
    let first = echo(
        &function
            .invoke_json(&v2_event("GET", "/a", "", &[], None))
            .await,
    );
    let second = echo(
        &function
            .invoke_json(&v2_event("GET", "/b", "", &[], None))
            .await,
    );
    assert_eq!(first["pid"], second["pid"]);
    assert_eq!(function.emulator.instances().len(), 1);
}

#[tokio::test]
async fn a_rust_app_receives_the_same_translation() {
    let binary = rust_echo_binary();
    let dir = task_root(
        "rust-echo",
        &json!({"name": "rust-echo", "proxy": {"command": binary.display().to_string()}}),
    );
    let function = Function::start(dir.path(), &[]).await.owning(dir);
    let e = echo(&function.invoke_json(&fixture("apigw-v1.json")).await);
    assert_eq!(e["path"], "/items/42");
    assert_eq!(e["query"], "tag=a&tag=b&q=a%20b%26c");
    assert_eq!(header_values(&e, "x-repeat"), ["one", "two"]);
    let e = echo(&function.invoke_json(&fixture("function-url.json")).await);
    assert_eq!(
        body(&e),
        [
            0x00, 0x01, 0xfe, 0xff, 0x80, 0x7f, 0x75, 0x70, 0xc3, 0x28, 0xa0, 0xa1
        ]
    );
    let r = function
        .invoke_json(&v2_event("GET", "/bytes/70000", "", &[], None))
        .await;
    assert_eq!(lambda_body(&r).len(), 70000);
}

#[tokio::test]
async fn a_node_app_is_found_by_runtime_detection() {
    let dir = example_dir("node-hello");
    let function = Function::start(&dir, &[]).await;
    let r = function
        .invoke_json(&v2_event("GET", "/", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200);
    let doc: Value = serde_json::from_slice(&lambda_body(&r)).unwrap();
    assert_eq!(doc["hello"], "node");
}

/// Invokes a function whose start-up fails; asserts the init error's type and returns its
/// message.
async fn init_error(function: &Function, error_type: &str) -> String {
    let invocation = function.invoke(&v2_event("GET", "/", "", &[], None)).await;
    match invocation.outcome {
        Outcome::InitError(failure) => {
            assert_eq!(failure.error_type, error_type, "{failure:?}");
            failure.error_message
        }
        other => panic!("expected an init error, got {other:?}"),
    }
}

#[tokio::test]
async fn app_that_fails_to_start_is_an_init_error_with_its_stderr() {
    let dir = example_dir("python-echo");
    let function = Function::spawn(&dir, &[("ECHO_FAIL_START", "1")], |_| {}).await;
    let message = init_error(&function, "Up.AppStartFailed").await;
    assert!(
        message.contains("fatal: cannot start (ECHO_FAIL_START)"),
        "{message}"
    );
    assert!(message.contains("exited"), "{message}");
}

#[tokio::test]
async fn app_that_never_listens_is_an_init_error_after_listen_timeout() {
    let dir = task_root(
        "python-echo",
        &json!({"proxy": {"command": "sleep 30", "listen_timeout": 1}}),
    );
    let function = Function::spawn(dir.path(), &[], |_| {}).await.owning(dir);
    let message = init_error(&function, "Up.AppStartFailed").await;
    assert!(message.contains("did not listen"), "{message}");
}

#[tokio::test]
async fn broken_up_json_is_an_init_error_naming_the_key() {
    let dir = task_root(
        "python-echo",
        &json!({"proxy": {"command": "python3 app.py", "listen_timeout": "abc"}}),
    );
    let function = Function::spawn(dir.path(), &[], |_| {}).await.owning(dir);
    let message = init_error(&function, "Up.InvalidConfig").await;
    assert!(
        message.contains(r#"proxy.listen_timeout: expected seconds (1..=25), got "abc""#),
        "{message}"
    );
}

#[tokio::test]
async fn a_non_http_event_is_refused_without_reaching_the_app() {
    let (function, _direct) = python().await;
    let invocation = function.invoke(&fixture("s3-put.json")).await;
    match invocation.outcome {
        Outcome::FunctionError { error_type, .. } => assert_eq!(error_type, "Up.UnsupportedEvent"),
        other => panic!("expected a function error, got {other:?}"),
    }
    // The instance survives and still serves; the app saw that request and no other.
    let r = function
        .invoke_json(&v2_event("GET", "/after", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200);
    let instance = function.emulator.instances()[0].clone();
    instance
        .wait_for_log(
            |l| l.contains("python-echo GET /after"),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("app access line");
    let app_requests = function
        .json_logs()
        .into_iter()
        .filter(|l| l["source"] == "app")
        .filter(|l| {
            l["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("python-echo ") && !m.contains("listening"))
        })
        .count();
    assert_eq!(app_requests, 1);
}

#[tokio::test]
async fn logs_are_json_lines_with_request_id_and_app_output() {
    let (function, _direct) = python().await;
    let invocation = function
        .invoke(&v2_event("GET", "/log", "", &[], None))
        .await;
    assert!(matches!(invocation.outcome, Outcome::Response(_)));
    let instance = function.emulator.instances()[0].clone();
    instance
        .wait_for_log(
            |l| l.contains("error line from app"),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("app stderr line logged");
    let logs = function.json_logs();
    let app_plain = logs
        .iter()
        .find(|l| l["msg"] == "plain line from app")
        .expect("plain app line");
    assert_eq!(app_plain["source"], "app");
    assert_eq!(app_plain["stream"], "stdout");
    assert_eq!(app_plain["level"], "info");
    assert_eq!(app_plain["request_id"], invocation.request_id.as_str());
    let app_json = logs
        .iter()
        .find(|l| l["msg"] == "json line from app")
        .expect("json app line");
    assert_eq!(app_json["level"], "warn");
    assert_eq!(app_json["user"], "alice");
    let app_err = logs
        .iter()
        .find(|l| l["msg"] == "error line from app")
        .expect("stderr app line");
    assert_eq!(app_err["level"], "error");
    // The access line is written after the response, by the log writer thread.
    instance
        .wait_for_log(
            |l| l.contains(r#""msg":"request""#),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("access line logged");
    let logs = function.json_logs();
    let request = logs
        .iter()
        .find(|l| l["msg"] == "request" && l["path"] == "/log")
        .expect("request line");
    assert_eq!(request["request_id"], invocation.request_id.as_str());
    assert_eq!(request["status"], 200);
    assert!(request["instance"].as_str().is_some_and(|s| !s.is_empty()));
    // Every line the bootstrap writes is a JSON object.
    for line in function.emulator.instances()[0].log_lines() {
        if line.stream == up_emulator::Stream::Stdout {
            assert!(
                serde_json::from_str::<Value>(&line.text).is_ok_and(|v| v.is_object()),
                "not JSON: {}",
                line.text
            );
        }
    }
}

/// Polls (bounded) until nothing accepts connections on `port`.
async fn port_closes(port: u16) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

async fn app_port(function: &Function) -> u16 {
    let e = echo(
        &function
            .invoke_json(&v2_event("GET", "/", "", &[], None))
            .await,
    );
    e["env"]["PORT"].as_str().unwrap().parse().unwrap()
}

/// Kills the bootstrap with SIGKILL and checks that the app's port closes.
async fn assert_app_dies_with_the_bootstrap(function: &Function) {
    let port = app_port(function).await;
    function.emulator.instances()[0].kill().await;
    assert!(
        port_closes(port).await,
        "the app still listens on {port} after SIGKILL of the bootstrap"
    );
}

#[tokio::test]
async fn the_app_dies_when_the_bootstrap_is_killed() {
    let (function, _direct) = python().await;
    assert_app_dies_with_the_bootstrap(&function).await;
}

#[tokio::test]
async fn what_a_compound_command_starts_dies_when_the_bootstrap_is_killed() {
    // `sh` stays the parent here (a compound command is not exec'd), so the server is the
    // bootstrap's grandchild, beyond PR_SET_PDEATHSIG: the watchdog must take it down.
    let dir = task_root(
        "python-echo",
        &json!({"name": "t", "proxy": {"command": "true && python3 app.py"}}),
    );
    let function = Function::start(dir.path(), &[("UP_STAGE", "staging")])
        .await
        .owning(dir);
    assert_app_dies_with_the_bootstrap(&function).await;
}

#[tokio::test]
async fn sigterm_stops_the_app_and_the_bootstrap() {
    let (function, _direct) = python().await;
    let port = app_port(&function).await;
    let instance = function.emulator.instances()[0].clone();
    // Lambda sends the runtime SIGTERM only when an extension is registered.
    assert_eq!(instance.extensions(), ["up-graceful-shutdown"]);
    instance.shutdown(std::time::Duration::from_secs(5)).await;
    assert!(
        instance
            .wait_exited(std::time::Duration::from_secs(5))
            .await
    );
    assert!(
        port_closes(port).await,
        "the app still listens on {port} after SIGTERM"
    );
    assert!(function.logs().iter().any(|l| l.contains("shutting down")));
}

#[tokio::test]
async fn a_slow_app_gets_504_before_lambda_would_time_out() {
    let dir = example_dir("python-echo");
    let function =
        Function::spawn(&dir, &[], |c| c.timeout = std::time::Duration::from_secs(2)).await;
    function
        .emulator
        .wait_ready(up_tests::harness::START_BOUND)
        .await
        .unwrap();
    let invocation = function
        .invoke(&v2_event("GET", "/sleep/5000", "", &[], None))
        .await;
    let Outcome::Response(body) = invocation.outcome else {
        panic!("expected a 504 response, got {:?}", invocation.outcome);
    };
    let r: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(r["statusCode"], 504, "{r}");
    assert!(String::from_utf8_lossy(&lambda_body(&r)).contains("did not answer within"));
    // The instance was kept and serves the next request.
    let r = function
        .invoke_json(&v2_event("GET", "/", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200);
}

#[tokio::test]
async fn proxy_timeout_bounds_a_request() {
    let dir = task_root(
        "python-echo",
        &json!({"proxy": {"command": "python3 app.py", "timeout": 1}}),
    );
    let function = Function::start(dir.path(), &[]).await.owning(dir);
    let r = function
        .invoke_json(&v2_event("GET", "/sleep/3000", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 504, "{r}");
}

#[tokio::test]
async fn bodies_over_max_body_get_413_without_reaching_the_app() {
    let dir = task_root(
        "python-echo",
        &json!({"proxy": {"command": "python3 app.py", "max_body": "1KB"}}),
    );
    let function = Function::start(dir.path(), &[]).await.owning(dir);
    let big = "x".repeat(2000);
    let r = function
        .invoke_json(&v2_event(
            "POST",
            "/mirror",
            "",
            &[("content-type", "text/plain")],
            Some(&big),
        ))
        .await;
    assert_eq!(r["statusCode"], 413, "{r}");
    assert!(String::from_utf8_lossy(&lambda_body(&r)).contains("exceeds proxy.max_body"));
    let small = "x".repeat(500);
    let r = function
        .invoke_json(&v2_event(
            "POST",
            "/mirror",
            "",
            &[("content-type", "text/plain")],
            Some(&small),
        ))
        .await;
    assert_eq!(r["statusCode"], 200);
    assert_eq!(lambda_body(&r), small.as_bytes());
}

#[tokio::test]
async fn a_response_over_6mb_is_a_clear_502() {
    let (function, _direct) = python().await;
    let r = function
        .invoke_json(&v2_event("GET", "/bytes/7000000", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 502, "{}", r["statusCode"]);
    let text = String::from_utf8_lossy(&lambda_body(&r)).into_owned();
    assert!(text.contains("exceeds Lambda's 6 MB limit"), "{text}");
    // Log lines are written by the log thread, after the response.
    function.emulator.instances()[0]
        .wait_for_log(
            |l| l.contains("exceeds Lambda's 6 MB limit"),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("the refusal is logged");
    // Just under the limit still goes through.
    let r = function
        .invoke_json(&v2_event("GET", "/bytes/4000000", "", &[], None))
        .await;
    assert_eq!(lambda_body(&r).len(), 4_000_000);
}

#[tokio::test]
async fn an_app_that_dies_mid_request_gives_502_and_is_restarted() {
    let (function, _direct) = python().await;
    let before = echo(
        &function
            .invoke_json(&v2_event("GET", "/", "", &[], None))
            .await,
    );
    let r = function
        .invoke_json(&v2_event("GET", "/exit/3", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 502, "{r}");
    let text = String::from_utf8_lossy(&lambda_body(&r)).into_owned();
    assert!(
        text.contains("the app exited") && text.contains('3'),
        "{text}"
    );
    // The next request waits for the restart and succeeds on a new process.
    let after = echo(
        &function
            .invoke_json(&v2_event("GET", "/", "", &[], None))
            .await,
    );
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after["env"]["UP_RESTARTS"], "1");
    assert_eq!(
        function.emulator.instances().len(),
        1,
        "the instance was kept"
    );
}

#[tokio::test]
async fn an_app_killed_at_rest_is_restarted_on_the_next_request() {
    let (function, _direct) = python().await;
    let before = echo(
        &function
            .invoke_json(&v2_event("GET", "/", "", &[], None))
            .await,
    );
    let pid = before["pid"].as_u64().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // Dead means: every thread gone (a zombie leader can outlive its threads for a moment) and
    // the port closed. Only then is the death something the bootstrap can notice.
    let port: u16 = before["env"]["PORT"].as_str().unwrap().parse().unwrap();
    let gone = std::time::Instant::now();
    loop {
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(true, |s| {
            s.contains("State:\tZ") && s.contains("Threads:\t1\n")
        });
        let closed = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err();
        if zombie && closed {
            break;
        }
        assert!(
            gone.elapsed() < std::time::Duration::from_secs(10),
            "pid {pid} still running"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let after = echo(
        &function
            .invoke_json(&v2_event("GET", "/", "", &[], None))
            .await,
    );
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after["env"]["UP_RESTARTS"], "1");
}

#[tokio::test]
async fn a_crash_loop_answers_503_with_retry_after() {
    let command = r#"if [ "$UP_RESTARTS" = 0 ]; then exec python3 app.py; else echo "crash $UP_RESTARTS" >&2; exit 1; fi"#;
    let dir = task_root(
        "python-echo",
        &json!({"proxy": {"command": command, "timeout": 1, "backoff": {"min": 200, "max": 5000, "factor": 10}}}),
    );
    let function = Function::start(dir.path(), &[]).await.owning(dir);
    let r = function
        .invoke_json(&v2_event("GET", "/exit/1", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 502, "{r}");
    let r = function
        .invoke_json(&v2_event("GET", "/", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 503, "{r}");
    let retry_after: u64 = r["headers"]["retry-after"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    // Log lines are written by the log thread, after the response.
    function.emulator.instances()[0]
        .wait_for_log(
            |l| l.contains("app restart failed"),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("the failed restart is logged");
}

#[tokio::test]
async fn unreadable_events_are_up_invalid_event_and_the_loop_goes_on() {
    let (function, _direct) = python().await;
    for payload in [
        &b"not json"[..],
        &b"{\"version\":\"2.0\",\"rawPath\":\"\xff\xfe\"}"[..],
        &b"[1,2"[..],
    ] {
        let invocation = function
            .emulator
            .invoke(Bytes::copy_from_slice(payload))
            .await
            .unwrap();
        match invocation.outcome {
            Outcome::FunctionError {
                error_type,
                error_message,
                ..
            } => {
                assert_eq!(error_type, "Up.InvalidEvent", "{error_message}");
            }
            other => panic!("expected Up.InvalidEvent, got {other:?}"),
        }
    }
    let r = function
        .invoke_json(&v2_event("GET", "/", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200);
    assert_eq!(
        function.emulator.instances().len(),
        1,
        "the instance was kept"
    );
}

#[tokio::test]
async fn events_path_passes_other_events_to_the_app() {
    let dir = task_root(
        "python-echo",
        &json!({"proxy": {"command": "python3 app.py", "events_path": "/events"}}),
    );
    let function = Function::start(dir.path(), &[]).await.owning(dir);
    let s3 = fixture("s3-put.json");
    let e = function.invoke_json(&s3).await;
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], "/events");
    let sent: Value = serde_json::from_slice(&body(&e)).unwrap();
    assert_eq!(sent, serde_json::from_str::<Value>(&s3).unwrap());
    assert_eq!(header_values(&e, "content-type"), ["application/json"]);

    let dir = task_root(
        "python-echo",
        &json!({"proxy": {"command": "python3 app.py", "events_path": "/status/500"}}),
    );
    let function = Function::start(dir.path(), &[]).await.owning(dir);
    match function.invoke(&s3).await.outcome {
        Outcome::FunctionError {
            error_type,
            error_message,
            ..
        } => {
            assert_eq!(error_type, "Up.EventFailed");
            assert!(error_message.contains("500"), "{error_message}");
        }
        other => panic!("expected Up.EventFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn untranslatable_http_events_get_400_and_the_loop_goes_on() {
    let (function, _direct) = python().await;
    let base: Value = serde_json::from_str(&v2_event("GET", "/", "", &[], None)).unwrap();
    let mut bad_base64 = base.clone();
    bad_base64["body"] = json!("%%% not base64");
    bad_base64["isBase64Encoded"] = json!(true);
    let mut crlf_header = base.clone();
    crlf_header["headers"] = json!({"x-evil": "a\r\nInjected: yes"});
    let mut bad_name = base.clone();
    bad_name["headers"] = json!({"bad name": "x"});
    let mut bad_method = base.clone();
    bad_method["requestContext"]["http"]["method"] = json!("GE T");
    let mut bad_path = base.clone();
    bad_path["rawPath"] = json!("/a\u{0}b");
    for (what, event) in [
        ("invalid base64", bad_base64),
        ("CR/LF in a header value", crlf_header),
        ("invalid header name", bad_name),
        ("invalid method", bad_method),
    ] {
        let r = function.invoke_json(&event.to_string()).await;
        assert_eq!(r["statusCode"], 400, "{what}: {r}");
        assert!(
            String::from_utf8_lossy(&lambda_body(&r)).starts_with("Bad Request"),
            "{what}"
        );
    }
    // A control byte in the path is escaped, never sent raw.
    let e = echo(&function.invoke_json(&bad_path.to_string()).await);
    assert_eq!(e["path"], "/a%00b");
    let r = function
        .invoke_json(&v2_event("GET", "/", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200);
    assert_eq!(
        function.emulator.instances().len(),
        1,
        "the instance was kept"
    );
}
