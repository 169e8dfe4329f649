//! The shape of `up.json`: apex/up's keys and defaults, plus up's own (`throttle`, `auth`, `url`).
//!
//! Every section is `deny_unknown_fields` and fully defaulted, so `{}` is a valid section and a
//! misspelt key is an error that names it.

use crate::value::{ByteSize, Commands, Level, Millis, OrderedMap, Seconds, parse_duration};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A whole `up.json`, after defaults (and, from [`crate::load`], the chosen stage's overrides).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The app's name; names every AWS resource. Defaults to the project folder's name.
    pub name: String,
    /// Free text, used as the function's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `server` (an HTTP server is spawned) or `static` (files only).
    #[serde(rename = "type")]
    pub kind: AppType,
    /// AWS credentials profile used by `up` (not by the bootstrap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Regions to deploy to; the first is the default.
    pub regions: Vec<String>,
    /// Environment variables given to the function (and so to the app).
    pub environment: BTreeMap<String, String>,
    /// Response headers by path pattern: `{"/*.css": {"Cache-Control": "max-age=3600"}}`.
    pub headers: OrderedMap<OrderedMap<String>>,
    /// Redirects and rewrites by path pattern, tried in order.
    pub redirects: OrderedMap<Redirect>,
    /// CORS; `true` for permissive defaults.
    #[serde(
        deserialize_with = "bool_or_section",
        skip_serializing_if = "Option::is_none"
    )]
    pub cors: Option<Cors>,
    /// Custom error pages.
    pub error_pages: ErrorPages,
    /// Static files served by the bootstrap without touching the app.
    #[serde(rename = "static")]
    pub static_files: Static,
    /// What is logged and at which level.
    pub logs: Logs,
    /// Shell commands run by `up` around builds and deploys.
    pub hooks: Hooks,
    /// The Lambda function's settings.
    pub lambda: Lambda,
    /// How the bootstrap runs and talks to the app.
    pub proxy: Proxy,
    /// Per-client rate limits, enforced in each execution environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Authentication in front of the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// A Lambda Function URL as the front door; `true` for an unauthenticated one.
    #[serde(
        deserialize_with = "bool_or_section",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<FunctionUrl>,
    /// Named stages and their overrides.
    pub stages: BTreeMap<String, Stage>,
}

/// What kind of app this is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppType {
    /// An HTTP server, spawned from `proxy.command`.
    #[default]
    Server,
    /// A static site: only `static` is served.
    Static,
}

/// One redirect or rewrite rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Where to: may use `:name` placeholders and `*` (the splat) from the pattern.
    pub location: String,
    /// 301, 302, 307 or 308 redirect, or 200 for a rewrite.
    #[serde(
        default = "default_redirect_status",
        deserialize_with = "redirect_status"
    )]
    pub status: u16,
    /// Apply even when the path exists (a static file or an app answer that is not 404).
    #[serde(default)]
    pub force: bool,
}

fn default_redirect_status() -> u16 {
    301
}

fn redirect_status<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let value = Value::deserialize(d)?;
    match value.as_u64() {
        Some(s @ (200 | 301 | 302 | 307 | 308)) => Ok(s as u16),
        _ => Err(de::Error::custom(format!(
            "expected 301, 302, 307, 308 (redirect) or 200 (rewrite), got {value}"
        ))),
    }
}

/// Cross-origin resource sharing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    /// `false` turns CORS off while keeping the section (apex/up's docs write
    /// `"cors": {"enable": true}`).
    pub enable: bool,
    /// Allowed origins; `*` for any, or one `*` inside an origin (`https://*.example.com`).
    pub allowed_origins: Vec<String>,
    /// Allowed methods.
    pub allowed_methods: Vec<String>,
    /// Allowed request headers; `*` for any.
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may read.
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`.
    pub allow_credentials: bool,
    /// `Access-Control-Max-Age` in seconds.
    pub max_age: u32,
    /// Log CORS decisions.
    pub debug: bool,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            enable: true,
            allowed_origins: vec!["*".into()],
            allowed_methods: ["HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: vec!["*".into()],
            exposed_headers: Vec::new(),
            allow_credentials: false,
            max_age: 0,
            debug: false,
        }
    }
}

/// Custom error pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorPages {
    /// Turn them on.
    pub enable: bool,
    /// Turn them off even when `enable` is set (the key of apex/up's older releases, where the
    /// pages were on by default).
    pub disable: bool,
    /// Where `404.html`, `4xx.html`, `5xx.html`, `error.html` are.
    pub dir: String,
    /// Values the templates may use.
    pub variables: BTreeMap<String, Value>,
}

impl Default for ErrorPages {
    fn default() -> Self {
        Self {
            enable: false,
            disable: false,
            dir: ".".into(),
            variables: BTreeMap::new(),
        }
    }
}

/// Static files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Static {
    /// The folder (relative to the project) to serve; none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The URL prefix the files live under.
    pub prefix: String,
}

impl Default for Static {
    fn default() -> Self {
        Self {
            dir: None,
            prefix: "/".into(),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logs {
    /// Turn request (access) logs off.
    pub disable: bool,
    /// Level of plain lines the app writes to stdout.
    pub stdout: Level,
    /// Level of plain lines the app writes to stderr.
    pub stderr: Level,
}

impl Default for Logs {
    fn default() -> Self {
        Self {
            disable: false,
            stdout: Level::Info,
            stderr: Level::Error,
        }
    }
}

/// Shell commands `up` runs, each via `sh -c`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hooks {
    /// Before `build`.
    pub prebuild: Commands,
    /// Builds the app.
    pub build: Commands,
    /// After `build`.
    pub postbuild: Commands,
    /// Before the deploy's AWS calls.
    pub predeploy: Commands,
    /// After a successful deploy.
    pub postdeploy: Commands,
    /// Removes build output after packaging.
    pub clean: Commands,
}

/// The CPU architecture of the function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Intel/AMD.
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    /// Graviton.
    Arm64,
}

/// The front door `up deploy` puts in front of the function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// An HTTP API (payload 2.0).
    #[default]
    Http,
    /// A REST API (payload 1.0, binary `*/*`).
    Rest,
}

/// Lambda memory in MB (128..=10240).
pub type MemoryMb = crate::value::Bounded<128, 10240>;
/// Minutes between scheduled warm-ups (1..=60).
pub type WarmRate = crate::value::Bounded<1, 60>;
/// Concurrent warm pings (1..=1000).
pub type WarmCount = crate::value::Bounded<1, 1000>;

/// The Lambda function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lambda {
    /// Memory in MB.
    pub memory: MemoryMb,
    /// Invocation timeout in seconds (1..=900).
    pub timeout: Seconds<1, 900>,
    /// An existing IAM role ARN instead of the one `up` creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Extra IAM policy statements for the function's role.
    pub policy: Vec<Value>,
    /// Ignored (apex/up compatibility): up always uses `provided.al2023`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// CPU architecture.
    pub architecture: Architecture,
    /// HTTP API (default) or REST API.
    pub endpoint: Endpoint,
    /// Keep instances warm with the warmer.
    pub warm: bool,
    /// How many instances to keep warm.
    pub warm_count: WarmCount,
    /// Minutes between warm-ups: a number of minutes, or a duration such as `"15m"` or `"1h"`
    /// (apex/up's form), in whole minutes.
    #[serde(deserialize_with = "warm_rate")]
    pub warm_rate: WarmRate,
    /// Reserved concurrency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
    /// VPC settings (passed to Lambda as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc: Option<Value>,
    /// Layer ARNs.
    pub layers: Vec<String>,
}

impl Default for Lambda {
    fn default() -> Self {
        Self {
            memory: MemoryMb::new_const(512),
            timeout: Seconds::from_secs(60),
            role: None,
            policy: Vec::new(),
            runtime: None,
            architecture: Architecture::X86_64,
            endpoint: Endpoint::Http,
            warm: false,
            warm_count: WarmCount::new_const(4),
            warm_rate: WarmRate::new_const(5),
            reserved_concurrency: None,
            vpc: None,
            layers: Vec::new(),
        }
    }
}

fn warm_rate<'de, D: Deserializer<'de>>(d: D) -> Result<WarmRate, D::Error> {
    let value = Value::deserialize(d)?;
    let minutes = match &value {
        Value::String(_) => crate::value::parse_duration(&value)
            .filter(|d| d.as_secs() % 60 == 0 && d.subsec_nanos() == 0)
            .map(|d| Value::from(d.as_secs() / 60))
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "expected minutes (1..=60) or a duration in whole minutes such as \"15m\", got {value}"
                ))
            })?,
        _ => value,
    };
    WarmRate::deserialize(minutes).map_err(de::Error::custom)
}

/// Restart backoff after the app dies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    /// First delay.
    pub min: Millis<1, 60_000>,
    /// Largest delay.
    pub max: Millis<1, 600_000>,
    /// Growth per consecutive failure.
    pub factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Millis::from_millis(100),
            max: Millis::from_millis(5000),
            factor: 2.0,
        }
    }
}

/// How the bootstrap runs the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Proxy {
    /// The shell command that starts the server (run with `sh -c`, `PORT` set). Detected from the
    /// project when absent (see [`crate::detect_command`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Longest a request may take in the app (1..=900 s).
    pub timeout: Seconds<1, 900>,
    /// Longest the app may take to listen after it starts (1..=25 s).
    pub listen_timeout: Seconds<1, 25>,
    /// Grace period between SIGTERM and SIGKILL on shutdown (0..=30 s).
    pub shutdown_timeout: Seconds<0, 30>,
    /// Restart backoff.
    pub backoff: Backoff,
    /// Largest request body passed to the app.
    pub max_body: ByteSize,
    /// Where events that are not HTTP requests are POSTed (unset: they are rejected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_path: Option<String>,
}

impl Default for Proxy {
    fn default() -> Self {
        Self {
            command: None,
            timeout: Seconds::from_secs(15),
            listen_timeout: Seconds::from_secs(15),
            shutdown_timeout: Seconds::from_secs(5),
            backoff: Backoff::default(),
            max_body: ByteSize(6 * 1024 * 1024),
            events_path: None,
        }
    }
}

/// Rate limiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Requests allowed per `per`.
    pub rate: crate::value::Bounded<1, 1_000_000>,
    /// The period of `rate`.
    #[serde(
        default = "one_second",
        deserialize_with = "period",
        serialize_with = "ser_period"
    )]
    pub per: Duration,
    /// Requests allowed at once above the steady rate (defaults to `rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<crate::value::Bounded<1, 1_000_000>>,
    /// What a limit applies to: `global`, `ip` or `header:<Name>`.
    #[serde(default)]
    pub key: ThrottleKey,
    /// Path patterns never throttled.
    #[serde(default)]
    pub exempt: Vec<String>,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn period<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = Value::deserialize(d)?;
    parse_duration(&value)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            de::Error::custom(format!(
                "expected a period such as \"1s\" or \"1m\", got {value}"
            ))
        })
}

fn ser_period<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}ms", d.as_millis()))
}

/// What a throttle limit is counted per.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ThrottleKey {
    /// One limit for every request.
    Global,
    /// Per source IP from the request context (never a client header).
    #[default]
    Ip,
    /// Per value of a request header, e.g. an API key.
    Header(String),
}

impl<'de> Deserialize<'de> for ThrottleKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match value.as_str() {
            Some("global") => Ok(Self::Global),
            Some("ip") => Ok(Self::Ip),
            Some(s) if s.starts_with("header:") && s.len() > "header:".len() => {
                let name = &s["header:".len()..];
                http_token(name)
                    .then(|| Self::Header(name.to_ascii_lowercase()))
                    .ok_or_else(|| de::Error::custom(format!("invalid header name {name:?}")))
            }
            _ => Err(de::Error::custom(format!(
                "expected \"global\", \"ip\" or \"header:<Name>\", got {value}"
            ))),
        }
    }
}

impl Serialize for ThrottleKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Global => s.serialize_str("global"),
            Self::Ip => s.serialize_str("ip"),
            Self::Header(h) => s.serialize_str(&format!("header:{h}")),
        }
    }
}

fn http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Path patterns that skip authentication.
    pub public: Vec<String>,
    /// HTTP Basic with hashed passwords.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    /// Static bearer tokens / API keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer: Option<BearerAuth>,
    /// JSON Web Tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
    /// Pass the `Authorization` header on to the app.
    pub forward_authorization: bool,
}

/// HTTP Basic users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The realm in `WWW-Authenticate`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// user → argon2 or bcrypt hash. Plain-text passwords are refused.
    #[serde(default, deserialize_with = "password_hashes")]
    pub users: BTreeMap<String, String>,
    /// An environment variable holding `user:hash` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_env: Option<String>,
}

fn default_realm() -> String {
    "up".into()
}

/// True when `s` looks like an argon2 or bcrypt hash (not a plain-text password).
pub fn is_password_hash(s: &str) -> bool {
    s.starts_with("$argon2")
        || ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| s.starts_with(p))
}

fn password_hashes<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let users = BTreeMap::<String, String>::deserialize(d)?;
    if let Some((user, _)) = users.iter().find(|(_, hash)| !is_password_hash(hash)) {
        return Err(de::Error::custom(format!(
            "user {user:?}: expected an argon2 or bcrypt hash, got a plain-text password"
        )));
    }
    Ok(users)
}

/// Static tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerAuth {
    /// An environment variable holding the tokens, one per line or comma-separated.
    pub tokens_env: String,
    /// Another header that may carry a token instead of `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

/// JWT validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtAuth {
    /// Required `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Required `aud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Accepted algorithms.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// An environment variable holding the HS256 secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// A PEM public key file (RS256/ES256), relative to the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<String>,
    /// Allowed clock skew in seconds.
    #[serde(default = "default_leeway")]
    pub leeway: u64,
}

fn default_algorithms() -> Vec<String> {
    vec!["HS256".into()]
}

fn default_leeway() -> u64 {
    30
}

/// A Lambda Function URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FunctionUrl {
    /// `NONE` (public) or `AWS_IAM`.
    pub auth_type: String,
}

impl Default for FunctionUrl {
    fn default() -> Self {
        Self {
            auth_type: "NONE".into(),
        }
    }
}

/// A stage: where it is served and what it overrides.
///
/// Not `deny_unknown_fields`: the other keys land in `overrides`, and [`crate::parse`] checks each
/// against [`STAGE_OVERRIDABLE`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stage {
    /// Custom domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Route 53 zone of the domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Base path mapping on the domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// ACM certificate ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// Sections that replace or extend the top-level ones for this stage (merged key by key).
    #[serde(flatten)]
    pub overrides: BTreeMap<String, Value>,
}

/// The top-level sections a stage may override.
pub const STAGE_OVERRIDABLE: &[&str] = &[
    "environment",
    "headers",
    "redirects",
    "cors",
    "error_pages",
    "static",
    "logs",
    "hooks",
    "lambda",
    "proxy",
    "throttle",
    "auth",
    "url",
];

/// `true` → the section's defaults, `false`/`null` → none, an object → that section.
///
/// The object goes through the same deserializer (not a detour via `Value`), so a bad key
/// inside it still reports its full path.
fn bool_or_section<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    struct BoolOrSection<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Default> de::Visitor<'de> for BoolOrSection<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("true, false or an object")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then(T::default))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(BoolOrSection(std::marker::PhantomData))
}
