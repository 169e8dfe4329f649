//! The Lambda function: create it, or bring `$LATEST` to the wanted code and configuration,
//! then publish a version; skip all of it when the version a stage's alias points at already
//! has that code and configuration.
//!
//! Reads first, one call each: `GetFunction` on the stage's alias (that version's code sha,
//! configuration, the function's tags); `GetFunctionConfiguration` of `$LATEST` only when
//! something differs. Updates wait for `State`/`LastUpdateStatus` before the next one.

use super::Ctx;
use super::package::Package;
use crate::error::AwsError;
use anyhow::{Context as _, bail};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Largest zip sent inline with CreateFunction/UpdateFunctionCode; bigger ones go through S3.
pub const DIRECT_UPLOAD_LIMIT: usize = 50_000_000;

/// Longest wait for a function or version to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest time a just-created role may take to become assumable by Lambda (IAM propagation).
const ROLE_PROPAGATION: Duration = Duration::from_secs(60);

/// What the function should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Function name.
    pub name: String,
    /// Execution role ARN.
    pub role: String,
    /// Memory in MB.
    pub memory: i32,
    /// Timeout in seconds.
    pub timeout: i32,
    /// Environment variables.
    pub environment: BTreeMap<String, String>,
    /// CPU architecture.
    pub architecture: Architecture,
    /// Layer ARNs.
    pub layers: Vec<String>,
    /// Description.
    pub description: String,
    /// Tags on the function.
    pub tags: BTreeMap<String, String>,
    /// Reserved concurrency, when asked for.
    pub reserved_concurrency: Option<i32>,
}

/// Where the function's code comes from.
#[derive(Debug, Clone)]
pub enum Code<'a> {
    /// Inline zip.
    Zip(&'a Package),
    /// A zip already uploaded to S3 (bucket, key), and its package.
    S3(String, String, &'a Package),
}

impl Code<'_> {
    fn package(&self) -> &Package {
        match self {
            Self::Zip(p) | Self::S3(_, _, p) => p,
        }
    }

    fn function_code(&self) -> FunctionCode {
        match self {
            Self::Zip(p) => FunctionCode::builder()
                .zip_file(Blob::new(p.zip.clone()))
                .build(),
            Self::S3(bucket, key, _) => FunctionCode::builder()
                .s3_bucket(bucket)
                .s3_key(key)
                .build(),
        }
    }
}

/// What a stage's alias currently points at (from one `GetFunction` on the alias).
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The function exists.
    pub function_exists: bool,
    /// The alias exists and points at this version.
    pub alias_version: Option<String>,
    /// The unqualified function ARN, when known.
    pub function_arn: Option<String>,
    /// The function's tags.
    pub tags: HashMap<String, String>,
    /// The function's reserved concurrency.
    pub reserved_concurrency: Option<i32>,
    /// The alias's version is exactly what the spec and code ask for.
    pub up_to_date: bool,
}

/// The result of [`ensure`].
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The version the alias should point at.
    pub version: String,
    /// The unqualified function ARN.
    pub function_arn: String,
    /// A new version was published.
    pub published: bool,
    /// What happened to `$LATEST`.
    pub change: super::Change,
    /// Why (for people).
    pub detail: String,
}

/// Reads the function as seen through `alias` (or `$LATEST` when `alias` is `None`).
pub async fn current(
    ctx: &Ctx<'_>,
    spec: &Spec,
    code_sha256: &str,
    alias: Option<&str>,
) -> Result<Current, AwsError> {
    let lambda = &ctx.clients.lambda;
    let mut request = lambda.get_function().function_name(&spec.name);
    if let Some(alias) = alias {
        request = request.qualifier(alias);
    }
    let found = match request.send().await {
        Ok(out) => Some(out),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => {
            return Err(ctx.clients.error(
                "lambda:GetFunction",
                &format!("function {}", spec.name),
                e,
            ));
        }
    };
    let out = match (found, alias) {
        (Some(out), _) => out,
        (None, None) => return Ok(Current::default()),
        // The alias or the whole function is missing: ask about the function.
        (None, Some(_)) => match lambda.get_function().function_name(&spec.name).send().await {
            Ok(out) => {
                return Ok(Current {
                    function_exists: true,
                    alias_version: None,
                    function_arn: out
                        .configuration()
                        .and_then(FunctionConfiguration::function_arn)
                        .map(unqualified),
                    tags: out.tags().cloned().unwrap_or_default(),
                    reserved_concurrency: out
                        .concurrency()
                        .and_then(|c| c.reserved_concurrent_executions()),
                    up_to_date: false,
                });
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(Current::default());
            }
            Err(e) => {
                return Err(ctx.clients.error(
                    "lambda:GetFunction",
                    &format!("function {}", spec.name),
                    e,
                ));
            }
        },
    };
    let config = out.configuration();
    Ok(Current {
        function_exists: true,
        alias_version: alias.and(config.and_then(|c| c.version()).map(str::to_owned)),
        function_arn: config.and_then(|c| c.function_arn()).map(unqualified),
        tags: out.tags().cloned().unwrap_or_default(),
        reserved_concurrency: out
            .concurrency()
            .and_then(|c| c.reserved_concurrent_executions()),
        up_to_date: config.is_some_and(|c| {
            differences(spec, c).is_empty() && c.code_sha256() == Some(code_sha256)
        }),
    })
}

/// `arn:aws:lambda:<region>:<account>:function:<name>` from a possibly qualified ARN.
pub fn unqualified(arn: &str) -> String {
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

/// The configuration fields of `have` that differ from `spec`, by name.
pub fn differences(spec: &Spec, have: &FunctionConfiguration) -> Vec<&'static str> {
    let mut out = Vec::new();
    if have.runtime() != Some(&Runtime::Providedal2023) {
        out.push("runtime");
    }
    if have.handler() != Some("bootstrap") {
        out.push("handler");
    }
    if have.role() != Some(spec.role.as_str()) {
        out.push("role");
    }
    if have.memory_size() != Some(spec.memory) {
        out.push("memory");
    }
    if have.timeout() != Some(spec.timeout) {
        out.push("timeout");
    }
    let env: BTreeMap<String, String> = have
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if env != spec.environment {
        out.push("environment");
    }
    let layers: Vec<&str> = have.layers().iter().filter_map(|l| l.arn()).collect();
    if layers != spec.layers.iter().map(String::as_str).collect::<Vec<_>>() {
        out.push("layers");
    }
    if have.description().unwrap_or_default() != spec.description {
        out.push("description");
    }
    let same_arch = match have.architectures() {
        [a] => *a == spec.architecture,
        // Lambda's default.
        [] => spec.architecture == Architecture::X8664,
        _ => false,
    };
    if !same_arch {
        out.push("architecture");
    }
    out
}

fn environment(spec: &Spec) -> Environment {
    Environment::builder()
        .set_variables(Some(
            spec.environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
        .build()
}

/// Brings the function to `spec` and `code` and returns the version to serve: the alias's
/// version when [`Current::up_to_date`], else a new one (published only when `publish`; the
/// warmer runs `$LATEST`).
pub async fn ensure(
    ctx: &Ctx<'_>,
    spec: &Spec,
    code: &Code<'_>,
    now: &Current,
    publish: bool,
    role_is_new: bool,
) -> anyhow::Result<Deployed> {
    let package = code.package();
    if now.up_to_date {
        concurrency(ctx, spec, now.reserved_concurrency).await?;
        let version = now
            .alias_version
            .clone()
            .unwrap_or_else(|| "$LATEST".to_owned());
        return Ok(Deployed {
            version,
            function_arn: now.function_arn.clone().unwrap_or_default(),
            published: false,
            change: super::Change::Unchanged,
            detail: "code and configuration unchanged".to_owned(),
        });
    }
    if !now.function_exists {
        return create(ctx, spec, code, publish, role_is_new).await;
    }
    let lambda = &ctx.clients.lambda;
    let latest = wait_ready(ctx, &spec.name, None, false).await?;
    let function_arn = latest
        .function_arn()
        .map(unqualified)
        .or_else(|| now.function_arn.clone())
        .unwrap_or_default();
    let config_diff = differences(spec, &latest);
    let code_changed = latest.code_sha256() != Some(package.code_sha256.as_str())
        || config_diff.contains(&"architecture");
    let config_diff: Vec<&str> = config_diff
        .into_iter()
        .filter(|d| *d != "architecture")
        .collect();
    let mut what = Vec::new();
    if code_changed {
        what.push("code".to_owned());
    }
    what.extend(config_diff.iter().map(|d| (*d).to_owned()));
    let detail = if what.is_empty() {
        "publishing $LATEST".to_owned()
    } else {
        format!("updating {}", what.join(", "))
    };
    if what.is_empty()
        && publish
        && let Some(existing) = find_version(ctx, spec, &package.code_sha256).await?
    {
        // $LATEST is already published as wanted (a deploy stopped before the alias moved,
        // or the alias was removed): serve that version.
        return Ok(Deployed {
            version: existing,
            function_arn,
            published: false,
            change: super::Change::Unchanged,
            detail: "already published".to_owned(),
        });
    }
    if ctx.dry_run {
        return Ok(Deployed {
            version: "(new)".to_owned(),
            function_arn,
            published: publish,
            change: super::Change::Updated,
            detail,
        });
    }
    if !config_diff.is_empty() {
        ctx.progress
            .step(&format!("function {}: updating configuration", spec.name));
        lambda
            .update_function_configuration()
            .function_name(&spec.name)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&spec.role)
            .memory_size(spec.memory)
            .timeout(spec.timeout)
            .environment(environment(spec))
            .set_layers(Some(spec.layers.clone()))
            .description(&spec.description)
            .send()
            .await
            .map_err(|e| {
                ctx.clients.error(
                    "lambda:UpdateFunctionConfiguration",
                    &format!("function {}", spec.name),
                    e,
                )
            })?;
        wait_ready(ctx, &spec.name, None, true).await?;
    }
    // (version published, whether it is ready already)
    let (version, ready) = if code_changed {
        ctx.progress
            .step(&format!("function {}: uploading code", spec.name));
        let mut request = lambda
            .update_function_code()
            .function_name(&spec.name)
            .architectures(spec.architecture.clone())
            .publish(publish);
        request = match code {
            Code::Zip(p) => request.zip_file(Blob::new(p.zip.clone())),
            Code::S3(bucket, key, _) => request.s3_bucket(bucket).s3_key(key),
        };
        let out = request.send().await.map_err(|e| {
            ctx.clients.error(
                "lambda:UpdateFunctionCode",
                &format!("function {}", spec.name),
                e,
            )
        })?;
        (
            out.version().filter(|_| publish).map(str::to_owned),
            settled(out.state(), out.last_update_status()),
        )
    } else if publish {
        let out = lambda
            .publish_version()
            .function_name(&spec.name)
            .send()
            .await
            .map_err(|e| {
                ctx.clients.error(
                    "lambda:PublishVersion",
                    &format!("function {}", spec.name),
                    e,
                )
            })?;
        (
            out.version().map(str::to_owned),
            settled(out.state(), out.last_update_status()),
        )
    } else {
        (None, true)
    };
    let version = match (publish, version) {
        (true, Some(v)) => {
            if !ready {
                wait_ready(ctx, &spec.name, Some(&v), true).await?;
            }
            v
        }
        (true, None) => bail!("Lambda published no version number for {}", spec.name),
        (false, _) => {
            if !ready {
                wait_ready(ctx, &spec.name, None, true).await?;
            }
            "$LATEST".to_owned()
        }
    };
    tag(ctx, &function_arn, &spec.tags, &now.tags).await?;
    concurrency(ctx, spec, now.reserved_concurrency).await?;
    Ok(Deployed {
        version,
        function_arn,
        published: publish,
        change: super::Change::Updated,
        detail,
    })
}

async fn create(
    ctx: &Ctx<'_>,
    spec: &Spec,
    code: &Code<'_>,
    publish: bool,
    role_is_new: bool,
) -> anyhow::Result<Deployed> {
    if ctx.dry_run {
        return Ok(Deployed {
            version: if publish { "1" } else { "$LATEST" }.to_owned(),
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                ctx.clients.region,
                ctx.account().await.unwrap_or_default(),
                spec.name
            ),
            published: publish,
            change: super::Change::Created,
            detail: String::new(),
        });
    }
    ctx.progress
        .step(&format!("function {}: creating", spec.name));
    let started = Instant::now();
    let out = loop {
        let result = ctx
            .clients
            .lambda
            .create_function()
            .function_name(&spec.name)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&spec.role)
            .memory_size(spec.memory)
            .timeout(spec.timeout)
            .environment(environment(spec))
            .architectures(spec.architecture.clone())
            .set_layers(Some(spec.layers.clone()))
            .description(&spec.description)
            .set_tags(Some(
                spec.tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
            .publish(publish)
            .code(code.function_code())
            .send()
            .await;
        match result {
            Ok(out) => break out,
            // A new role takes a few seconds to become assumable by Lambda.
            Err(e)
                if role_is_new
                    && started.elapsed() < ROLE_PROPAGATION
                    && e.as_service_error()
                        .is_some_and(|e| e.is_invalid_parameter_value_exception()) =>
            {
                ctx.progress
                    .step(&format!("function {}: waiting for the new role", spec.name));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                return Err(ctx
                    .clients
                    .error(
                        "lambda:CreateFunction",
                        &format!("function {}", spec.name),
                        e,
                    )
                    .into());
            }
        }
    };
    let function_arn = out
        .function_arn()
        .map(unqualified)
        .context("CreateFunction answered without a FunctionArn")?;
    let version = match (publish, out.version()) {
        (true, Some(v)) if v != "$LATEST" => v.to_owned(),
        (true, _) => {
            // Some control planes ignore `Publish` on create: publish explicitly.
            wait_ready(ctx, &spec.name, None, true).await?;
            ctx.clients
                .lambda
                .publish_version()
                .function_name(&spec.name)
                .send()
                .await
                .map_err(|e| {
                    ctx.clients.error(
                        "lambda:PublishVersion",
                        &format!("function {}", spec.name),
                        e,
                    )
                })?
                .version()
                .map(str::to_owned)
                .context("PublishVersion answered without a Version")?
        }
        (false, _) => "$LATEST".to_owned(),
    };
    let qualifier = (version != "$LATEST").then_some(version.as_str());
    wait_ready(ctx, &spec.name, qualifier, true).await?;
    concurrency(ctx, spec, None).await?;
    Ok(Deployed {
        version,
        function_arn,
        published: publish,
        change: super::Change::Created,
        detail: String::new(),
    })
}

/// The highest published version with exactly `spec`'s configuration and `code_sha256`.
async fn find_version(
    ctx: &Ctx<'_>,
    spec: &Spec,
    code_sha256: &str,
) -> Result<Option<String>, AwsError> {
    let mut best: Option<u64> = None;
    let mut marker: Option<String> = None;
    loop {
        let out = ctx
            .clients
            .lambda
            .list_versions_by_function()
            .function_name(&spec.name)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| {
                ctx.clients.error(
                    "lambda:ListVersionsByFunction",
                    &format!("function {}", spec.name),
                    e,
                )
            })?;
        for v in out.versions() {
            let Some(n) = v.version().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            if v.code_sha256() == Some(code_sha256)
                && differences(spec, v).is_empty()
                && best.is_none_or(|b| n > b)
            {
                best = Some(n);
            }
        }
        match out.next_marker() {
            Some(next) if !next.is_empty() && !out.versions().is_empty() => {
                marker = Some(next.to_owned());
            }
            _ => return Ok(best.map(|b| b.to_string())),
        }
    }
}

/// Adds the tags `want` that `have` lacks or has with another value (never removes any).
pub async fn tag(
    ctx: &Ctx<'_>,
    function_arn: &str,
    want: &BTreeMap<String, String>,
    have: &HashMap<String, String>,
) -> Result<(), AwsError> {
    let missing: HashMap<String, String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if missing.is_empty() || ctx.dry_run || function_arn.is_empty() {
        return Ok(());
    }
    ctx.clients
        .lambda
        .tag_resource()
        .resource(function_arn)
        .set_tags(Some(missing))
        .send()
        .await
        .map_err(|e| ctx.clients.error("lambda:TagResource", function_arn, e))?;
    Ok(())
}

async fn concurrency(ctx: &Ctx<'_>, spec: &Spec, have: Option<i32>) -> Result<(), AwsError> {
    let Some(want) = spec.reserved_concurrency else {
        return Ok(());
    };
    if have == Some(want) || ctx.dry_run {
        return Ok(());
    }
    ctx.clients
        .lambda
        .put_function_concurrency()
        .function_name(&spec.name)
        .reserved_concurrent_executions(want)
        .send()
        .await
        .map_err(|e| {
            ctx.clients.error(
                "lambda:PutFunctionConcurrency",
                &format!("function {}", spec.name),
                e,
            )
        })?;
    Ok(())
}

/// Whether a function in `state` with `update` as its last update status can be invoked and
/// updated.
fn settled(state: Option<&State>, update: Option<&LastUpdateStatus>) -> bool {
    matches!(state, None | Some(State::Active))
        && !matches!(update, Some(LastUpdateStatus::InProgress))
}

/// Polls the configuration of `name` (`qualifier`: a version; `None`: `$LATEST`) until it is
/// `Active` with no update in progress. Fails on `Failed` or after [`READY_TIMEOUT`].
pub async fn wait_ready(
    ctx: &Ctx<'_>,
    name: &str,
    qualifier: Option<&str>,
    just_changed: bool,
) -> anyhow::Result<FunctionConfiguration> {
    let started = Instant::now();
    // Lambda takes from a fraction of a second (emulators) to tens of seconds: poll often at
    // first, then back off to every 2 s.
    let mut pause = Duration::from_millis(300);
    if just_changed {
        // Right after a change it is never ready yet: do not spend a call finding that out.
        tokio::time::sleep(pause).await;
    }
    let mut polls = 0u32;
    loop {
        let mut request = ctx.clients.lambda.get_function().function_name(name);
        if let Some(q) = qualifier {
            request = request.qualifier(q);
        }
        let config = request
            .send()
            .await
            .map_err(|e| {
                ctx.clients
                    .error("lambda:GetFunction", &format!("function {name}"), e)
            })?
            .configuration
            .with_context(|| format!("GetFunction {name}: no configuration in the answer"))?;
        let shown = qualifier.map_or_else(|| name.to_owned(), |q| format!("{name}:{q}"));
        if config.state() == Some(&State::Failed) {
            bail!(
                "function {shown} failed: {}",
                config.state_reason().unwrap_or("no reason given")
            );
        }
        if config.last_update_status() == Some(&LastUpdateStatus::Failed) {
            bail!(
                "the last update of function {shown} failed: {}",
                config
                    .last_update_status_reason()
                    .unwrap_or("no reason given")
            );
        }
        if settled(config.state(), config.last_update_status()) {
            return Ok(config);
        }
        if started.elapsed() >= READY_TIMEOUT {
            bail!(
                "function {shown} is still {:?} after {READY_TIMEOUT:?}",
                config.state()
            );
        }
        ctx.progress
            .step(&format!("function {shown}: waiting until it is ready"));
        tokio::time::sleep(pause).await;
        polls += 1;
        if polls >= 2 {
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            name: "demo".into(),
            role: "arn:aws:iam::1:role/demo-function".into(),
            memory: 512,
            timeout: 60,
            environment: [("UP_STAGE".to_owned(), "staging".to_owned())].into(),
            architecture: Architecture::X8664,
            layers: vec![],
            description: String::new(),
            tags: BTreeMap::new(),
            reserved_concurrency: None,
        }
    }

    fn matching() -> aws_sdk_lambda::types::builders::FunctionConfigurationBuilder {
        FunctionConfiguration::builder()
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role("arn:aws:iam::1:role/demo-function")
            .memory_size(512)
            .timeout(60)
            .environment(
                aws_sdk_lambda::types::EnvironmentResponse::builder()
                    .variables("UP_STAGE", "staging")
                    .build(),
            )
            .architectures(Architecture::X8664)
    }

    #[test]
    fn same_configuration_has_no_differences() {
        assert!(differences(&spec(), &matching().build()).is_empty());
    }

    #[test]
    fn differences_are_named() {
        let have = matching()
            .memory_size(1024)
            .environment(
                aws_sdk_lambda::types::EnvironmentResponse::builder()
                    .variables("UP_STAGE", "production")
                    .build(),
            )
            .build();
        assert_eq!(differences(&spec(), &have), vec!["memory", "environment"]);
    }

    #[test]
    fn unqualified_strips_version_or_alias() {
        assert_eq!(
            unqualified("arn:aws:lambda:us-east-1:1:function:demo:7"),
            "arn:aws:lambda:us-east-1:1:function:demo"
        );
        assert_eq!(
            unqualified("arn:aws:lambda:us-east-1:1:function:demo"),
            "arn:aws:lambda:us-east-1:1:function:demo"
        );
    }
}
