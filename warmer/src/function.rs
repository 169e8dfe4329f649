//! The `warmer` Lambda function: a scheduled rule invokes it with a constant [`Event`]
//! listing targets; it warms them all in parallel and, per target, prints one JSON summary
//! line and one Embedded Metric Format line on stdout (CloudWatch Logs reads both; the EMF
//! line becomes metrics without any API call).
//!
//! A warm run that finds errors still succeeds: the errors are in the summary and in the
//! `WarmErrors` metric, and a failed asynchronous invocation would be retried by Lambda,
//! pinging environments that are already warm. Only an event that cannot be read fails, with
//! `errorType` `Up.InvalidWarmEvent`.

use std::io::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::fanout::{self, Options};
use crate::metrics::Emf;
use crate::report::Report;
use crate::target::{Event, Target};

/// `errorType` of an invocation whose event is not a warm event.
pub const INVALID_EVENT: &str = "Up.InvalidWarmEvent";

/// What an invocation returns: one report per target, in the event's order.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub reports: Vec<Report>,
}

/// The function's state across invocations: the Lambda client.
#[derive(Debug, Clone)]
pub struct Warmer {
    client: aws_sdk_lambda::Client,
}

impl Warmer {
    /// A warmer sending its Invokes through `client`.
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Warmer { client }
    }

    /// A warmer configured from the environment (region, credentials, `AWS_ENDPOINT_URL`, …)
    /// as every AWS SDK reads it, with `options`' timeouts and retries.
    pub async fn from_env(options: &Options) -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(fanout::https_client())
            .load()
            .await;
        Warmer::new(fanout::client(&sdk, options))
    }

    /// Warms every target of `event` in parallel. Bad events are refused before anything is
    /// sent.
    pub async fn warm_event(
        &self,
        event: serde_json::Value,
    ) -> Result<Vec<(Target, Report)>, Error> {
        let event = Event::from_value(event)?;
        let mut runs = JoinSet::new();
        for (position, target) in event.targets.into_iter().enumerate() {
            let client = self.client.clone();
            runs.spawn(async move {
                let report = fanout::warm(&client, &target).await;
                (position, target, report)
            });
        }
        let mut done = Vec::with_capacity(runs.len());
        while let Some(joined) = runs.join_next().await {
            match joined {
                Ok(run) => done.push(run),
                // `warm` does not panic; a run that did anyway is lost, and said so.
                Err(err) => print_line(&LogLine::error("warm run failed", err.to_string())),
            }
        }
        done.sort_by_key(|(position, _, _)| *position);
        Ok(done
            .into_iter()
            .map(|(_, target, report)| (target, report))
            .collect())
    }

    /// One invocation: warm, print the summary and EMF lines, answer the reports.
    pub async fn invoke(&self, event: serde_json::Value) -> Result<Output, Diagnostic> {
        match self.warm_event(event).await {
            Ok(runs) => {
                let now = epoch_ms();
                for (target, report) in &runs {
                    for line in lines(target, report, now) {
                        print_line(&line);
                    }
                }
                Ok(Output {
                    reports: runs.into_iter().map(|(_, report)| report).collect(),
                })
            }
            Err(err) => {
                print_line(&LogLine::error("invalid warm event", err.to_string()));
                Err(Diagnostic {
                    error_type: INVALID_EVENT.to_owned(),
                    error_message: err.to_string(),
                })
            }
        }
    }
}

/// Serves invocations until the Runtime API loop ends: the `warmer` binary's whole life.
pub async fn run(options: Options) -> Result<(), lambda_runtime::Error> {
    let warmer = Arc::new(Warmer::from_env(&options).await);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let warmer = warmer.clone();
            async move { warmer.invoke(event.payload).await }
        },
    ))
    .await
}

/// The summary line of one warm run: the report plus level, message and dimensions.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub level: &'static str,
    pub msg: &'static str,
    pub app: &'a str,
    pub stage: &'a str,
    pub hold_ms: u64,
    #[serde(flatten)]
    pub report: &'a Report,
}

/// The two stdout lines of one warm run: its summary, then its EMF document.
pub fn lines(target: &Target, report: &Report, timestamp_ms: u64) -> [String; 2] {
    let level = if report.errors > 0 || report.throttled > 0 {
        "warn"
    } else {
        "info"
    };
    let summary = Summary {
        level,
        msg: "warm run",
        app: target.app(),
        stage: target.stage(),
        hold_ms: target.hold_ms,
        report,
    };
    let emf = Emf::new(report, target.app(), target.stage(), timestamp_ms);
    [to_line(&summary), to_line(&emf)]
}

/// A plain log line: level, message, cause.
#[derive(Debug, Serialize)]
struct LogLine {
    level: &'static str,
    msg: &'static str,
    error: String,
}

impl LogLine {
    fn error(msg: &'static str, error: String) -> String {
        to_line(&LogLine {
            level: "error",
            msg,
            error,
        })
    }
}

fn to_line(value: &impl Serialize) -> String {
    // These types hold only strings, integers and string-keyed maps: serializing them into
    // memory cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Writes one line to stdout, the function's log, in a single write.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    // stdout is where failures are reported: when it is gone there is nowhere left to say so.
    let _ = out.write_all(&bytes);
    let _ = out.flush();
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn report() -> Report {
        Report {
            function: "up-myapp".into(),
            qualifier: "staging".into(),
            run: "r".into(),
            requested: 3,
            answered: 3,
            distinct: 3,
            cold: 1,
            throttled: 0,
            errors: 0,
            duration_ms: 80,
            instances: vec!["a".into(), "b".into(), "c".into()],
            error_messages: vec![],
        }
    }

    #[test]
    fn a_run_prints_a_summary_then_an_emf_line() {
        let mut target = Target::new("up-myapp", "staging", 3);
        target.app = Some("myapp".into());
        let [summary, emf] = lines(&target, &report(), 42);
        assert!(!summary.contains('\n') && !emf.contains('\n'));
        let summary: Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(summary["level"], "info");
        assert_eq!(summary["msg"], "warm run");
        assert_eq!(summary["app"], "myapp");
        assert_eq!(summary["stage"], "staging");
        assert_eq!(summary["distinct"], 3);
        assert_eq!(summary["instances"], json!(["a", "b", "c"]));
        let emf: Value = serde_json::from_str(&emf).unwrap();
        assert_eq!(emf["_aws"]["Timestamp"], 42);
        assert_eq!(emf["app"], "myapp");
        assert_eq!(emf["WarmInstances"], 3);
        assert_eq!(emf["ColdInstances"], 1);
    }

    #[test]
    fn a_run_with_errors_or_throttles_is_a_warning() {
        let target = Target::new("up-myapp", "staging", 3);
        let mut throttled = report();
        throttled.throttled = 1;
        let [summary, _] = lines(&target, &throttled, 0);
        let summary: Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(summary["level"], "warn");
    }

    #[tokio::test]
    async fn a_bad_event_fails_the_invocation_with_the_reason() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let warmer = Warmer::new(fanout::client(&sdk, &Options::default()));
        let err = warmer
            .invoke(json!({"targets": [{"function": "f", "qualifier": "q", "concurrency": 0}]}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, INVALID_EVENT);
        assert_eq!(
            err.error_message,
            "warm event: targets[0]: concurrency 0 is outside 1..=1000"
        );
        // An EventBridge rule without the constant input sends its own envelope.
        let err = warmer
            .invoke(json!({"source": "aws.events", "detail-type": "Scheduled Event"}))
            .await
            .unwrap_err();
        assert!(
            err.error_message.contains("expected `targets`"),
            "{}",
            err.error_message
        );
    }
}
