//! Shared by the deploy suites: a temp project holding the real python-echo app, the real `up`
//! binary run as a subprocess against an AWS endpoint (ministack or moto), and checks of what
//! the endpoint recorded.

#![allow(dead_code)]
// each suite uses a different part
// Test support: a failed step must stop the test at once, with the value that broke it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_config::SdkConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;

/// Bound for one `up` run (a deploy against an emulator takes seconds).
const UP_TIMEOUT: Duration = Duration::from_secs(300);

/// A project directory with python-echo and an `up.json`, and a HOME of its own.
#[derive(Debug)]
pub struct Project {
    dir: TempDir,
    home: TempDir,
}

impl Project {
    /// python-echo (examples/python-echo/app.py, unchanged) with `up_json`.
    pub fn python_echo(up_json: &Value) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("up-deploy-")
            .tempdir()
            .expect("temp project dir");
        let home = tempfile::Builder::new()
            .prefix("up-home-")
            .tempdir()
            .expect("temp HOME");
        let example = up_tests::paths::example_dir("python-echo");
        std::fs::copy(example.join("app.py"), dir.path().join("app.py")).expect("copy app.py");
        let project = Self { dir, home };
        project.write_up_json(up_json);
        project
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces `up.json`.
    pub fn write_up_json(&self, up_json: &Value) {
        std::fs::write(
            self.path().join("up.json"),
            serde_json::to_vec_pretty(up_json).unwrap(),
        )
        .expect("write up.json");
    }

    /// Changes the app's code: its echo document gains `"v": <version>`.
    pub fn change_app(&self, version: u32) {
        let path = self.path().join("app.py");
        let original =
            std::fs::read_to_string(up_tests::paths::example_dir("python-echo").join("app.py"))
                .unwrap();
        let needle = "\"method\": self.command,";
        assert!(
            original.contains(needle),
            "python-echo changed: {needle} not found"
        );
        let changed = original.replace(needle, &format!("{needle} \"v\": {version},"));
        std::fs::write(path, changed).unwrap();
    }

    /// Runs the real `up` with `args` in the project against `endpoint` (`AWS_ENDPOINT_URL`),
    /// with static test credentials, region us-east-1 and the test bootstrap.
    pub async fn up(&self, endpoint: &str, args: &[&str]) -> Run {
        self.up_with(endpoint, args, &[]).await
    }

    /// [`Project::up`] with extra (or, with an empty value, removed) environment variables.
    pub async fn up_with(&self, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(endpoint, args, env);
        let output = tokio::time::timeout(UP_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| panic!("up {args:?} did not finish within {UP_TIMEOUT:?}"))
            .expect("run up");
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The `up` command, not started (stdout/stderr piped, killed on drop).
    pub fn command(
        &self,
        endpoint: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_up"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("UP_BOOTSTRAP", up_tests::paths::bootstrap_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(warmer) = warmer_candidate().filter(|p| p.is_file()) {
            command.env("UP_WARMER", warmer);
        }
        for (key, value) in env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        command
    }
}

/// One finished `up` run.
#[derive(Debug)]
pub struct Run {
    /// The arguments.
    pub args: Vec<String>,
    /// Exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout parsed as JSON.
    pub fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "up {:?}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    /// Asserts success.
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "up {:?} failed\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts failure with exit code 1, no panic or backtrace, and exactly one error line
    /// (`up: ...`, after any progress lines); returns that line.
    pub fn error_line(&self) -> String {
        assert_eq!(
            self.code,
            Some(1),
            "up {:?} should fail\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("up: "))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got:\n{}",
            self.stderr
        );
        assert_eq!(
            self.stderr.lines().last(),
            Some(lines[0]),
            "the error is not the last line:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("stack backtrace"),
            "{}",
            self.stderr
        );
        lines[0].to_owned()
    }
}

/// GET `url` and parse the python-echo answer.
pub async fn echo(url: &str) -> Value {
    let response = up_tests::ministack::http_request("GET", url, &[], Vec::<u8>::new())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e:#}"));
    assert_eq!(
        response.status,
        200,
        "GET {url}: {} {}",
        response.status,
        response.text()
    );
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {}", response.text()))
}

/// The ministack URL of an HTTP API's `$default` stage: `<endpoint>/_aws/execute-api/<id>`.
pub fn http_api_base(endpoint: &str, summary: &Value) -> String {
    let id = summary["front_door"]["api_id"].as_str().expect("api_id");
    format!("{endpoint}/_aws/execute-api/{id}")
}

/// Everything named after `app` that the endpoint still has: functions, roles, HTTP and REST
/// APIs, rules, log groups.
pub async fn named_after(sdk: &SdkConfig, app: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lambda = aws_sdk_lambda::Client::new(sdk);
    for f in lambda.list_functions().send().await.unwrap().functions() {
        let name = f.function_name().unwrap_or_default();
        if name.starts_with(app) {
            found.push(format!("function {name}"));
        }
    }
    let iam = aws_sdk_iam::Client::new(sdk);
    for r in iam.list_roles().send().await.unwrap().roles() {
        if r.role_name().starts_with(app) {
            found.push(format!("role {}", r.role_name()));
        }
    }
    let v2 = aws_sdk_apigatewayv2::Client::new(sdk);
    for a in v2.get_apis().send().await.unwrap().items() {
        if a.name().unwrap_or_default().starts_with(app) {
            found.push(format!("http api {:?}", a.name()));
        }
    }
    let v1 = aws_sdk_apigateway::Client::new(sdk);
    for a in v1.get_rest_apis().send().await.unwrap().items() {
        if a.name().unwrap_or_default().starts_with(app) {
            found.push(format!("rest api {:?}", a.name()));
        }
    }
    let events = aws_sdk_cloudwatchevents::Client::new(sdk);
    for r in events
        .list_rules()
        .name_prefix(app)
        .send()
        .await
        .unwrap()
        .rules()
    {
        found.push(format!("rule {:?}", r.name()));
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    for g in logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{app}"))
        .send()
        .await
        .unwrap()
        .log_groups()
    {
        found.push(format!("log group {:?}", g.log_group_name()));
    }
    found
}

/// The versions of `function` other than `$LATEST`.
pub async fn versions(sdk: &SdkConfig, function: &str) -> Vec<String> {
    aws_sdk_lambda::Client::new(sdk)
        .list_versions_by_function()
        .function_name(function)
        .send()
        .await
        .unwrap()
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .filter(|v| *v != "$LATEST")
        .map(str::to_owned)
        .collect()
}

fn warmer_candidate() -> Option<PathBuf> {
    std::env::var_os("UP_WARMER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            Some(up_tests::paths::target_dir().join("x86_64-unknown-linux-musl/release/warmer"))
        })
}

/// The static musl `warmer` for warm tests: `$UP_WARMER`, else the musl release build in the
/// target directory.
///
/// # Panics
/// When it does not exist, with the command that builds it.
pub fn warmer_path() -> PathBuf {
    let path = warmer_candidate().unwrap_or_default();
    assert!(
        path.is_file(),
        "warmer not built: run cargo build --release -p up-warmer --target x86_64-unknown-linux-musl, or set UP_WARMER (looked for {})",
        path.display()
    );
    path
}

/// A ministack that enforces IAM (`AUTH=true`), for the missing-permission test. The shared
/// harness (`up_tests::ministack::Ministack`) always starts it with `AUTH=false`; this is the
/// same start-up (free port, own TMPDIR and process group, readiness poll, group kill on drop)
/// with enforcement on.
#[derive(Debug)]
pub struct AuthMinistack {
    child: std::process::Child,
    endpoint: String,
    tmp: Option<TempDir>,
}

impl AuthMinistack {
    /// Starts it and waits for `/_ministack/ready`.
    ///
    /// # Panics
    /// When the venv is missing or the server does not become ready within a minute.
    pub async fn start() -> Self {
        let python = up_tests::paths::venv_python();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let tmp = tempfile::Builder::new()
            .prefix("up-ministack-auth-")
            .tempdir()
            .unwrap();
        let log = std::fs::File::create(tmp.path().join("ministack.log")).unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut command = std::process::Command::new(python);
        command
            .args(["-m", "ministack"])
            .current_dir(tmp.path())
            .env("GATEWAY_PORT", port.to_string())
            .env("BIND_HOST", "127.0.0.1")
            .env("TMPDIR", tmp.path())
            .env("MINISTACK_REGION", "us-east-1")
            .env("PERSIST_STATE", "0")
            .env("S3_PERSIST", "0")
            .env("LOCALSTACK_PERSISTENCE", "0")
            .env("AUTH", "true")
            .env("LAMBDA_EXECUTOR", "local")
            .env("IOT_MTLS_ENABLED", "0")
            .env("SFTP_ENABLED", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("spawn ministack");
        let mut server = Self {
            child,
            endpoint,
            tmp: Some(tmp),
        };
        let ready = format!("{}/_ministack/ready", server.endpoint);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log();
                panic!("ministack (AUTH=true) exited ({status}):\n{log}");
            }
            let probe = tokio::time::timeout(
                Duration::from_secs(2),
                up_tests::ministack::http_request("GET", &ready, &[], Vec::<u8>::new()),
            );
            if let Ok(Ok(r)) = probe.await
                && r.status == 200
            {
                return server;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ministack (AUTH=true) not ready:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration with the account root's credentials (`test`/`test`).
    pub fn root_sdk(&self) -> SdkConfig {
        sdk_for(&self.endpoint, "test", "test")
    }

    fn log(&self) -> String {
        self.tmp
            .as_ref()
            .and_then(|t| std::fs::read_to_string(t.path().join("ministack.log")).ok())
            .unwrap_or_default()
    }
}

impl Drop for AuthMinistack {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        for signal in ["-TERM", "-KILL"] {
            let _ = std::process::Command::new("kill")
                .args([signal, "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if signal == "-TERM" {
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while std::time::Instant::now() < deadline
                    && matches!(self.child.try_wait(), Ok(None))
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Some(tmp) = self.tmp.take()
        {
            eprintln!("ministack (AUTH=true): kept {}", tmp.keep().display());
        }
    }
}

/// SDK configuration for `endpoint` with static credentials.
pub fn sdk_for(endpoint: &str, key: &str, secret: &str) -> SdkConfig {
    use aws_sdk_lambda::config::{Credentials, SharedCredentialsProvider};
    SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            key, secret, None, None, "up-tests",
        )))
        .endpoint_url(endpoint)
        .http_client(up_tests::ministack::sdk_http_client())
        .build()
}
