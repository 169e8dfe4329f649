//! `up logs` end to end on ministack: the real bootstrap and the real Python example app
//! deployed as a function behind an HTTP API, requests sent through it, then the real `up`
//! binary reading CloudWatch Logs (`FilterLogEvents`) with `AWS_ENDPOINT_URL` pointing at
//! ministack. Also the errors a user meets first, each one line.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use up_tests::harness::task_root;
use up_tests::ministack::{Ministack, Source, closed_endpoint, http_request, package_zip};
use up_tests::paths;

const FUNCTION: &str = "up-cli-logs";
/// Bound for log lines to show up (ministack flushes a function's output per invocation).
const LOG_BOUND: Duration = Duration::from_secs(60);

/// The `up` command with a clean AWS environment: test credentials, `region` (unless
/// `None`), `endpoint` as `AWS_ENDPOINT_URL`, no profile files, no instance metadata.
fn up_command(dir: &Path, region: Option<&str>, endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_up"));
    aws_env(&mut command, dir, region, endpoint);
    command.arg("-C").arg(dir);
    command
}

/// Sets the clean AWS environment of [`up_command`] on `command`.
fn aws_env(command: &mut Command, dir: &Path, region: Option<&str>, endpoint: &str) {
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
        .env("AWS_ENDPOINT_URL", endpoint);
    if let Some(region) = region {
        command.env("AWS_REGION", region);
    }
}

/// Runs `up -C dir <args>` with a pseudo-terminal as stdout (`script` from util-linux) and
/// returns what it printed.
fn up_on_terminal(dir: &Path, endpoint: &str, args: &[&str]) -> String {
    let script = Path::new("/usr/bin/script");
    assert!(
        script.is_file(),
        "`script` (util-linux) is needed to give `up logs` a terminal: apt-get install util-linux"
    );
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = vec![
        quote(env!("CARGO_BIN_EXE_up")),
        "-C".into(),
        quote(&dir.display().to_string()),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let mut command = Command::new(script);
    aws_env(&mut command, dir, Some("us-east-1"), endpoint);
    let out = command
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

fn up(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    up_command(dir, Some("us-east-1"), endpoint)
        .args(args)
        .output()
        .unwrap()
}

fn stdout_lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Deploys the real bootstrap with python-echo as `name` (alias `staging`) behind an HTTP
/// API; returns the project directory (its up.json names the function) and the API's base URL.
async fn deploy_echo(ministack: &Ministack, name: &str) -> (tempfile::TempDir, String) {
    let dir = task_root(
        "python-echo",
        &json!({"name": name, "proxy": {"command": "python3 app.py"}}),
    );
    let bootstrap = paths::bootstrap_path();
    let zip = package_zip(&[
        ("bootstrap", Source::Path(&bootstrap), true),
        ("app.py", Source::Path(&dir.path().join("app.py")), false),
        ("up.json", Source::Path(&dir.path().join("up.json")), false),
    ])
    .unwrap();
    ministack
        .deploy_function(name, zip, &[("UP_STAGE", "staging")])
        .await
        .unwrap();
    let alias = ministack.publish_alias(name, "staging").await.unwrap();
    let base = ministack.http_api(&alias, None).await.unwrap();
    (dir, base)
}

async fn get(url: &str) -> u16 {
    http_request("GET", url, &[], Vec::new())
        .await
        .unwrap()
        .status
        .as_u16()
}

fn is_request(line: &Value, path: &str) -> bool {
    line["msg"] == "request" && line["path"] == path
}

#[tokio::test(flavor = "multi_thread")]
async fn shows_the_apps_output_and_filters_by_field_and_text() {
    let ministack = Ministack::start().await;
    let endpoint = ministack.endpoint().to_owned();
    let (dir, base) = deploy_echo(&ministack, FUNCTION).await;
    let dir = dir.path();

    // ministack writes a function's output to CloudWatch when an invocation ends, and output
    // written after a response lands with the next invocation: keep invoking until `up logs`
    // shows everything `/log` printed.
    assert_eq!(get(&format!("{base}/log")).await, 200);
    let deadline = Instant::now() + LOG_BOUND;
    let lines = loop {
        assert_eq!(get(&format!("{base}/status/503")).await, 503);
        let lines = stdout_lines(&up(dir, &endpoint, &["logs"]));
        let text = lines.join("\n");
        if text.contains("json line from app")
            && text.contains("plain line from app")
            && text.contains("error line from app")
        {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "the app's output did not appear within {LOG_BOUND:?}; up logs printed:\n{text}"
        );
    };

    // Piped: each message exactly as CloudWatch holds it, the bootstrap's JSON lines, without
    // Lambda's START/END/REPORT lines.
    let raw: HashSet<String> = ministack
        .function_logs(FUNCTION)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for line in &lines {
        assert!(raw.contains(line), "not a message CloudWatch holds: {line}");
    }
    let entries = json_lines(&lines);
    let app_json = entries
        .iter()
        .find(|e| e["msg"] == "json line from app")
        .unwrap();
    assert_eq!(app_json["level"], "warn");
    assert_eq!(app_json["user"], "alice");
    assert_eq!(app_json["source"], "app");
    assert!(
        entries
            .iter()
            .any(|e| is_request(e, "/log") && e["status"] == 200)
    );
    let all = stdout_lines(&up(dir, &endpoint, &["logs", "--all"]));
    assert!(all.iter().any(|l| l.starts_with("START RequestId:")));
    assert!(all.len() > lines.len());

    // Field filters select the right lines: the shell drops the quotes of level = "warn".
    let warn = json_lines(&stdout_lines(&up(
        dir,
        &endpoint,
        &["logs", "level", "=", "warn"],
    )));
    assert!(warn.iter().all(|e| e["level"] == "warn"), "{warn:?}");
    assert!(warn.iter().any(|e| e["msg"] == "json line from app"));
    let failed = json_lines(&stdout_lines(&up(
        dir,
        &endpoint,
        &["logs", "status >= 500"],
    )));
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|e| e["status"].as_u64() >= Some(500)),
        "{failed:?}"
    );
    assert!(failed.iter().any(|e| is_request(e, "/status/503")));
    let both = json_lines(&stdout_lines(&up(
        dir,
        &endpoint,
        &["logs", r#"path = "/log" && status = 200"#],
    )));
    assert!(
        !both.is_empty() && both.iter().all(|e| is_request(e, "/log")),
        "{both:?}"
    );
    // Plain text: the phrase, case as written.
    let text = stdout_lines(&up(dir, &endpoint, &["logs", "plain", "line", "from"]));
    assert!(!text.is_empty());
    assert!(
        text.iter().all(|l| l.contains("plain line from")),
        "{text:?}"
    );
    let none = stdout_lines(&up(dir, &endpoint, &["logs", "PLAIN LINE"]));
    assert!(none.is_empty(), "{none:?}");

    // On a terminal: one readable line per event, no JSON.
    let shown = up_on_terminal(dir, &endpoint, &["logs"]);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("WARN  json line from app user=alice")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains("INFO  request method=GET path=/log status=200")),
        "{shown}"
    );
    assert!(!shown.lines().any(|l| l.starts_with('{')), "{shown}");

    // A function that never logged: one clear line.
    let other = task_root("python-echo", &json!({"name": "never-deployed"}));
    let out = up(other.path(), &endpoint, &["logs"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no logs yet") && stderr.contains("/aws/lambda/never-deployed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_prints_new_events_once_each() {
    let ministack = Ministack::start().await;
    let endpoint = ministack.endpoint().to_owned();
    let (dir, base) = deploy_echo(&ministack, "up-cli-follow").await;

    let mut child = up_command(dir.path(), Some("us-east-1"), &endpoint)
        .args(["logs", "-f", "--since", "5m", "msg = request"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // Each round invokes twice (the second flushes the first's output) and waits for the
    // first's request line; several polls pass meanwhile, each re-reading the last 30 s.
    let mut seen: Vec<Value> = Vec::new();
    for round in 0..3 {
        let path = format!("/follow-{round}");
        assert_eq!(get(&format!("{base}{path}")).await, 200);
        let deadline = Instant::now() + LOG_BOUND;
        while !seen.iter().any(|e| is_request(e, &path)) {
            assert_eq!(get(&format!("{base}/flush")).await, 200);
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_secs(5))) {
                Ok(line) => seen.push(serde_json::from_str(&line).unwrap()),
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(e) => panic!("no request line for {path} ({e}); seen: {seen:?}"),
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for round in 0..3 {
        let path = format!("/follow-{round}");
        let count = seen.iter().filter(|e| is_request(e, &path)).count();
        assert_eq!(count, 1, "{path} printed {count} times: {seen:?}");
    }
    assert!(seen.iter().all(|e| e["msg"] == "request"), "{seen:?}");
}

/// Runs `up logs` expecting one error line; returns it.
fn logs_error(dir: &Path, region: Option<&str>, endpoint: &str, args: &[&str]) -> String {
    let out = up_command(dir, region, endpoint)
        .arg("logs")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("up: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn errors_are_one_line_saying_what_to_do() {
    let dir = task_root("python-echo", &json!({"name": "up-cli-errors"}));
    let dir = dir.path();
    let endpoint = closed_endpoint();

    let line = logs_error(dir, None, &endpoint, &[]);
    assert!(
        line.contains("no AWS region") && line.contains("AWS_REGION"),
        "{line}"
    );

    let line = logs_error(dir, Some("us-east-1"), &endpoint, &[]);
    assert!(line.contains(&format!("cannot reach {endpoint}")), "{line}");
    assert!(line.contains("AWS_ENDPOINT_URL"), "{line}");

    let line = logs_error(dir, Some("us-east-1"), &endpoint, &["level", ">", "error"]);
    assert!(
        line.contains("bad query") && line.contains("= or !="),
        "{line}"
    );

    std::fs::write(
        dir.join("up.json"),
        r#"{"name": "x", "lambda": {"memory": 5}}"#,
    )
    .unwrap();
    let line = logs_error(dir, Some("us-east-1"), &endpoint, &[]);
    assert!(
        line.contains("up.json") && line.contains("lambda.memory"),
        "{line}"
    );
}
