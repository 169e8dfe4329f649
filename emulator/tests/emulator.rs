//! The emulator driving a fake custom runtime (`fake_runtime.py`, the Runtime API loop in
//! Python): invoke outcomes, instance lifecycle, concurrency, shutdown and the HTTP front.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure, like the tests"
)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use up_emulator::{Config, Emulator, Error, Outcome};

/// Bound for every wait in these tests; none is expected to come near it.
const BOUND: Duration = Duration::from_secs(20);

/// The fake runtime, written once per test process (and renamed into place, so no test
/// ever executes a file another thread still has open for writing).
fn fake_runtime() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tmp = dir.join(format!("fake_runtime.py.{}", std::process::id()));
        std::fs::write(&tmp, include_str!("fake_runtime.py")).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("fake_runtime.py");
        std::fs::rename(&tmp, &path).unwrap();
        path
    })
}

fn config(task_root: &Path) -> Config {
    let mut config = Config::new(fake_runtime(), task_root);
    config.function_name = "fake".to_owned();
    config.timeout = BOUND;
    config
}

fn with_env(mut config: Config, name: &str, value: &str) -> Config {
    config.env.push((name.to_owned(), value.to_owned()));
    config
}

async fn invoke(emulator: &Emulator, event: Value) -> up_emulator::Invocation {
    emulator
        .invoke(Bytes::from(event.to_string()))
        .await
        .unwrap()
}

fn response_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Response(body) => serde_json::from_slice(body).unwrap(),
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn invoke_gives_the_runtime_lambdas_context() {
    let task_root = tempfile::tempdir().unwrap();
    let mut config = with_env(config(task_root.path()), "UP_STAGE", "staging");
    config.qualifier = Some("staging".to_owned());
    config.memory_mb = 256;
    let emulator = Emulator::start(config).await.unwrap();
    emulator.wait_ready(BOUND).await.unwrap();

    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let invocation = invoke(&emulator, json!({"action": "echo", "n": 1})).await;
    let result = response_json(&invocation.outcome);
    assert_eq!(result["event"], json!({"action": "echo", "n": 1}));

    let instance = &emulator.instances()[0];
    assert_eq!(invocation.instance, instance.index());
    assert_eq!(invocation.pid, instance.pid());
    assert_eq!(result["pid"], instance.pid());
    let root = std::fs::canonicalize(task_root.path()).unwrap();
    assert_eq!(result["cwd"], root.to_str().unwrap());

    let env = &result["env"];
    let runtime_api = instance.runtime_api().to_string();
    for (name, value) in [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "fake"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/fake"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
        ("_HANDLER", "bootstrap"),
        ("TZ", ":UTC"),
        ("UP_STAGE", "staging"),
    ] {
        assert_eq!(env[name], value, "{name}");
    }
    assert!(
        env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .unwrap()
            .contains("[$LATEST]")
    );
    assert!(env.get("LAMBDA_RUNTIME_DIR").is_some());

    let headers = &result["headers"];
    assert_eq!(
        headers["lambda-runtime-aws-request-id"],
        invocation.request_id.as_str()
    );
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:fake:staging"
    );
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["lambda-runtime-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    let deadline: u128 = headers["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(deadline >= before.as_millis() + BOUND.as_millis());

    assert!(
        instance
            .logs()
            .contains(&"fake runtime starting".to_owned())
    );
    let line = instance
        .wait_for_log(|l| l.starts_with("stderr:"), BOUND)
        .await;
    assert_eq!(line.as_deref(), Some("stderr: hello from init"));

    let again = invoke(&emulator, json!({"action": "echo"})).await;
    assert_eq!(again.pid, invocation.pid);
    assert!(!again.cold);
    assert_ne!(again.request_id, invocation.request_id);
}

#[tokio::test]
async fn runtime_api_address_can_carry_the_scheme() {
    let task_root = tempfile::tempdir().unwrap();
    let mut config = config(task_root.path());
    config.runtime_api_with_scheme = true;
    let emulator = Emulator::start(config).await.unwrap();
    let invocation = invoke(&emulator, json!({"action": "echo"})).await;
    assert!(invocation.cold);
    let result = response_json(&invocation.outcome);
    let expected = format!("http://{}", emulator.instances()[0].runtime_api());
    assert_eq!(result["env"]["AWS_LAMBDA_RUNTIME_API"], expected.as_str());
}

#[tokio::test]
async fn function_error_keeps_the_instance() {
    let task_root = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(config(task_root.path())).await.unwrap();
    let failed = invoke(&emulator, json!({"action": "error"})).await;
    match &failed.outcome {
        Outcome::FunctionError {
            error_type,
            error_message,
            body,
        } => {
            assert_eq!(error_type, "Fake.Boom");
            assert_eq!(error_message, "it broke");
            let body: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(body["stackTrace"], json!(["here"]));
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    let next = invoke(&emulator, json!({"action": "echo"})).await;
    assert!(matches!(next.outcome, Outcome::Response(_)));
    assert_eq!(next.pid, failed.pid);
}

#[tokio::test]
async fn posted_init_error_is_reported_by_wait_ready_and_invoke() {
    let task_root = tempfile::tempdir().unwrap();
    let config = with_env(config(task_root.path()), "FAKE_INIT", "error");
    let emulator = Emulator::start(config).await.unwrap();

    let failure = match emulator.wait_ready(BOUND).await {
        Err(Error::Init(failure)) => failure,
        other => panic!("expected an init error, got {other:?}"),
    };
    assert_eq!(failure.error_type, "Fake.InitFailed");
    assert_eq!(failure.error_message, "bad config");
    assert_eq!(failure.status.and_then(|s| s.code()), Some(2));
    assert!(
        failure
            .stderr
            .contains(&"stderr: hello from init".to_owned())
    );
    assert!(
        emulator.instances().is_empty(),
        "the failed instance is discarded"
    );

    let invocation = invoke(&emulator, json!({"action": "echo"})).await;
    match invocation.outcome {
        Outcome::InitError(failure) => assert_eq!(failure.error_type, "Fake.InitFailed"),
        other => panic!("expected an init error, got {other:?}"),
    }
}

#[tokio::test]
async fn exit_before_next_is_an_init_error_with_the_stderr_tail() {
    let task_root = tempfile::tempdir().unwrap();
    let config = with_env(config(task_root.path()), "FAKE_INIT", "exit");
    let emulator = Emulator::start(config).await.unwrap();
    let invocation = invoke(&emulator, json!({"action": "echo"})).await;
    let Outcome::InitError(failure) = invocation.outcome else {
        panic!("expected an init error, got {:?}", invocation.outcome);
    };
    assert_eq!(failure.error_type, "Runtime.ExitError");
    assert_eq!(
        failure.error_message,
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 3",
            invocation.request_id
        )
    );
    assert_eq!(failure.status.and_then(|s| s.code()), Some(3));
    assert_eq!(
        failure.stderr.last().map(String::as_str),
        Some("cannot start: no app")
    );
}

#[tokio::test]
async fn timeout_kills_the_instance_and_the_next_invoke_replaces_it() {
    let task_root = tempfile::tempdir().unwrap();
    let mut config = config(task_root.path());
    config.timeout = Duration::from_secs(1);
    let emulator = Emulator::start(config).await.unwrap();
    emulator.wait_ready(BOUND).await.unwrap();
    let first = emulator.instances()[0].clone();

    let timed_out = invoke(&emulator, json!({"action": "sleep", "seconds": 60})).await;
    assert_eq!(timed_out.outcome, Outcome::Timeout);
    assert!(first.has_exited(), "a timed-out instance is killed");
    assert!(emulator.instances().is_empty());

    let next = invoke(&emulator, json!({"action": "echo"})).await;
    assert!(matches!(next.outcome, Outcome::Response(_)));
    assert!(next.cold);
    assert_ne!(next.pid, first.pid());
    assert_ne!(next.instance, first.index());
}

#[tokio::test]
async fn crash_mid_invocation_is_reported_and_the_instance_replaced() {
    let task_root = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(config(task_root.path())).await.unwrap();
    let crashed = invoke(&emulator, json!({"action": "exit"})).await;
    match crashed.outcome {
        Outcome::RuntimeExited { status } => assert_eq!(status.and_then(|s| s.code()), Some(7)),
        other => panic!("expected a crash, got {other:?}"),
    }
    let next = invoke(&emulator, json!({"action": "echo"})).await;
    assert!(matches!(next.outcome, Outcome::Response(_)));
    assert_ne!(next.pid, crashed.pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_land_on_distinct_instances() {
    const N: usize = 6;
    let task_root = tempfile::tempdir().unwrap();
    let barrier = tempfile::tempdir().unwrap();
    let mut config = config(task_root.path());
    config.max_instances = N.try_into().unwrap();
    let emulator = Emulator::start(config).await.unwrap();

    let event = json!({"action": "barrier", "n": N, "dir": barrier.path()});
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let emulator = emulator.clone();
            let event = event.clone();
            tokio::spawn(async move { invoke(&emulator, event).await })
        })
        .collect();
    let mut pids = HashSet::new();
    let mut indices = HashSet::new();
    for task in tasks {
        let invocation = task.await.unwrap();
        let result = response_json(&invocation.outcome);
        assert_eq!(result["arrived"], N, "all {N} were in flight together");
        pids.insert(invocation.pid);
        indices.insert(invocation.instance);
    }
    assert_eq!(pids.len(), N);
    assert_eq!(indices.len(), N);
    assert_eq!(emulator.instances().len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_queue_when_all_instances_are_busy() {
    let task_root = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(config(task_root.path())).await.unwrap();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let emulator = emulator.clone();
            tokio::spawn(async move { invoke(&emulator, json!({"action": "echo"})).await })
        })
        .collect();
    let mut pids = HashSet::new();
    for task in tasks {
        let invocation = task.await.unwrap();
        assert!(matches!(invocation.outcome, Outcome::Response(_)));
        pids.insert(invocation.pid);
    }
    assert_eq!(pids.len(), 1, "max_instances 1 means one instance");
}

#[tokio::test]
async fn shutdown_sends_the_extension_event_and_sigterm() {
    let task_root = tempfile::tempdir().unwrap();
    let config = with_env(config(task_root.path()), "FAKE_EXTENSION", "1");
    let emulator = Emulator::start(config).await.unwrap();
    emulator.wait_ready(BOUND).await.unwrap();
    let instance = emulator.instances()[0].clone();
    assert_eq!(instance.extensions(), ["fake-ext"]);

    emulator.shutdown().await;
    assert!(instance.has_exited());
    assert_eq!(instance.exit_status().and_then(|s| s.code()), Some(0));
    let logs = instance.logs();
    assert!(
        logs.contains(&"extension event SHUTDOWN".to_owned()),
        "{logs:?}"
    );
    assert!(logs.contains(&"got SIGTERM".to_owned()), "{logs:?}");
    assert!(matches!(
        emulator.invoke(Bytes::from_static(b"{}")).await,
        Err(Error::ShutDown)
    ));
}

#[tokio::test]
async fn shutdown_without_an_extension_still_sends_sigterm() {
    use std::os::unix::process::ExitStatusExt;
    let task_root = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(config(task_root.path())).await.unwrap();
    emulator.wait_ready(BOUND).await.unwrap();
    let instance = emulator.instances()[0].clone();
    assert!(instance.extensions().is_empty());
    emulator.shutdown().await;
    assert_eq!(instance.exit_status().and_then(|s| s.signal()), Some(15));
    assert!(emulator.instances().is_empty());
}

#[tokio::test]
async fn dropping_the_emulator_kills_the_runtime() {
    let task_root = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(config(task_root.path())).await.unwrap();
    emulator.wait_ready(BOUND).await.unwrap();
    let pid = emulator.instances()[0].pid();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists());
    drop(emulator);
    let deadline = tokio::time::Instant::now() + BOUND;
    while proc.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "runtime {pid} still alive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn runtime_api_rejects_unknown_ids_and_paths() {
    let task_root = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(config(task_root.path())).await.unwrap();
    emulator.wait_ready(BOUND).await.unwrap();
    let api = emulator.instances()[0].runtime_api();

    let (status, _, body) = send(
        api,
        "POST",
        "/2018-06-01/runtime/invocation/not-an-id/response",
        &[],
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["errorType"], "InvalidRequestID");

    let (status, _, _) = send(api, "GET", "/2018-06-01/runtime/nope", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(
        api,
        "GET",
        "/2020-01-01/extension/event/next",
        &[("lambda-extension-identifier", "unknown")],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, headers, body) = send(
        api,
        "POST",
        "/2020-01-01/extension/register",
        &[("lambda-extension-name", "probe")],
        Bytes::from_static(br#"{"events":[]}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("lambda-extension-identifier"));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"functionName": "fake", "functionVersion": "$LATEST", "handler": "bootstrap"})
    );
}

/// Starts an HTTP front on a free port for `config`.
async fn front(config: Config) -> (SocketAddr, Emulator) {
    let emulator = Emulator::start(config).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(up_emulator::serve_http(listener, emulator.clone()));
    (addr, emulator)
}

#[tokio::test]
async fn http_front_turns_requests_into_payload_2_events_and_back() {
    let task_root = tempfile::tempdir().unwrap();
    let (addr, _emulator) = front(config(task_root.path())).await;

    let (status, headers, body) = send(
        addr,
        "GET",
        "/echo/a%20b?x=1&x=2&y=a+b",
        &[
            ("cookie", "c1=v1; c2=v2"),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("user-agent", "test/1"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["x-fake"], "yes");
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/echo/a%20b");
    assert_eq!(event["rawQueryString"], "x=1&x=2&y=a+b");
    assert_eq!(
        event["queryStringParameters"],
        json!({"x": "1,2", "y": "a b"})
    );
    assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
    assert!(event.get("body").is_none());
    let ctx = &event["requestContext"];
    assert_eq!(ctx["http"]["method"], "GET");
    assert_eq!(ctx["http"]["path"], "/echo/a b");
    assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["http"]["userAgent"], "test/1");
    assert_eq!(ctx["domainName"], addr.to_string());
    assert_eq!(
        headers["apigw-requestid"],
        ctx["requestId"].as_str().unwrap()
    );

    let binary = Bytes::from_static(&[0xff, 0xfe, 0x00]);
    let (_, _, body) = send(addr, "POST", "/upload", &[], binary).await;
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "//4A");
    let (_, _, body) = send(addr, "POST", "/text", &[], Bytes::from_static(b"hello")).await;
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&event["body"], &event["isBase64Encoded"]),
        (&json!("hello"), &json!(false))
    );

    let (status, headers, body) = send(addr, "GET", "/bare", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"hello": "world"})
    );

    let (status, _, body) = send(addr, "GET", "/binary", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_ref(), [0, 1, 255]);

    let (status, _, body) = send(addr, "GET", "/error", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"message": "Internal Server Error"})
    );
}

#[tokio::test]
async fn http_front_maps_timeouts_and_init_errors() {
    let task_root = tempfile::tempdir().unwrap();
    let mut slow = config(task_root.path());
    slow.timeout = Duration::from_secs(1);
    let (addr, _emulator) = front(slow).await;
    let (status, _, _) = send(addr, "GET", "/slow", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);

    let broken = with_env(config(task_root.path()), "FAKE_INIT", "error");
    let (addr, _emulator) = front(broken).await;
    let (status, _, _) = send(addr, "GET", "/", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

/// One HTTP/1.1 request on a fresh connection.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender
        .send_request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}
