//! `up deploy`: direct, idempotent AWS calls, no CloudFormation.
//!
//! hooks → package → role → function (+ version) → alias → front door → warmer → prewarm.
//! Every step reads first and writes only what differs, so a second run converges, also after
//! an interrupted one; a code-only redeploy is a handful of calls. [`Ctx::dry_run`] runs the same
//! reads and reports what would change instead of changing it (`up stack plan`).
//!
//! # Layout
//! - `artifact`: finding or building the static `bootstrap` and `warmer` binaries.
//! - `package`: the deterministic zip.
//! - `hooks`: `hooks.*` shell commands.
//! - `iam`: the function's and the warmer's roles.
//! - `function`: the function and its versions.
//! - `alias`: stage and commit aliases.
//! - `door`: HTTP API, REST API or Function URL per stage.
//! - `permission`: resource-policy statements on the function.
//! - `warmer`: the warmer function, rules and prewarm.
//! - `upload`: zips through S3.
//! - `stack`: finding and deleting everything of an app.

pub mod alias;
pub mod artifact;
pub mod door;
pub mod function;
pub mod hooks;
pub mod iam;
pub mod package;
pub mod permission;
pub mod stack;
pub mod upload;
pub mod warmer;

use crate::aws::Clients;
use crate::error::AwsError;
use crate::names;
use crate::progress::Progress;
use anyhow::Context as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use up_config::{Architecture, Config};

/// What a step did (or, dry run, would do) to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It did not exist.
    Created,
    /// It existed and differed.
    Updated,
    /// It was already right.
    Unchanged,
    /// It was removed.
    Deleted,
}

impl Change {
    /// The verb for people; `plan` switches to the conditional.
    pub fn verb(self, plan: bool) -> &'static str {
        match (self, plan) {
            (Self::Created, false) => "created",
            (Self::Updated, false) => "updated",
            (Self::Unchanged, _) => "unchanged",
            (Self::Deleted, false) => "deleted",
            (Self::Created, true) => "create",
            (Self::Updated, true) => "update",
            (Self::Deleted, true) => "delete",
        }
    }
}

/// One resource and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `role`, `function`, `alias`, `api`, `url`, `rule`, ...
    pub resource: String,
    /// Its name.
    pub name: String,
    /// What happened.
    pub change: Change,
    /// Details for people (what differed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// A stage's front door after the deploy.
#[derive(Debug, Clone, Serialize)]
pub struct Door {
    /// Which kind.
    pub kind: door::Kind,
    /// Its URL (empty in a dry run when it does not exist yet).
    pub url: String,
    /// The API id (HTTP and REST APIs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// What happened to it.
    #[serde(skip)]
    pub change: Change,
}

impl Door {
    /// A door a dry run would create: no URL or id yet.
    fn planned(kind: door::Kind) -> Self {
        Self {
            kind,
            url: String::new(),
            api_id: None,
            change: Change::Created,
        }
    }
}

/// The app and stage being deployed, the clients, and what happened so far.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The AWS clients.
    pub clients: &'a Clients,
    /// `up.json` resolved for the stage.
    pub config: &'a Config,
    /// The stage.
    pub stage: &'a str,
    /// Progress output.
    pub progress: &'a Progress,
    /// Read and report only (`up stack plan`).
    pub dry_run: bool,
    account: OnceLock<String>,
    steps: Mutex<Vec<Step>>,
}

impl<'a> Ctx<'a> {
    /// A context for `config`'s `stage`.
    pub fn new(
        clients: &'a Clients,
        config: &'a Config,
        stage: &'a str,
        progress: &'a Progress,
        dry_run: bool,
    ) -> Self {
        Self {
            clients,
            config,
            stage,
            progress,
            dry_run,
            account: OnceLock::new(),
            steps: Mutex::new(Vec::new()),
        }
    }

    /// The tags every resource gets: `up:app`, and `up:stage` on per-stage resources.
    pub fn tags(&self, per_stage: bool) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([(names::TAG_APP.to_owned(), self.config.name.clone())]);
        if per_stage {
            tags.insert(names::TAG_STAGE.to_owned(), self.stage.to_owned());
        }
        tags
    }

    /// Remembers the account id found in `arn` (`arn:aws:<service>:<region>:<account>:...`).
    pub fn learn_account(&self, arn: &str) {
        if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            let _ = self.account.set(account.to_owned());
        }
    }

    /// The account id: from an ARN seen earlier, else STS GetCallerIdentity.
    pub async fn account(&self) -> Result<String, AwsError> {
        if let Some(account) = self.account.get() {
            return Ok(account.clone());
        }
        let out = self
            .clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                self.clients
                    .error("sts:GetCallerIdentity", "your identity", e)
            })?;
        let account = out.account().unwrap_or_default().to_owned();
        let _ = self.account.set(account.clone());
        Ok(account)
    }

    /// Records (and shows) what happened to a resource.
    pub fn record(&self, resource: &str, name: &str, change: Change, detail: &str) {
        let line = if detail.is_empty() || change == Change::Unchanged {
            format!("{resource} {name}: {}", change.verb(self.dry_run))
        } else {
            format!(
                "{resource} {name}: {} ({detail})",
                change.verb(self.dry_run)
            )
        };
        self.progress.done(&line);
        if let Ok(mut steps) = self.steps.lock() {
            steps.push(Step {
                resource: resource.to_owned(),
                name: name.to_owned(),
                change,
                detail: detail.to_owned(),
            });
        }
    }

    /// Everything recorded so far.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// How to deploy.
#[derive(Debug, Clone)]
pub struct Options {
    /// The project directory.
    pub dir: PathBuf,
    /// The stage.
    pub stage: String,
    /// Read and report only (no hooks, no writes).
    pub dry_run: bool,
}

/// The package's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PackageSummary {
    /// Zip size in bytes.
    pub bytes: usize,
    /// Unzipped size in bytes.
    pub unzipped: u64,
    /// Files in the zip.
    pub files: usize,
    /// Base64 SHA-256 (Lambda's CodeSha256).
    pub code_sha256: String,
    /// `direct` or `s3` (`none` when the code was unchanged).
    pub upload: &'static str,
}

/// What `up deploy` did: the `--output json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// App name.
    pub app: String,
    /// Stage.
    pub stage: String,
    /// Function name.
    pub function: String,
    /// Version the stage's alias points at now.
    pub version: String,
    /// Version it pointed at before (when it moved).
    pub previous_version: Option<String>,
    /// Whether a new version was published.
    pub published: bool,
    /// The stage's alias.
    pub alias: String,
    /// The commit alias, when in git.
    pub commit_alias: Option<String>,
    /// The commit deployed, when in git.
    pub commit: Option<String>,
    /// The front door.
    pub front_door: Door,
    /// The stage's URL.
    pub url: String,
    /// The execution role.
    pub role: String,
    /// The zip.
    pub package: PackageSummary,
    /// Warming, when `lambda.warm` is on for the stage.
    pub warm: Option<warmer::Warm>,
    /// Every resource and what happened to it.
    pub steps: Vec<Step>,
    /// AWS requests sent.
    pub api_calls: usize,
    /// Those requests, as `Service.Operation`.
    pub api_operations: Vec<String>,
    /// Time spent on AWS (from the first call, packaging excluded), in ms.
    pub aws_ms: u128,
    /// Total time, in ms.
    pub total_ms: u128,
}

/// The function tag recording a stage's door kind and whether it is warm: `http`,
/// `rest,warm`, ...
fn stage_tag(stage: &str) -> String {
    format!("up:stage:{stage}")
}

fn stage_tag_value(kind: door::Kind, warm: bool) -> String {
    if warm {
        format!("{},warm", kind.name())
    } else {
        kind.name().to_owned()
    }
}

/// The git commit of `dir`, when it is in a git work tree.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(sha)
}

/// The bytes of `up.json` to ship: the project's file, or the app name when there is none.
fn up_json(dir: &Path, config: &Config) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(up_config::FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::to_vec(
            &serde_json::json!({"name": config.name}),
        )?),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Checks that `stage` can name an alias (letters, digits, `-`, `_`; not all digits).
pub fn check_stage(stage: &str) -> anyhow::Result<()> {
    let ok = !stage.is_empty()
        && stage.len() <= 100
        && stage
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !stage.bytes().all(|b| b.is_ascii_digit());
    anyhow::ensure!(
        ok,
        "stage {stage:?}: a stage name is letters, digits, '-' or '_' (not only digits)"
    );
    Ok(())
}

/// Builds the function's environment: `environment`, `UP_STAGE`, `UP_COMMIT`.
pub fn function_environment(
    config: &Config,
    stage: &str,
    commit: Option<&str>,
) -> BTreeMap<String, String> {
    let mut env = config.environment.clone();
    env.insert("UP_STAGE".to_owned(), stage.to_owned());
    if let Some(commit) = commit {
        env.insert("UP_COMMIT".to_owned(), commit.to_owned());
    }
    env
}

fn lambda_arch(arch: Architecture) -> aws_sdk_lambda::types::Architecture {
    match arch {
        Architecture::X86_64 => aws_sdk_lambda::types::Architecture::X8664,
        Architecture::Arm64 => aws_sdk_lambda::types::Architecture::Arm64,
    }
}

/// Deploys `config` (resolved for `options.stage`) from `options.dir`.
pub async fn deploy(
    clients: &Clients,
    config: &Config,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let stage = options.stage.as_str();
    check_stage(stage)?;
    let dir = options.dir.as_path();
    let run_hook = |hook: hooks::Hook| -> anyhow::Result<()> {
        if options.dry_run {
            return Ok(());
        }
        progress.step(&format!("hook {}", hook.name()));
        let ran = hooks::run(hook, &config.hooks, dir, stage)?;
        if ran > 0 {
            progress.done(&format!("hook {}: ok", hook.name()));
        }
        Ok(())
    };

    // Build and package.
    run_hook(hooks::Hook::Prebuild)?;
    run_hook(hooks::Hook::Build)?;
    run_hook(hooks::Hook::Postbuild)?;
    let search = artifact::Search::from_env();
    let arch = config.lambda.architecture;
    progress.step("packaging");
    let packaged = (|| -> anyhow::Result<(package::Package, Option<package::Package>)> {
        let bootstrap = artifact::find(&search, artifact::Binary::Bootstrap, arch, &|m| {
            progress.done(m)
        })?;
        let app = package::app(dir, &bootstrap, up_json(dir, config)?)?;
        let warmer = if config.lambda.warm {
            let binary = artifact::find(
                &search,
                artifact::Binary::Warmer,
                Architecture::X86_64,
                &|m| progress.done(m),
            )?;
            Some(package::single_binary(&binary)?)
        } else {
            None
        };
        Ok((app, warmer))
    })();
    if !options.dry_run {
        // `clean` runs after packaging whether or not it worked.
        run_hook(hooks::Hook::Clean)?;
    }
    let (package, warmer_zip) = packaged?;
    progress.done(&format!(
        "package: {} files, {:.1} MB zipped, {:.1} MB unzipped",
        package.files,
        package.zip.len() as f64 / 1e6,
        package.unzipped as f64 / 1e6
    ));
    run_hook(hooks::Hook::Predeploy)?;

    let aws_started = Instant::now();
    let calls_before = clients.calls.count();
    let ctx = Ctx::new(clients, config, stage, progress, options.dry_run);
    let commit = git_commit(dir);

    // Role.
    let role_name = names::role(config);
    let (role_arn, role_is_new) = match &config.lambda.role {
        Some(arn) => (arn.clone(), false),
        None => {
            progress.step(&format!("role {role_name}"));
            let spec = iam::RoleSpec {
                name: role_name.clone(),
                trust: iam::trust("lambda.amazonaws.com"),
                policy: iam::function_policy(&config.lambda.policy),
                tags: ctx.tags(false),
            };
            let (arn, change) = iam::ensure(&ctx, &spec).await?;
            ctx.record("role", &role_name, change, "");
            (arn, change == Change::Created)
        }
    };
    ctx.learn_account(&role_arn);

    // Function and version.
    let name = names::function_name(config);
    let alias_name = names::alias(stage);
    let spec = function::Spec {
        name: name.clone(),
        role: role_arn.clone(),
        memory: i32::try_from(config.lambda.memory.get()).unwrap_or(i32::MAX),
        timeout: i32::try_from(config.lambda.timeout.get().as_secs()).unwrap_or(900),
        environment: function_environment(config, stage, commit.as_deref()),
        architecture: lambda_arch(arch),
        layers: config.lambda.layers.clone(),
        description: config.description.clone().unwrap_or_default(),
        tags: ctx.tags(false),
        reserved_concurrency: config
            .lambda
            .reserved_concurrency
            .map(|c| i32::try_from(c).unwrap_or(i32::MAX)),
    };
    progress.step(&format!("function {name}"));
    let now = function::current(&ctx, &spec, &package.code_sha256, Some(&alias_name)).await?;
    if let Some(arn) = &now.function_arn {
        ctx.learn_account(arn);
    }
    let (code, upload) = if now.up_to_date {
        (function::Code::Zip(&package), "none")
    } else if package.zip.len() > function::DIRECT_UPLOAD_LIMIT {
        let (bucket, key) = upload::to_s3(&ctx, &package).await?;
        (function::Code::S3(bucket, key, &package), "s3")
    } else {
        (function::Code::Zip(&package), "direct")
    };
    let deployed = function::ensure(&ctx, &spec, &code, &now, true, role_is_new).await?;
    ctx.learn_account(&deployed.function_arn);
    let detail = match (deployed.published, deployed.detail.is_empty()) {
        (true, true) => format!("version {}", deployed.version),
        (true, false) => format!("{}; version {}", deployed.detail, deployed.version),
        (false, _) => deployed.detail.clone(),
    };
    ctx.record("function", &name, deployed.change, &detail);

    // Alias.
    let alias_change = alias::point(
        &ctx,
        &name,
        &alias_name,
        &deployed.version,
        now.alias_version.as_deref(),
    )
    .await?;
    ctx.record(
        "alias",
        &format!("{name}:{alias_name}"),
        alias_change,
        &format!("version {}", deployed.version),
    );
    let commit_alias = commit.as_deref().map(names::commit_alias);
    if let Some(commit_alias) = &commit_alias
        && deployed.published
    {
        let change = alias::commit(&ctx, &name, commit_alias, &deployed.version).await?;
        ctx.record("alias", &format!("{name}:{commit_alias}"), change, "");
    }
    let alias_arn = format!("{}:{alias_name}", deployed.function_arn);

    // Front door: first remove the stage's old kind of door, if it changed.
    let kind = door::Kind::of(config);
    let old = now
        .tags
        .get(&stage_tag(stage))
        .and_then(|v| v.split(',').next())
        .and_then(door::Kind::parse);
    if let Some(old) = old
        && old != kind
        && door::remove(&ctx, old, &name, stage).await?
    {
        let old_name = match old {
            door::Kind::Url => format!("{name}:{alias_name}"),
            _ => names::api(config, stage),
        };
        ctx.record(old.resource(), &old_name, Change::Deleted, "");
    }
    progress.step(&format!("{} front door", kind.name()));
    let target = door::Target {
        function: name.clone(),
        stage: stage.to_owned(),
        alias_arn: alias_arn.clone(),
        account: ctx.account().await?,
        alias_is_new: alias_change == Change::Created,
    };
    let front = door::ensure(&ctx, kind, &target).await?;
    let door_name = match kind {
        door::Kind::Url => format!("{name}:{alias_name}"),
        _ => names::api(config, stage),
    };
    ctx.record(kind.resource(), &door_name, front.change, &front.url);

    // Warmer.
    let was_warm = now
        .tags
        .get(&stage_tag(stage))
        .is_some_and(|v| v.split(',').any(|p| p == "warm"));
    let mut warm = match &warmer_zip {
        Some(zip) => {
            progress.step("warmer");
            Some(warmer::ensure(&ctx, &name, &deployed.function_arn, zip).await?)
        }
        None => {
            if was_warm && warmer::remove_rule(&ctx, stage).await? {
                ctx.record(
                    "rule",
                    &names::warm_rule(config, stage),
                    Change::Deleted,
                    "",
                );
            }
            None
        }
    };
    // The stage's door kind and warmth, for the next deploy.
    let mut want_tags = BTreeMap::new();
    want_tags.insert(stage_tag(stage), stage_tag_value(kind, config.lambda.warm));
    function::tag(&ctx, &deployed.function_arn, &want_tags, &now.tags).await?;
    if warm.is_none() && was_warm && !options.dry_run {
        remove_unused_warmer(&ctx, &name, stage).await?;
    }

    // Prewarm right after the alias moved.
    if let Some(w) = warm.as_mut()
        && alias_change != Change::Unchanged
        && !options.dry_run
    {
        progress.step("prewarming");
        match warmer::prewarm(&ctx, &w.function, &w.input).await {
            Ok(report) => {
                progress.done(&format!("prewarm: {}", warmer::describe(&report)));
                w.prewarm = Some(report);
            }
            Err(why) => {
                progress.warn(&format!("prewarm failed: {why}"));
                w.prewarm_error = Some(why);
            }
        }
    }
    let aws_ms = aws_started.elapsed().as_millis();
    run_hook(hooks::Hook::Postdeploy)?;

    let operations = clients.calls.operations();
    let operations = operations.get(calls_before..).unwrap_or_default().to_vec();
    Ok(Summary {
        app: config.name.clone(),
        stage: stage.to_owned(),
        function: name,
        version: deployed.version,
        previous_version: now
            .alias_version
            .filter(|_| alias_change != Change::Unchanged),
        published: deployed.published,
        alias: alias_name,
        commit_alias: commit_alias.filter(|_| deployed.published),
        commit,
        url: front.url.clone(),
        front_door: front,
        role: role_arn,
        package: PackageSummary {
            bytes: package.zip.len(),
            unzipped: package.unzipped,
            files: package.files,
            code_sha256: package.code_sha256.clone(),
            upload,
        },
        warm,
        steps: ctx.steps(),
        api_calls: operations.len(),
        api_operations: operations,
        aws_ms,
        total_ms: started.elapsed().as_millis(),
    })
}

/// After `stage` stopped being warm: when no stage is warm any more, deletes the warmer
/// function and its role.
async fn remove_unused_warmer(ctx: &Ctx<'_>, function: &str, stage: &str) -> anyhow::Result<()> {
    let tags = ctx
        .clients
        .lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .map_err(|e| ctx.clients.error("lambda:GetFunction", function, e))?
        .tags()
        .cloned()
        .unwrap_or_default();
    let other_warm = tags.iter().any(|(k, v)| {
        k.starts_with("up:stage:") && *k != stage_tag(stage) && v.split(',').any(|p| p == "warm")
    });
    if other_warm {
        return Ok(());
    }
    let warmer = names::warmer_function(ctx.config);
    if stack::delete_function(ctx, &warmer).await? {
        ctx.record("function", &warmer, Change::Deleted, "");
    }
    if iam::delete(ctx, &names::warmer_role(ctx.config), &ctx.config.name).await? {
        ctx.record("role", &names::warmer_role(ctx.config), Change::Deleted, "");
    }
    let group = names::warmer_log_group(ctx.config);
    if stack::delete_log_group(ctx, &group).await? {
        ctx.record("log-group", &group, Change::Deleted, "");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_must_be_alias_names() {
        assert!(check_stage("staging").is_ok());
        assert!(check_stage("pr-12_b").is_ok());
        assert!(check_stage("12").is_err());
        assert!(check_stage("a b").is_err());
        assert!(check_stage("").is_err());
    }

    #[test]
    fn environment_adds_stage_and_commit() {
        let config = Config {
            environment: [("A".to_owned(), "1".to_owned())].into(),
            ..Config::default()
        };
        let env = function_environment(&config, "production", Some("abc123"));
        assert_eq!(env["A"], "1");
        assert_eq!(env["UP_STAGE"], "production");
        assert_eq!(env["UP_COMMIT"], "abc123");
        assert!(!function_environment(&config, "staging", None).contains_key("UP_COMMIT"));
    }

    #[test]
    fn stage_tag_records_kind_and_warmth() {
        assert_eq!(stage_tag_value(door::Kind::Rest, true), "rest,warm");
        assert_eq!(stage_tag_value(door::Kind::Http, false), "http");
    }
}
