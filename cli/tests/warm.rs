//! `up warm` end to end on ministack: the real bootstrap and the real Python example app
//! deployed with an alias `staging`, then the real `up` binary warming it with `AWS_ENDPOINT_URL`
//! pointing at ministack. Also the errors a user meets first, each one line.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use up_tests::harness::task_root;
use up_tests::ministack::{Ministack, Source, closed_endpoint, package_zip};
use up_tests::paths;

const FUNCTION: &str = "up-cli-warm";

/// `up -C dir warm <args>` with test credentials, `region` (unless `None`), `endpoint` as
/// `AWS_ENDPOINT_URL`, no profile files and no instance metadata.
fn up_warm(dir: &Path, region: Option<&str>, endpoint: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_up"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", endpoint)
        .arg("-C")
        .arg(dir)
        .arg("warm")
        .args(args);
    if let Some(region) = region {
        command.env("AWS_REGION", region);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one line of `up warm`'s text report, e.g.
/// `warmed 4/4: 4 distinct instances, 4 cold, 0 throttled, 0 errors in 312 ms`, without the
/// duration.
fn summary(out: &Output) -> String {
    assert!(
        out.status.success(),
        "up warm failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let line = stdout.trim_end();
    let (head, duration) = line.rsplit_once(" in ").unwrap();
    assert!(duration.ends_with(" ms"), "{line}");
    head.to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn warms_n_distinct_instances_of_the_stage() {
    let ministack = Ministack::start().await;
    let endpoint = ministack.endpoint().to_owned();
    let dir = task_root(
        "python-echo",
        &json!({"name": FUNCTION, "proxy": {"command": "python3 app.py"}, "lambda": {"warm_count": 2}}),
    );
    let dir = dir.path();
    let bootstrap = paths::bootstrap_path();
    let zip = package_zip(&[
        ("bootstrap", Source::Path(&bootstrap), true),
        ("app.py", Source::Path(&dir.join("app.py")), false),
        ("up.json", Source::Path(&dir.join("up.json")), false),
    ])
    .unwrap();
    ministack
        .deploy_function(FUNCTION, zip, &[("UP_STAGE", "staging")])
        .await
        .unwrap();
    ministack.publish_alias(FUNCTION, "staging").await.unwrap();

    // Four pings at once land on four new execution environments.
    let out = up_warm(dir, Some("us-east-1"), &endpoint, &["-n", "4"]);
    eprintln!("first run: {}", text(&out.stdout).trim_end());
    assert_eq!(
        summary(&out),
        "warmed 4/4: 4 distinct instances, 4 cold, 0 throttled, 0 errors"
    );

    // Again, as JSON: the same four environments answer, now warm.
    let out = up_warm(
        dir,
        Some("us-east-1"),
        &endpoint,
        &["staging", "-n", "4", "--output", "json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["function"], FUNCTION);
    assert_eq!(report["qualifier"], "staging");
    assert_eq!(report["requested"], 4);
    assert_eq!(report["answered"], 4);
    assert_eq!(report["cold"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let instances = report["instances"].as_array().unwrap();
    assert!(!instances.is_empty() && instances.len() <= 4, "{report}");

    // Without -n: lambda.warm_count from up.json.
    let out = up_warm(dir, Some("us-east-1"), &endpoint, &[]);
    assert!(
        summary(&out).starts_with("warmed 2/2: "),
        "{}",
        text(&out.stdout)
    );

    // An app that cannot start: nothing answers, one line says why, non-zero exit.
    let broken = task_root(
        "python-echo",
        &json!({"name": "up-cli-warm-broken", "proxy": {"command": "python3 app.py"}}),
    );
    let zip = package_zip(&[
        ("bootstrap", Source::Path(&bootstrap), true),
        ("app.py", Source::Path(&broken.path().join("app.py")), false),
        (
            "up.json",
            Source::Path(&broken.path().join("up.json")),
            false,
        ),
    ])
    .unwrap();
    ministack
        .deploy_function("up-cli-warm-broken", zip, &[("ECHO_FAIL_START", "1")])
        .await
        .unwrap();
    ministack
        .publish_alias("up-cli-warm-broken", "staging")
        .await
        .unwrap();
    let out = up_warm(broken.path(), Some("us-east-1"), &endpoint, &["-n", "2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("warmed 0/2: 0 distinct instances"),
        "{}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("up: no instance of up-cli-warm-broken:staging answered"),
        "{stderr}"
    );

    // A stage that was never deployed: one line naming the fix.
    let out = up_warm(dir, Some("us-east-1"), &endpoint, &["production"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("up deploy production"), "{stderr}");
}

/// Runs `up warm` expecting one error line; returns it.
fn warm_error(dir: &Path, region: Option<&str>, endpoint: &str, args: &[&str]) -> String {
    let out = up_warm(dir, region, endpoint, args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("up: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    stderr
}

#[test]
fn errors_are_one_line_saying_what_to_do() {
    let dir = task_root("python-echo", &json!({"name": "up-cli-warm-errors"}));
    let dir = dir.path();
    let endpoint = closed_endpoint();

    let line = warm_error(dir, None, &endpoint, &[]);
    assert!(
        line.contains("no AWS region") && line.contains("AWS_REGION"),
        "{line}"
    );

    let line = warm_error(dir, Some("us-east-1"), &endpoint, &[]);
    assert!(line.contains(&format!("cannot reach {endpoint}")), "{line}");
    assert!(line.contains("AWS_ENDPOINT_URL"), "{line}");

    let line = warm_error(dir, Some("us-east-1"), &endpoint, &["nosuchstage"]);
    assert!(
        line.contains("unknown stage") && line.contains("nosuchstage"),
        "{line}"
    );

    std::fs::write(dir.join("up.json"), r#"{"name": "x", "lamda": {}}"#).unwrap();
    let line = warm_error(dir, Some("us-east-1"), &endpoint, &[]);
    assert!(line.contains("up.json") && line.contains("lamda"), "{line}");

    // -n is bounded like lambda.warm_count.
    let out = up_warm(dir, Some("us-east-1"), &endpoint, &["-n", "0"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error: {out:?}");
}
