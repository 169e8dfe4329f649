//! ministack as an independent, local AWS: start it, deploy a function behind API
//! Gateway, call it over plain HTTP.
//!
//! [`Ministack::start`] runs `python -m ministack` from the project's venv
//! ([`crate::paths::venv_python`]) on a free loopback port, with its own `TMPDIR` (where it
//! unpacks function zips and writes its log). Dropping the handle stops the server and
//! every process it started; when the thread is panicking the temp directory is kept and
//! its path printed, so the server log and the unpacked code survive a failed test.
//! `tests/MINISTACK.md` describes what ministack does and does not emulate.

use std::fs::File;
use std::io::{Cursor, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::config::{Credentials, SharedCredentialsProvider, SharedHttpClient};
use aws_sdk_lambda::error::DisplayErrorContext;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

/// Region every test resource lives in.
pub const REGION: &str = "us-east-1";

/// ministack's default account (static test credentials do not select another).
pub const ACCOUNT_ID: &str = "000000000000";

/// Execution role given to test functions. ministack (AUTH off) does not check it exists.
pub const TEST_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/up-test";

/// How long the server may take from spawn to `/_ministack/ready` (a cold Python start on a
/// loaded 2-core machine takes seconds, normally well under one).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Interval between readiness and state polls inside their bounded loops.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Bound for a function to go from `Pending` to `Active` (ministack flips it after 0.5 s).
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound for one HTTP call made by [`http_request`].
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// Grace between SIGTERM and SIGKILL when stopping the server.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running ministack server; dropping it stops the server and its process group.
#[derive(Debug)]
pub struct Ministack {
    child: Child,
    port: u16,
    endpoint: String,
    log_path: PathBuf,
    /// `None` only after `Drop` kept it.
    tmp: Option<TempDir>,
    sdk: SdkConfig,
    stopped: bool,
}

impl Ministack {
    /// Start ministack from the project's venv and wait until it is ready.
    ///
    /// # Panics
    /// When the venv is missing or the server does not become ready; the message names the
    /// server's log file and quotes its tail.
    pub async fn start() -> Ministack {
        let python = crate::paths::venv_python();
        match Self::try_start(&python).await {
            Ok(ministack) => ministack,
            Err(err) => panic!("ministack did not start: {err:#}"),
        }
    }

    async fn try_start(python: &Path) -> anyhow::Result<Ministack> {
        // A free port can be taken between probing and ministack binding it; ministack
        // then exits at once saying so, and another port is tried.
        const ATTEMPTS: usize = 3;
        let mut last_err = None;
        for _ in 0..ATTEMPTS {
            match Self::spawn_once(python).await {
                Ok(ministack) => return Ok(ministack),
                Err(SpawnError::PortTaken(err)) => last_err = Some(err),
                Err(SpawnError::Fatal(err)) => return Err(err),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no attempt made")))
    }

    async fn spawn_once(python: &Path) -> Result<Ministack, SpawnError> {
        let port = free_port().map_err(SpawnError::Fatal)?;
        let tmp = tempfile::Builder::new()
            .prefix("up-ministack-")
            .tempdir()
            .context("creating ministack's TMPDIR")
            .map_err(SpawnError::Fatal)?;
        let log_path = tmp.path().join("ministack.log");
        let log = File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))
            .map_err(SpawnError::Fatal)?;
        let log_err = log
            .try_clone()
            .context("duplicating the log handle")
            .map_err(SpawnError::Fatal)?;
        let endpoint = format!("http://127.0.0.1:{port}");

        let mut command = Command::new(python);
        command
            .args(["-m", "ministack"])
            .current_dir(tmp.path())
            .envs(server_env(port, tmp.path(), &endpoint))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // Its own process group: the bootstraps ministack spawns (and, unless they move
        // themselves, their apps) join it, so teardown reaches all of them.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .with_context(|| format!("spawning {} -m ministack", python.display()))
            .map_err(SpawnError::Fatal)?;

        let sdk = sdk_config_for(&endpoint);
        let mut ministack = Ministack {
            child,
            port,
            endpoint,
            log_path,
            tmp: Some(tmp),
            sdk,
            stopped: false,
        };
        match ministack.wait_ready().await {
            Ok(()) => Ok(ministack),
            Err(err) => {
                let tail = ministack.log_tail();
                let taken = tail.contains("already in use");
                let err = err.context(format!(
                    "server log {} ends with:\n{tail}",
                    ministack.log_path.display()
                ));
                if taken {
                    Err(SpawnError::PortTaken(err))
                } else {
                    // Keep the directory: the log is the only clue.
                    if let Some(tmp) = ministack.tmp.take() {
                        let _kept = tmp.keep();
                    }
                    Err(SpawnError::Fatal(err))
                }
            }
        }
    }

    /// Poll `/_ministack/ready` until it answers 200, the process exits, or the bound passes.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/_ministack/ready", self.endpoint);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("checking the server process")?
            {
                // Reaped: its pid may be reused, so never signal its group again.
                self.stopped = true;
                bail!("ministack exited during start-up ({status})");
            }
            let probe = tokio::time::timeout(
                Duration::from_secs(2),
                http_request("GET", &url, &[], Bytes::new()),
            );
            if let Ok(Ok(response)) = probe.await
                && response.status == StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{url} not ready after {START_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `http://127.0.0.1:<port>`: the AWS endpoint and the execute-api host.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The loopback port ministack listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The file holding ministack's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// ministack's `TMPDIR`. It unpacks each `provided.*` zip into
    /// `<tmpdir>/ministack-provided-code-<port>/<sha256 of the zip>/`, which becomes the
    /// function's `LAMBDA_TASK_ROOT` and working directory.
    pub fn tmpdir(&self) -> &Path {
        match &self.tmp {
            Some(tmp) => tmp.path(),
            None => Path::new(""),
        }
    }

    /// SDK configuration pointing at this server: region `us-east-1`, static test
    /// credentials, the endpoint URL, and the rustls/ring HTTP client.
    pub fn sdk_config(&self) -> SdkConfig {
        self.sdk.clone()
    }

    /// A Lambda client for this server.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk)
    }

    /// An API Gateway v2 (HTTP API) client for this server.
    pub fn apigatewayv2(&self) -> aws_sdk_apigatewayv2::Client {
        aws_sdk_apigatewayv2::Client::new(&self.sdk)
    }

    /// An API Gateway v1 (REST API) client for this server.
    pub fn apigateway(&self) -> aws_sdk_apigateway::Client {
        aws_sdk_apigateway::Client::new(&self.sdk)
    }

    /// Create a `provided.al2023` function from `zip` (handler `bootstrap`, x86_64, 30 s,
    /// 512 MB, role [`TEST_ROLE_ARN`], the given environment) and wait until it is
    /// `Active`. Returns the function ARN.
    pub async fn deploy_function(
        &self,
        name: &str,
        zip: Vec<u8>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        use aws_sdk_lambda::primitives::Blob;
        use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};

        let lambda = self.lambda();
        let mut environment = Environment::builder();
        for (key, value) in env {
            environment = environment.variables(*key, *value);
        }
        let created = lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(TEST_ROLE_ARN)
            .architectures(Architecture::X8664)
            .timeout(30)
            .memory_size(512)
            .environment(environment.build())
            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
            .send()
            .await
            .map_err(|e| sdk_error("CreateFunction", name, e))?;
        let arn = created
            .function_arn()
            .ok_or_else(|| anyhow!("CreateFunction {name}: no FunctionArn in the answer"))?
            .to_owned();
        self.wait_active(name).await?;
        Ok(arn)
    }

    /// Poll GetFunctionConfiguration until the function is `Active` and its last update
    /// `Successful`, failing on `Failed` or after [`ACTIVE_TIMEOUT`].
    async fn wait_active(&self, name: &str) -> anyhow::Result<()> {
        use aws_sdk_lambda::types::{LastUpdateStatus, State};

        let lambda = self.lambda();
        let deadline = Instant::now() + ACTIVE_TIMEOUT;
        loop {
            let config = lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(|e| sdk_error("GetFunctionConfiguration", name, e))?;
            let state = config.state();
            if state == Some(&State::Failed) {
                bail!("function {name} failed: {:?}", config.state_reason());
            }
            if state == Some(&State::Active)
                && matches!(
                    config.last_update_status(),
                    None | Some(LastUpdateStatus::Successful)
                )
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("function {name} still {state:?} after {ACTIVE_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Publish a version of `function` and point a new alias `alias` at it. Returns the
    /// alias ARN (`arn:aws:lambda:us-east-1:000000000000:function:<function>:<alias>`).
    pub async fn publish_alias(&self, function: &str, alias: &str) -> anyhow::Result<String> {
        let lambda = self.lambda();
        let published = lambda
            .publish_version()
            .function_name(function)
            .send()
            .await
            .map_err(|e| sdk_error("PublishVersion", function, e))?;
        let version = published
            .version()
            .ok_or_else(|| anyhow!("PublishVersion {function}: no Version in the answer"))?;
        let created = lambda
            .create_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|e| sdk_error("CreateAlias", alias, e))?;
        created
            .alias_arn()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("CreateAlias {alias}: no AliasArn in the answer"))
    }

    /// Put an HTTP API (v2) in front of `target_arn` (a function, version or alias ARN):
    /// one `AWS_PROXY` integration with payload format 2.0, route `$default`, and a stage
    /// (`$default` when `stage` is `None`) with auto-deploy.
    ///
    /// Returns the base URL to append request paths to:
    /// `<endpoint>/_aws/execute-api/<api-id>` for `$default`,
    /// `<endpoint>/_aws/execute-api/<api-id>/<stage>` for a named stage. With `$default`
    /// the API root is `<base>/` (the trailing slash is needed).
    pub async fn http_api(&self, target_arn: &str, stage: Option<&str>) -> anyhow::Result<String> {
        use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};

        let api = self.apigatewayv2();
        let stage_name = stage.unwrap_or("$default");
        let name = format!("up-test-{}", stage_name.trim_start_matches('$'));
        let created = api
            .create_api()
            .name(&name)
            .protocol_type(ProtocolType::Http)
            .send()
            .await
            .map_err(|e| sdk_error("CreateApi", &name, e))?;
        let api_id = created
            .api_id()
            .ok_or_else(|| anyhow!("CreateApi {name}: no ApiId"))?;
        let integration = api
            .create_integration()
            .api_id(api_id)
            .integration_type(IntegrationType::AwsProxy)
            .integration_uri(target_arn)
            .payload_format_version("2.0")
            .send()
            .await
            .map_err(|e| sdk_error("CreateIntegration", api_id, e))?;
        let integration_id = integration
            .integration_id()
            .ok_or_else(|| anyhow!("CreateIntegration {api_id}: no IntegrationId"))?;
        api.create_route()
            .api_id(api_id)
            .route_key("$default")
            .target(format!("integrations/{integration_id}"))
            .send()
            .await
            .map_err(|e| sdk_error("CreateRoute", api_id, e))?;
        api.create_stage()
            .api_id(api_id)
            .stage_name(stage_name)
            .auto_deploy(true)
            .send()
            .await
            .map_err(|e| sdk_error("CreateStage", stage_name, e))?;
        Ok(match stage {
            None => format!("{}/_aws/execute-api/{api_id}", self.endpoint),
            Some(stage) => format!("{}/_aws/execute-api/{api_id}/{stage}", self.endpoint),
        })
    }

    /// Put a REST API (v1) in front of `target_arn`: `binaryMediaTypes: ["*/*"]`, method
    /// `ANY` on `/` and on `/{proxy+}`, both `AWS_PROXY` to
    /// `arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/<target>/invocations`,
    /// deployed to `stage`.
    ///
    /// Returns `<endpoint>/_aws/execute-api/<api-id>/<stage>`.
    pub async fn rest_api(&self, target_arn: &str, stage: &str) -> anyhow::Result<String> {
        use aws_sdk_apigateway::types::IntegrationType;

        let api = self.apigateway();
        let name = format!("up-test-rest-{stage}");
        let created = api
            .create_rest_api()
            .name(&name)
            .binary_media_types("*/*")
            .send()
            .await
            .map_err(|e| sdk_error("CreateRestApi", &name, e))?;
        let api_id = created
            .id()
            .ok_or_else(|| anyhow!("CreateRestApi {name}: no id"))?;
        let resources = api
            .get_resources()
            .rest_api_id(api_id)
            .send()
            .await
            .map_err(|e| sdk_error("GetResources", api_id, e))?;
        let root_id = resources
            .items()
            .iter()
            .find(|r| r.path() == Some("/"))
            .and_then(|r| r.id())
            .ok_or_else(|| anyhow!("GetResources {api_id}: no root resource"))?
            .to_owned();
        let proxy = api
            .create_resource()
            .rest_api_id(api_id)
            .parent_id(&root_id)
            .path_part("{proxy+}")
            .send()
            .await
            .map_err(|e| sdk_error("CreateResource", api_id, e))?;
        let proxy_id = proxy
            .id()
            .ok_or_else(|| anyhow!("CreateResource {api_id}: no id"))?;
        let uri = format!(
            "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{target_arn}/invocations"
        );
        for resource_id in [root_id.as_str(), proxy_id] {
            api.put_method()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method("ANY")
                .authorization_type("NONE")
                .send()
                .await
                .map_err(|e| sdk_error("PutMethod", resource_id, e))?;
            api.put_integration()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method("ANY")
                .r#type(IntegrationType::AwsProxy)
                .integration_http_method("POST")
                .uri(&uri)
                .send()
                .await
                .map_err(|e| sdk_error("PutIntegration", resource_id, e))?;
        }
        api.create_deployment()
            .rest_api_id(api_id)
            .stage_name(stage)
            .send()
            .await
            .map_err(|e| sdk_error("CreateDeployment", stage, e))?;
        Ok(format!(
            "{}/_aws/execute-api/{api_id}/{stage}",
            self.endpoint
        ))
    }

    /// Create a Function URL (auth `NONE`) for `function` (and `qualifier`, an alias).
    /// Returns the path-style base URL `<endpoint>/_aws/lambda-url/<url-id>`; the same
    /// URL answers `http://127.0.0.1:<port>/` with `Host: <url-id>.lambda-url.us-east-1.on.aws`.
    pub async fn function_url(
        &self,
        function: &str,
        qualifier: Option<&str>,
    ) -> anyhow::Result<String> {
        use aws_sdk_lambda::types::FunctionUrlAuthType;

        let created = self
            .lambda()
            .create_function_url_config()
            .function_name(function)
            .set_qualifier(qualifier.map(str::to_owned))
            .auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .map_err(|e| sdk_error("CreateFunctionUrlConfig", function, e))?;
        // https://<url-id>.lambda-url.<region>.on.aws/
        let url = created.function_url();
        let url_id = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split('.').next())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| anyhow!("CreateFunctionUrlConfig {function}: unexpected URL {url}"))?;
        Ok(format!("{}/_aws/lambda-url/{url_id}", self.endpoint))
    }

    /// Every log line ministack recorded for `function` in `/aws/lambda/<function>`
    /// (CloudWatch Logs FilterLogEvents), oldest first. ministack writes one stream per
    /// invocation: `START`, the runtime's output since the previous invocation, `END`,
    /// `REPORT`. Raw JSON call: the CloudWatch Logs SDK is not worth its compile time here.
    pub async fn function_logs(&self, function: &str) -> anyhow::Result<Vec<String>> {
        let group = format!("/aws/lambda/{function}");
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/logs/aws4_request, SignedHeaders=host, Signature=0"
        );
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Logs_20140328.FilterLogEvents"),
            ("authorization", auth.as_str()),
        ];
        let mut lines = Vec::new();
        let mut token: Option<String> = None;
        // Bounded pagination: a test function logs far fewer than 100 pages.
        for _ in 0..100 {
            let mut request = serde_json::json!({ "logGroupName": group });
            if let Some(token) = &token {
                request["nextToken"] = serde_json::Value::String(token.clone());
            }
            let body = Bytes::from(serde_json::to_vec(&request)?);
            let response =
                http_request("POST", &format!("{}/", self.endpoint), &headers, body).await?;
            if response.status == StatusCode::BAD_REQUEST
                && response.text().contains("ResourceNotFoundException")
            {
                return Ok(lines);
            }
            if response.status != StatusCode::OK {
                bail!(
                    "FilterLogEvents {group}: {} {}",
                    response.status,
                    response.text()
                );
            }
            let page: serde_json::Value = serde_json::from_slice(&response.body)
                .with_context(|| format!("FilterLogEvents {group}: not JSON"))?;
            let events = page["events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            lines.extend(
                events
                    .iter()
                    .filter_map(|e| e["message"].as_str())
                    .map(str::to_owned),
            );
            match page["nextToken"].as_str() {
                Some(next) if !next.is_empty() && !events.is_empty() => {
                    token = Some(next.to_owned())
                }
                _ => return Ok(lines),
            }
        }
        Ok(lines)
    }

    /// The last lines of the server log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stop the server and every process in its group now, as dropping does, but keep the
    /// handle (and its temp directory, log included) so a test can then check what
    /// outlived ministack. Idempotent.
    pub fn stop(&mut self) {
        self.terminate();
    }

    /// Stop the whole process group (ministack and the bootstraps it spawned): SIGTERM,
    /// then up to [`STOP_GRACE`] for every member to exit (a bootstrap stops its app in
    /// that time), then SIGKILL for what is left. Idempotent.
    fn terminate(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pgid = self.child.id();
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + STOP_GRACE;
        // The leader is never reaped before the SIGKILL below: while it is an unreaped
        // zombie its pid, and so the group id, cannot be reused by another process.
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(pgid, "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Ministack {
    fn drop(&mut self) {
        self.terminate();
        if std::thread::panicking()
            && let Some(tmp) = self.tmp.take()
        {
            let kept = tmp.keep();
            eprintln!(
                "ministack: kept {} (server log {})",
                kept.display(),
                self.log_path.display()
            );
        }
    }
}

enum SpawnError {
    /// The probed port was taken before ministack bound it; try another.
    PortTaken(anyhow::Error),
    Fatal(anyhow::Error),
}

/// The server's environment: the caller's (PATH, HOME… reach the functions too, since
/// ministack hands its own environment to every bootstrap) plus ministack settings.
fn server_env(port: u16, tmpdir: &Path, endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GATEWAY_PORT", port.to_string()),
        ("BIND_HOST", "127.0.0.1".to_owned()),
        // Unpacked code, the pid file and every other temp file go here.
        ("TMPDIR", tmpdir.display().to_string()),
        // Functions that call AWS reach this server (ministack sets it in their env).
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("MINISTACK_REGION", REGION.to_owned()),
        ("PERSIST_STATE", "0".to_owned()),
        ("S3_PERSIST", "0".to_owned()),
        ("LOCALSTACK_PERSISTENCE", "0".to_owned()),
        ("STATE_DIR", tmpdir.join("state").display().to_string()),
        ("S3_DATA_DIR", tmpdir.join("s3").display().to_string()),
        ("AUTH", "false".to_owned()),
        // Run provided.* zips as local processes, never in Docker.
        ("LAMBDA_EXECUTOR", "local".to_owned()),
        ("LAMBDA_STRICT", "0".to_owned()),
        // Fixed extra ports (MQTT 8883, SFTP) would collide between parallel servers.
        ("IOT_MTLS_ENABLED", "0".to_owned()),
        ("SFTP_ENABLED", "0".to_owned()),
        ("PYTHONUNBUFFERED", "1".to_owned()),
        ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
    ]
}

/// The HTTP client the SDK uses: hyper + rustls with the *ring* provider, trusting the
/// OS roots. Plain http (ministack) and https (real AWS) both work.
pub fn sdk_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

fn sdk_config_for(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "up-tests",
        )))
        .endpoint_url(endpoint)
        .http_client(sdk_http_client())
        .build()
}

fn sdk_error<E>(operation: &str, subject: &str, err: E) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    anyhow!("{operation} {subject}: {}", DisplayErrorContext(&err))
}

/// A free loopback port: bind `127.0.0.1:0`, read the port, release it.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// An `http://127.0.0.1:PORT` URL nothing listens on (the port was free a moment ago), for
/// tests of an unreachable endpoint.
pub fn closed_endpoint() -> String {
    let port = free_port().unwrap_or_else(|e| panic!("{e:#}"));
    format!("http://127.0.0.1:{port}")
}

/// Send `SIG<signal>` to every process in group `pgid` (`kill -SIG -- -pgid`).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether process `pid` has exited (gone, or a zombie waiting to be reaped).
pub fn has_exited(pid: u32) -> bool {
    match proc_stat(pid) {
        Some((state, _pgrp)) => state == 'Z',
        None => true,
    }
}

/// Whether any live (non-zombie) process is in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_stat)
        .any(|(state, pgrp)| pgrp == pgid && state != 'Z')
}

/// State and process group of `pid` from `/proc/<pid>/stat`: "pid (comm) S ppid pgrp …",
/// where comm may contain spaces and parentheses, so fields are counted after the last ')'.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Send SIGKILL to process `pid` if it is still running (a process a test started that
/// outlived its parent); `kill -KILL pid`.
pub fn kill_pid(pid: u32) {
    if !has_exited(pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Where a zip entry's bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Read this file.
    Path(&'a Path),
    /// These bytes.
    Bytes(&'a [u8]),
}

/// Build a deployment zip in memory. Each entry is `(name in the zip, source,
/// executable)`; executables get mode 0755 (the `bootstrap` must), others 0644.
pub fn package_zip(files: &[(&str, Source<'_>, bool)]) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, source, executable) in files {
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(if *executable { 0o755 } else { 0o644 });
        let owned;
        let bytes = match source {
            Source::Path(path) => {
                owned =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                owned.as_slice()
            }
            Source::Bytes(bytes) => bytes,
        };
        zip.start_file(*name, options)
            .with_context(|| format!("zip entry {name}"))?;
        zip.write_all(bytes)
            .with_context(|| format!("zip entry {name}"))?;
    }
    Ok(zip.finish().context("finishing the zip")?.into_inner())
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    /// Every header line, repeated names kept in order.
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// All values of header `name`, in order (lossy UTF-8).
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Make one HTTP/1.1 request. `headers` are sent in order, repeated names as separate
/// lines; a `host` entry replaces the one derived from the URL.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> anyhow::Result<HttpResponse> {
    let method =
        Method::from_bytes(method.as_bytes()).with_context(|| format!("method {method}"))?;
    let mut request = http::Request::builder().method(method.clone()).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(body.into()))
        .with_context(|| format!("building {method} {url}"))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let exchange = async {
        let response = client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        anyhow::Ok(HttpResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("{method} {url}: no response within {HTTP_TIMEOUT:?}"))?
        .with_context(|| format!("{method} {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn package_zip_marks_executables_0755() {
        let zip = package_zip(&[
            ("bootstrap", Source::Bytes(b"#!/bin/sh\n"), true),
            ("app.py", Source::Bytes(b"print(1)\n"), false),
        ])
        .unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        let mut bootstrap = archive.by_name("bootstrap").unwrap();
        assert_eq!(bootstrap.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut text = String::new();
        bootstrap.read_to_string(&mut text).unwrap();
        assert_eq!(text, "#!/bin/sh\n");
        drop(bootstrap);
        let app = archive.by_name("app.py").unwrap();
        assert_eq!(app.unix_mode().map(|m| m & 0o777), Some(0o644));
    }

    #[test]
    fn proc_stat_reads_the_fields_after_the_command_name() {
        assert!(!has_exited(std::process::id()));
        assert!(has_exited(u32::MAX));
        let (_, pgrp) = proc_stat(std::process::id()).unwrap();
        assert!(pgrp > 0);
    }
}
