//! Deterministic names of every AWS resource `up` creates for an app.
//!
//! `up deploy` creates, `up stack plan` diffs and `up stack delete` removes resources by these
//! names (and the `up:app` / `up:stage` tags), so they are the single source of truth: change a
//! name here and every command follows.

use up_config::Config;

/// The tag naming the app on every resource.
pub const TAG_APP: &str = "up:app";
/// The tag naming the stage on every per-stage resource.
pub const TAG_STAGE: &str = "up:stage";

/// The app's Lambda function: `<name>`.
pub fn function_name(config: &Config) -> String {
    config.name.clone()
}

/// The alias a stage's front door invokes: the stage's name.
pub fn alias(stage: &str) -> String {
    stage.to_owned()
}

/// The alias that remembers the version deployed from a git commit: `commit-<sha>` (the short
/// sha, 12 hex digits).
pub fn commit_alias(sha: &str) -> String {
    let short: String = sha.chars().take(12).collect();
    format!("commit-{short}")
}

/// The function's CloudWatch Logs group: `/aws/lambda/<name>`.
pub fn log_group(config: &Config) -> String {
    format!("/aws/lambda/{}", function_name(config))
}

/// The function's IAM role: `<name>-function`.
pub fn role(config: &Config) -> String {
    format!("{}-function", config.name)
}

/// The inline policy on the function's role.
pub const ROLE_POLICY: &str = "up";

/// The warmer function: `<name>-warmer`.
pub fn warmer_function(config: &Config) -> String {
    format!("{}-warmer", config.name)
}

/// The warmer function's IAM role: `<name>-warmer`.
pub fn warmer_role(config: &Config) -> String {
    format!("{}-warmer", config.name)
}

/// The warmer's log group: `/aws/lambda/<name>-warmer`.
pub fn warmer_log_group(config: &Config) -> String {
    format!("/aws/lambda/{}", warmer_function(config))
}

/// A stage's scheduled warm-up rule: `<name>-warm-<stage>`.
pub fn warm_rule(config: &Config, stage: &str) -> String {
    format!("{}-warm-{stage}", config.name)
}

/// The id of the warmer target on a stage's rule.
pub const WARM_TARGET_ID: &str = "up-warmer";

/// A stage's API (HTTP or REST): `<name>-<stage>`.
pub fn api(config: &Config, stage: &str) -> String {
    format!("{}-{stage}", config.name)
}

/// The statement id of the permission that lets a stage's front door invoke the alias.
pub fn invoke_statement(stage: &str) -> String {
    format!("up-{stage}-invoke")
}

/// The statement id of the permission that lets anyone call a stage's Function URL.
pub fn url_statement(stage: &str) -> String {
    format!("up-{stage}-url")
}

/// The statement id of the permission that lets a stage's Function URL invoke the alias
/// (`lambda:InvokeFunction` with `lambda:InvokedViaFunctionUrl`).
pub fn url_invoke_statement(stage: &str) -> String {
    format!("up-{stage}-url-invoke")
}

/// The statement id of the permission that lets a stage's warm rule invoke the warmer.
pub fn warm_statement(stage: &str) -> String {
    format!("up-{stage}-warm")
}

/// The S3 bucket for zips over Lambda's direct upload limit:
/// `up-<account>-<region>` (one per account and region, shared by every app; lower case as S3
/// requires). The key is `<name>/<sha256>.zip`.
pub fn bucket(account: &str, region: &str) -> String {
    format!("up-{account}-{region}").to_ascii_lowercase()
}

/// The key of a zip in [`bucket`].
pub fn bucket_key(config: &Config, sha256_hex: &str) -> String {
    format!("{}/{sha256_hex}.zip", config.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> Config {
        Config {
            name: name.into(),
            ..Config::default()
        }
    }

    #[test]
    fn names_are_derived_from_the_app_name() {
        let c = config("shop");
        assert_eq!(function_name(&c), "shop");
        assert_eq!(alias("staging"), "staging");
        assert_eq!(log_group(&c), "/aws/lambda/shop");
        assert_eq!(role(&c), "shop-function");
        assert_eq!(warmer_function(&c), "shop-warmer");
        assert_eq!(warm_rule(&c, "production"), "shop-warm-production");
        assert_eq!(api(&c, "staging"), "shop-staging");
        assert_eq!(commit_alias("0123456789abcdef0123"), "commit-0123456789ab");
        assert_eq!(
            bucket("000000000000", "us-east-1"),
            "up-000000000000-us-east-1"
        );
    }
}
