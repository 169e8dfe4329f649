//! Warm-up pings through the real `bootstrap` under `up-emulator`: answered by the bootstrap
//! with DESIGN.md's reply, held so that concurrent pings land on distinct environments, and
//! never seen by the app.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use up_emulator::Outcome;
use up_tests::harness::{Function, START_BOUND, v2_event};
use up_tests::paths::example_dir;

fn ping(run: &str, index: u64, of: u64, hold_ms: u64) -> String {
    json!({"up_warm": {"run": run, "index": index, "of": of, "hold_ms": hold_ms}}).to_string()
}

/// Requests the Python app logged (its own access lines).
fn app_requests(function: &Function) -> usize {
    function
        .json_logs()
        .into_iter()
        .filter(|l| l["source"] == "app")
        .filter(|l| {
            l["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("python-echo ") && !m.contains("listening"))
        })
        .count()
}

#[tokio::test]
async fn concurrent_pings_warm_distinct_environments_without_the_app() {
    let dir = example_dir("python-echo");
    let function = Function::spawn(
        &dir,
        &[("UP_STAGE", "staging"), ("AWS_LAMBDA_LOG_LEVEL", "debug")],
        |c| c.max_instances = NonZeroUsize::new(3).unwrap(),
    )
    .await;
    function.emulator.wait_ready(START_BOUND).await.unwrap();

    // Round 1: three pings at once, each held 400 ms, occupy three environments.
    let first = round(&function, "run-1").await;
    let mut instances = BTreeSet::new();
    for reply in &first {
        let body = &reply["up_warm"];
        assert_eq!(body["run"], "run-1", "{reply}");
        assert_eq!(
            body["cold"], true,
            "first ping of each environment: {reply}"
        );
        assert_eq!(body["invocations"], 1, "{reply}");
        assert_eq!(body["app_restarts"], 0, "{reply}");
        assert!(body["uptime_ms"].as_u64().is_some(), "{reply}");
        instances.insert(body["instance"].as_str().unwrap().to_owned());
    }
    assert_eq!(instances.len(), 3, "three distinct environments: {first:?}");
    let indexes: BTreeSet<u64> = first
        .iter()
        .map(|r| r["up_warm"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        indexes,
        BTreeSet::from([0, 1, 2]),
        "each ping's index echoed"
    );

    // Round 2: the same environments, now warm.
    let second = round(&function, "run-2").await;
    for reply in &second {
        let body = &reply["up_warm"];
        assert_eq!(body["cold"], false, "{reply}");
        assert_eq!(body["invocations"], 2, "{reply}");
        assert!(instances.contains(body["instance"].as_str().unwrap()));
    }

    // Other warmers' pings are answered the same way.
    for other in [
        json!({"source": "serverless-plugin-warmup"}),
        json!({"warmer": true}),
        json!({"type": "warmer"}),
        json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
    ] {
        let reply = function.invoke_json(&other.to_string()).await;
        assert_eq!(reply["up_warm"]["cold"], false, "{other} -> {reply}");
        assert_eq!(reply["up_warm"]["run"], Value::Null, "{other} -> {reply}");
    }

    // The app never saw a ping; no ping is an access-log request; each got one debug line.
    assert_eq!(app_requests(&function), 0);
    // The log thread writes lines after the replies: wait (bounded) for the tenth.
    let deadline = std::time::Instant::now() + START_BOUND;
    let logs = loop {
        let logs = function.json_logs();
        let pings = logs.iter().filter(|l| l["msg"] == "warm ping").count();
        if pings >= 10 || std::time::Instant::now() > deadline {
            break logs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(!logs.iter().any(|l| l["msg"] == "request"), "{logs:#?}");
    let debug_lines = logs.iter().filter(|l| l["msg"] == "warm ping").count();
    assert_eq!(debug_lines, 10, "one debug line per ping");

    // A real request after the pings is served, and is the first the app sees.
    let invocation = function
        .invoke(&v2_event("GET", "/after", "", &[], None))
        .await;
    let Outcome::Response(body) = &invocation.outcome else {
        panic!("{:?}", invocation.outcome);
    };
    let r: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(r["statusCode"], 200);
    let served = function
        .emulator
        .instances()
        .into_iter()
        .find(|i| i.index() == invocation.instance)
        .unwrap();
    served
        .wait_for_log(|l| l.contains("python-echo GET /after"), START_BOUND)
        .await
        .expect("the app logs the request");
    assert_eq!(app_requests(&function), 1);
}

/// Three pings sent at once, their replies in order.
async fn round(function: &Function, run: &str) -> Vec<Value> {
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let emulator = function.emulator.clone();
            let event = ping(run, i, 3, 400);
            tokio::spawn(async move { emulator.invoke(event.into()).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        let invocation = task.await.unwrap().unwrap();
        match invocation.outcome {
            Outcome::Response(body) => replies.push(serde_json::from_slice(&body).unwrap()),
            other => panic!("ping failed: {other:?}\n{}", function.logs().join("\n")),
        }
    }
    replies
}

#[tokio::test]
async fn a_cold_ping_waits_for_the_app_and_its_hold_is_capped() {
    let dir = example_dir("python-echo");
    // The invocation may take 5 s: a ping asking for a 60 s hold must still be answered (the
    // hold is capped at 1 s) rather than time the invocation out.
    let function = Function::spawn(&dir, &[("UP_STAGE", "staging")], |c| {
        c.timeout = std::time::Duration::from_secs(5);
    })
    .await;
    // No wait_ready: the ping itself is the cold start. The bootstrap takes events only once
    // the app listens, so the reply comes after the app started.
    let reply = function.invoke_json(&ping("cold-run", 0, 1, 60_000)).await;
    assert_eq!(reply["up_warm"]["cold"], true, "{reply}");
    assert_eq!(reply["up_warm"]["run"], "cold-run", "{reply}");
    let logs = function.json_logs();
    let started = logs.iter().position(|l| l["msg"] == "app started");
    assert!(started.is_some(), "the app was started: {logs:#?}");
    let r = function
        .invoke_json(&v2_event("GET", "/x", "", &[], None))
        .await;
    assert_eq!(r["statusCode"], 200);
}
