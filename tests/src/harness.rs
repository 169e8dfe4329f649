//! Running the real `bootstrap` under `up-emulator`, and the same app directly, to compare what
//! the app receives each way.

use crate::paths::{bootstrap_path, example_dir};
use base64::Engine;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use up_emulator::{Config, Emulator, Invocation, Outcome};

/// How long a test waits for an app or a runtime to come up before failing.
pub const START_BOUND: Duration = Duration::from_secs(30);

/// A function under the emulator: the real bootstrap wrapping an app in `task_root`.
#[derive(Debug)]
pub struct Function {
    /// The emulator (public for the tests that need its instances or logs).
    pub emulator: Emulator,
    _dir: Option<tempfile::TempDir>,
}

impl Function {
    /// Starts the bootstrap over `task_root` with `env` and waits (bounded) until it polls
    /// `/next`; panics with the init failure otherwise.
    pub async fn start(task_root: &Path, env: &[(&str, &str)]) -> Function {
        let function = Self::spawn(task_root, env, |_| {}).await;
        if let Err(e) = function.emulator.wait_ready(START_BOUND).await {
            panic!(
                "bootstrap did not become ready: {e}\nlogs:\n{}",
                function.logs().join("\n")
            );
        }
        function
    }

    /// Starts the bootstrap without waiting, with a chance to adjust the emulator's config.
    pub async fn spawn(
        task_root: &Path,
        env: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> Function {
        let mut config = Config::new(bootstrap_path(), task_root);
        config.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config.timeout = Duration::from_secs(30);
        tweak(&mut config);
        let emulator = Emulator::start(config).await.expect("emulator starts");
        Function {
            emulator,
            _dir: None,
        }
    }

    /// Keeps `dir` alive as long as the function.
    pub fn owning(mut self, dir: tempfile::TempDir) -> Self {
        self._dir = Some(dir);
        self
    }

    /// Invokes with `event` and returns the invocation, whatever its outcome.
    pub async fn invoke(&self, event: &str) -> Invocation {
        self.emulator
            .invoke(Bytes::from(event.to_owned()))
            .await
            .expect("invoke")
    }

    /// Invokes with `event`, expecting a JSON response.
    pub async fn invoke_json(&self, event: &str) -> Value {
        let invocation = self.invoke(event).await;
        match invocation.outcome {
            Outcome::Response(body) => serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!(
                    "response is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body)
                )
            }),
            other => panic!(
                "expected a response, got {other:?}\nlogs:\n{}",
                self.logs().join("\n")
            ),
        }
    }

    /// Every line the bootstrap (and so the app through it) wrote, across instances.
    pub fn logs(&self) -> Vec<String> {
        self.emulator
            .instances()
            .iter()
            .flat_map(|i| i.logs())
            .collect()
    }

    /// The bootstrap's stdout lines that are JSON objects.
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }
}

/// A temporary task root holding `example`'s files (not its subfolders) and the given
/// `up.json`.
pub fn task_root(example: &str, up_json: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = example_dir(example);
    for entry in std::fs::read_dir(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()))
    {
        let entry = entry.expect("dir entry");
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name()))
                .expect("copy example file");
        }
    }
    std::fs::write(dir.path().join("up.json"), up_json.to_string()).expect("write up.json");
    dir
}

/// The example Rust app's binary (built by `scripts/test`).
pub fn rust_echo_binary() -> PathBuf {
    let path = crate::paths::target_dir().join("release/rust-echo");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test (or cargo build --release --manifest-path examples/rust-echo/Cargo.toml)",
        path.display()
    );
    path
}

/// An example app started directly (no Lambda in between) on a free loopback port.
#[derive(Debug)]
pub struct DirectApp {
    /// Where it listens.
    pub addr: SocketAddr,
    _child: Child,
}

impl DirectApp {
    /// Starts `command` (via `sh -c`, like the bootstrap) in `dir` with `PORT` set, and waits
    /// (bounded) until it accepts connections.
    pub async fn start(dir: &Path, command: &str) -> DirectApp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        // `exec`: the shell becomes the app, so `kill_on_drop` stops the app itself.
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .current_dir(dir)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < START_BOUND,
                "`{command}` did not listen on {addr} within {START_BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        DirectApp {
            addr,
            _child: child,
        }
    }

    /// Sends `request` over a new HTTP/1.1 connection and reads the whole response.
    pub async fn send(&self, request: Request<Bytes>) -> Response<Bytes> {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let (parts, body) = request.into_parts();
        let response = sender
            .send_request(Request::from_parts(parts, Full::new(body)))
            .await
            .expect("send");
        let (parts, body) = response.into_parts();
        Response::from_parts(parts, body.collect().await.expect("body").to_bytes())
    }
}

/// The body bytes of a Lambda HTTP response (`body` + `isBase64Encoded`).
pub fn lambda_body(response: &Value) -> Vec<u8> {
    let body = response["body"].as_str().unwrap_or("");
    if response["isBase64Encoded"].as_bool().unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64 body")
    } else {
        body.as_bytes().to_vec()
    }
}

/// The body of a Lambda response as the client reads it: [`lambda_body`], then decoded per its
/// `Content-Encoding` (`gzip`, `br`), as an HTTP client that sent `Accept-Encoding` would.
pub fn decoded_body(response: &Value) -> Vec<u8> {
    use std::io::Read;
    let body = lambda_body(response);
    let encoding = ["headers", "multiValueHeaders"]
        .iter()
        .filter_map(|k| response[*k].as_object())
        .flat_map(|h| h.iter())
        .find(|(k, _)| k.eq_ignore_ascii_case("content-encoding"))
        .map(|(_, v)| match v {
            Value::Array(vs) => vs.first().and_then(Value::as_str).unwrap_or("").to_owned(),
            v => v.as_str().unwrap_or("").to_owned(),
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    match encoding.trim() {
        "gzip" => {
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .expect("gzip body");
            out
        }
        "br" => {
            brotli::Decompressor::new(&body[..], 4096)
                .read_to_end(&mut out)
                .expect("br body");
            out
        }
        _ => body,
    }
}

/// Reads a fixture from `tests/data/`.
pub fn fixture(name: &str) -> String {
    let path = crate::paths::workspace_root().join("tests/data").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An HTTP API (payload 2.0) event for `method path?query` with `headers` and a text body.
pub fn v2_event(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> String {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "local.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
            "requestId": "req-v2",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_795_435_200_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}
