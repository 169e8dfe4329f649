//! The real `warmer` function warming the real bootstrap + `examples/python-echo`, both
//! deployed to ministack as `provided.al2023` functions; the warmer reaches ministack through
//! `AWS_ENDPOINT_URL` as it would reach AWS.
//!
//! Needs the musl `bootstrap` and `warmer` and the `.venv` with ministack (`scripts/test`
//! provides all three); it fails, never skips, when one is missing.
//!
//! ```text
//! cargo build --release -p up-proxy --target x86_64-unknown-linux-musl
//! CC_x86_64_unknown_linux_musl=gcc cargo build --release -p up-warmer --target x86_64-unknown-linux-musl
//! cargo test -p up-warmer --test ministack_warmer -- --nocapture
//! ```

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use serde_json::{Value, json};
use up_tests::ministack::{Ministack, http_request};

const TARGET: &str = "up-python-echo";
const STAGE: &str = "staging";
const WARMER: &str = "up-warmer";
/// Each environment holds its reply this long, so that pings sent together stay on distinct
/// environments even on a loaded machine (the bootstrap caps it at 1 s).
const HOLD_MS: u64 = 250;
/// Bound for log lines to reach ministack's CloudWatch Logs.
const LOG_BOUND: Duration = Duration::from_secs(20);
/// Bound for a `rate(1 minute)` rule's first run: ministack fires it 60–70 s after creation.
const SCHEDULE_BOUND: Duration = Duration::from_secs(150);
const POLL: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warmer_keeps_six_distinct_environments_warm_without_the_app_seeing_a_request() {
    support::warmer_binary();
    let ministack = Ministack::start().await;
    support::deploy_echo(&ministack, TARGET, STAGE).await;
    support::deploy_warmer(&ministack, WARMER).await;
    let event = json!({"targets": [{
        "function": TARGET, "qualifier": STAGE, "concurrency": 6, "hold_ms": HOLD_MS,
        "app": "python-echo", "stage": STAGE
    }]});

    // First run: six pings at once start six environments.
    let first = invoke_warmer(&ministack, &event).await;
    let expect = |report: &Value, cold: u64| {
        let context = format!("{report:#}");
        assert_eq!(report["function"], TARGET, "{context}");
        assert_eq!(report["qualifier"], STAGE, "{context}");
        assert_eq!(report["requested"], 6, "{context}");
        assert_eq!(report["answered"], 6, "{context}");
        assert_eq!(report["distinct"], 6, "six distinct instances: {context}");
        assert_eq!(report["cold"], cold, "{context}");
        assert_eq!(report["throttled"], 0, "{context}");
        assert_eq!(report["errors"], 0, "{context}");
        assert_eq!(
            report["instances"].as_array().unwrap().len(),
            6,
            "{context}"
        );
    };
    eprintln!("first run: {first}");
    expect(&first, 6);

    // Second run: the same six environments, all warm now.
    let second = invoke_warmer(&ministack, &event).await;
    eprintln!("second run: {second}");
    expect(&second, 0);
    assert_eq!(
        instances(&first),
        instances(&second),
        "the second run reached the environments the first one started"
    );
    assert_ne!(first["run"], second["run"]);

    // What a user reads in the warmer's log group: one summary and one EMF line per run.
    let logs = wait_for_lines(&ministack, WARMER, |lines| {
        lines.iter().filter(|l| l["msg"] == "warm run").count() >= 2
            && lines.iter().filter(|l| l.get("_aws").is_some()).count() >= 2
    })
    .await;
    let summaries: Vec<&Value> = logs.iter().filter(|l| l["msg"] == "warm run").collect();
    assert_eq!(summaries.len(), 2, "{summaries:#?}");
    for (summary, report) in summaries.iter().zip([&first, &second]) {
        assert_eq!(summary["run"], report["run"], "{summary:#}");
        assert_eq!(summary["distinct"], 6, "{summary:#}");
        assert_eq!(summary["app"], "python-echo", "{summary:#}");
        assert_eq!(summary["stage"], STAGE, "{summary:#}");
    }
    let emf: Vec<&Value> = logs.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 2, "{emf:#?}");
    for (doc, cold) in emf.iter().zip([6, 0]) {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "up", "{doc:#}");
        assert_eq!(
            directive["Dimensions"],
            json!([["app", "stage"]]),
            "{doc:#}"
        );
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["WarmInstances", "ColdInstances", "WarmErrors"]);
        assert!(doc["_aws"]["Timestamp"].as_u64().is_some(), "{doc:#}");
        assert_eq!(doc["app"], "python-echo", "{doc:#}");
        assert_eq!(doc["stage"], STAGE, "{doc:#}");
        assert_eq!(doc["WarmInstances"], 6, "{doc:#}");
        assert_eq!(doc["ColdInstances"], cold, "{doc:#}");
        assert_eq!(doc["WarmErrors"], 0, "{doc:#}");
    }

    // The app saw no request: after the twelve pings, one real request through a Function URL
    // on the alias is the only request in the app's access lines (it also proves those lines
    // reach the logs, so their absence means something).
    let url = ministack.function_url(TARGET, Some(STAGE)).await.unwrap();
    let control = format!("{url}/after-warm");
    let mut sent = 0;
    let mut last_sent: Option<Instant> = None;
    let deadline = Instant::now() + LOG_BOUND;
    let requests = loop {
        // A line printed after ministack collected an invocation's output is reported with
        // the next invocation: send the control request again until its line shows.
        if last_sent.is_none_or(|at| at.elapsed() > Duration::from_secs(2)) {
            let response = http_request("GET", &control, &[], "").await.unwrap();
            assert_eq!(response.status, 200, "{}", response.text());
            sent += 1;
            last_sent = Some(Instant::now());
        }
        let requests = app_requests(&ministack.function_logs(TARGET).await.unwrap());
        if !requests.is_empty() {
            break requests;
        }
        assert!(
            Instant::now() < deadline,
            "the app's access line for {control} never reached the logs"
        );
        tokio::time::sleep(POLL).await;
    };
    assert!(
        requests
            .iter()
            .all(|r| r == "python-echo GET /after-warm 200"),
        "the app saw only the control request(s), never a ping: {requests:#?}"
    );
    assert!(requests.len() <= sent, "{requests:#?}");
}

/// One minute of real schedule: a `rate(1 minute)` CloudWatch Events rule with the constant
/// input invokes the warmer, which warms the alias. Takes 60–70 s on ministack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_rule_runs_the_warmer_with_its_constant_input() {
    use aws_sdk_cloudwatchevents::types::{RuleState, Target};

    support::warmer_binary();
    let ministack = Ministack::start().await;
    support::deploy_echo(&ministack, TARGET, STAGE).await;
    let warmer_arn = support::deploy_warmer(&ministack, WARMER).await;
    let input = json!({"targets": [{
        "function": TARGET, "qualifier": STAGE, "concurrency": 2, "hold_ms": HOLD_MS,
        "app": "python-echo", "stage": STAGE
    }]});

    let events = aws_sdk_cloudwatchevents::Client::new(&ministack.sdk_config());
    events
        .put_rule()
        .name("up-python-echo-staging-warm")
        .schedule_expression("rate(1 minute)")
        .state(RuleState::Enabled)
        .send()
        .await
        .unwrap();
    let put = events
        .put_targets()
        .rule("up-python-echo-staging-warm")
        .targets(
            Target::builder()
                .id("warmer")
                .arn(&warmer_arn)
                .input(input.to_string())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_entry_count(), 0, "{put:?}");

    // Nobody else invokes the warmer: a summary in its logs is the scheduled run.
    let deadline = Instant::now() + SCHEDULE_BOUND;
    let summary = loop {
        let lines = json_lines(&ministack.function_logs(WARMER).await.unwrap());
        if let Some(summary) = lines.into_iter().find(|l| l["msg"] == "warm run") {
            break summary;
        }
        assert!(
            Instant::now() < deadline,
            "the rule did not run the warmer within {SCHEDULE_BOUND:?}; ministack log {}",
            ministack.log_path().display()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    eprintln!("scheduled run: {summary}");
    assert_eq!(summary["function"], TARGET, "{summary:#}");
    assert_eq!(summary["qualifier"], STAGE, "{summary:#}");
    assert_eq!(summary["requested"], 2, "{summary:#}");
    assert_eq!(summary["distinct"], 2, "{summary:#}");
    assert_eq!(summary["cold"], 2, "{summary:#}");
    assert_eq!(summary["errors"], 0, "{summary:#}");
}

/// Invoke the warmer function with `event` and return its one report.
async fn invoke_warmer(ministack: &Ministack, event: &Value) -> Value {
    let output = ministack
        .lambda()
        .invoke()
        .function_name(WARMER)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .unwrap();
    let payload: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    if let Some(kind) = output.function_error() {
        let logs = ministack.function_logs(WARMER).await.unwrap_or_default();
        panic!(
            "the warmer failed ({kind}): {payload:#}\n{}",
            logs.join("\n")
        );
    }
    let reports = payload["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{payload:#}");
    reports[0].clone()
}

fn instances(report: &Value) -> BTreeSet<String> {
    report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

/// The log lines that are JSON objects.
fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

/// Poll `function`'s logs until `done` holds for its JSON lines, within [`LOG_BOUND`].
async fn wait_for_lines(
    ministack: &Ministack,
    function: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + LOG_BOUND;
    loop {
        let raw = ministack.function_logs(function).await.unwrap();
        let lines = json_lines(&raw);
        if done(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{function}'s logs never showed the expected lines:\n{}",
            raw.join("\n")
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The requests the Python app logged (its own access lines, forwarded by the bootstrap).
fn app_requests(lines: &[String]) -> Vec<String> {
    json_lines(lines)
        .into_iter()
        .filter(|l| l["source"] == "app")
        .filter_map(|l| l["msg"].as_str().map(str::to_owned))
        .filter(|m| m.starts_with("python-echo ") && !m.contains("listening"))
        .collect()
}
