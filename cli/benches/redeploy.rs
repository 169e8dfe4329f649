//! Code-only redeploy against ministack: wall time of `up deploy` (process start to exit,
//! packaging included, compilation excluded) and the AWS API calls it sends, for the real
//! python-echo app and the real bootstrap. Targets: at most 3 s and 12 calls.
//!
//! `cargo bench -p up --bench redeploy` (UP_BOOTSTRAP as for the tests; `-- <runs>` to change the
//! number of redeploys, default 10).

// A measuring harness like the tests it borrows from: any failure stops it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/deploy_common/mod.rs"]
mod deploy_common;

use deploy_common::Project;
use serde_json::json;
use std::time::{Duration, Instant};
use up_tests::ministack::Ministack;

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let ms = Ministack::start().await;
    let endpoint = ms.endpoint();
    let project =
        Project::python_echo(&json!({"name": "bench", "proxy": {"command": "python3 app.py"}}));

    let started = Instant::now();
    let first = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    let first_wall = started.elapsed();
    let started = Instant::now();
    let unchanged = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    let unchanged_wall = started.elapsed();

    let mut walls = Vec::new();
    let mut calls = Vec::new();
    let mut aws = Vec::new();
    let mut operations = String::new();
    for run in 0..runs {
        project.change_app(u32::try_from(run).unwrap() + 2);
        let started = Instant::now();
        let summary = project
            .up(endpoint, &["deploy", "--output", "json"])
            .await
            .json();
        walls.push(started.elapsed());
        assert_eq!(summary["published"], true, "{summary}");
        calls.push(summary["api_calls"].as_u64().unwrap());
        aws.push(Duration::from_millis(summary["aws_ms"].as_u64().unwrap()));
        operations = summary["api_operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ");
    }
    walls.sort();
    aws.sort();
    calls.sort_unstable();
    let median = |v: &[Duration]| v[v.len() / 2];
    println!(
        "up deploy against ministack (python-echo, {} B zip)",
        first["package"]["bytes"]
    );
    println!(
        "  first deploy (creates everything): {:.2} s, {} calls",
        first_wall.as_secs_f64(),
        first["api_calls"]
    );
    println!(
        "  unchanged redeploy:                {:.2} s, {} calls",
        unchanged_wall.as_secs_f64(),
        unchanged["api_calls"]
    );
    println!(
        "  code-only redeploy ({runs} runs): wall median {:.2} s (min {:.2}, max {:.2}); AWS part median {:.2} s; calls {}..={}",
        median(&walls).as_secs_f64(),
        walls[0].as_secs_f64(),
        walls[walls.len() - 1].as_secs_f64(),
        median(&aws).as_secs_f64(),
        calls[0],
        calls[calls.len() - 1]
    );
    println!("  calls of the last run: {operations}");
    let within = median(&walls) <= Duration::from_secs(3) && calls[calls.len() - 1] <= 12;
    println!(
        "  target (<= 3 s, <= 12 calls): {}",
        if within { "met" } else { "MISSED" }
    );
}
