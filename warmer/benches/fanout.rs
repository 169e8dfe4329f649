//! Fan-out time of `up_warmer::warm` against ministack: N = 10 and N = 50 pings held 75 ms
//! each, at the real bootstrap wrapping `examples/python-echo`, and whether every ping reached
//! an environment of its own.
//!
//! Per N, a fresh function: one cold run (N environments start: bootstrap + Python app), then
//! [`WARM_RUNS`] warm runs at the same environments. Prints one line per run and a summary.
//!
//! ```text
//! cargo build --release -p up-proxy --target x86_64-unknown-linux-musl
//! cargo bench -p up-warmer --bench fanout
//! ```

#![allow(clippy::unwrap_used)] // a benchmark: failures are fatal

#[path = "../tests/support/mod.rs"]
mod support;

use up_tests::ministack::Ministack;
use up_warmer::{Options, Report, Target};

const SIZES: [u32; 2] = [10, 50];
const HOLD_MS: u64 = 75;
const WARM_RUNS: usize = 5;
/// One of the stages every `up.json` has (the bootstrap refuses an unknown `UP_STAGE`).
const ALIAS: &str = "staging";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let ministack = Ministack::start().await;
    let client = up_warmer::client(&ministack.sdk_config(), &Options::default());
    println!(
        "up-warmer fan-out against ministack (hold {HOLD_MS} ms, {} cores)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:>4} {:>6} {:>9} {:>8} {:>8} {:>5} {:>9} {:>6}  all distinct",
        "N", "run", "time ms", "answered", "distinct", "cold", "throttled", "errors"
    );
    let mut summary = Vec::new();
    for n in SIZES {
        let function = format!("up-bench-warm-{n}");
        support::deploy_echo(&ministack, &function, ALIAS).await;
        let mut target = Target::new(&function, ALIAS, n);
        target.hold_ms = HOLD_MS;

        let cold = up_warmer::warm(&client, &target).await;
        print_run(n, "cold", &cold);
        let mut warm = Vec::with_capacity(WARM_RUNS);
        for run in 1..=WARM_RUNS {
            let report = up_warmer::warm(&client, &target).await;
            print_run(n, &format!("warm{run}"), &report);
            warm.push(report);
        }
        summary.push((n, cold, warm));
    }

    println!();
    for (n, cold, warm) in &summary {
        let mut times: Vec<u64> = warm.iter().map(|r| r.duration_ms).collect();
        times.sort_unstable();
        let median = times[times.len() / 2];
        let all_distinct = cold.all_distinct() && warm.iter().all(Report::all_distinct);
        let min_distinct = warm.iter().map(|r| r.distinct).min().unwrap_or(0);
        println!(
            "N={n:<3} cold {:>6} ms | warm median {median:>5} ms (min {}, max {}) | \
             overhead over the hold {:>4} ms | every instance distinct: {} (warm runs: fewest {min_distinct}/{n})",
            cold.duration_ms,
            times[0],
            times[times.len() - 1],
            median.saturating_sub(HOLD_MS),
            if all_distinct { "yes" } else { "no" },
        );
    }
    drop(ministack);
    let failed: Vec<&Report> = summary
        .iter()
        .flat_map(|(_, cold, warm)| std::iter::once(cold).chain(warm))
        .filter(|r| r.errors > 0 || r.throttled > 0)
        .collect();
    assert!(
        failed.is_empty(),
        "runs with errors or throttles, figures not valid: {failed:#?}"
    );
}

fn print_run(n: u32, run: &str, report: &Report) {
    println!(
        "{n:>4} {run:>6} {:>9} {:>8} {:>8} {:>5} {:>9} {:>6}  {}{}",
        report.duration_ms,
        report.answered,
        report.distinct,
        report.cold,
        report.throttled,
        report.errors,
        if report.all_distinct() { "yes" } else { "no" },
        if report.error_messages.is_empty() {
            String::new()
        } else {
            format!("  {:?}", report.error_messages)
        }
    );
}
