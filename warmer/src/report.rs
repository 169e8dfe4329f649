//! What one warm run found ([`Report`]), and the counting of ping outcomes into it.
//!
//! Every ping ends as exactly one of answered, throttled or error, so
//! `answered + throttled + errors == requested`. Instances are counted once each however many
//! pings they answered: `distinct` is the number of different `instance` ids, `cold` the
//! number of those that said `cold` in any of their replies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::error::PingError;
use crate::ping::ReplyBody;
use crate::target::Target;

/// How many different error texts a report keeps.
pub const MAX_ERROR_MESSAGES: usize = 5;

/// What one warm run found. Serialize gives the JSON summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub function: String,
    pub qualifier: String,
    /// The run's id, carried by each of its pings.
    pub run: String,
    /// Invokes sent.
    pub requested: u32,
    /// Pings answered with a warm reply.
    pub answered: u32,
    /// Different execution environments that answered.
    pub distinct: u32,
    /// Environments among `distinct` that were cold (their first invocation was a ping).
    pub cold: u32,
    /// Invokes refused with `TooManyRequestsException` (e.g. reserved concurrency below N).
    pub throttled: u32,
    /// Invokes that failed or answered something else than a warm reply.
    pub errors: u32,
    /// From the first Invoke sent to the last answer.
    pub duration_ms: u64,
    /// The instance ids that answered, each once, sorted.
    pub instances: Vec<String>,
    /// The first few distinct error texts.
    pub error_messages: Vec<String>,
}

/// How one ping ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Answered(ReplyBody),
    Throttled,
    Failed(PingError),
}

impl Report {
    /// Counts `outcomes` (one per ping sent) of run `run` at `target`.
    pub(crate) fn count(
        target: &Target,
        run: String,
        outcomes: impl IntoIterator<Item = Outcome>,
        duration: Duration,
    ) -> Report {
        let mut requested = 0u32;
        let mut answered = 0u32;
        let mut throttled = 0u32;
        let mut errors = 0u32;
        // instance id -> whether any of its replies said cold
        let mut instances: BTreeMap<String, bool> = BTreeMap::new();
        let mut error_messages: Vec<String> = Vec::new();
        for outcome in outcomes {
            requested += 1;
            match outcome {
                Outcome::Answered(reply) => {
                    answered += 1;
                    *instances.entry(reply.instance).or_default() |= reply.cold;
                }
                Outcome::Throttled => throttled += 1,
                Outcome::Failed(err) => {
                    errors += 1;
                    let text = err.to_string();
                    if error_messages.len() < MAX_ERROR_MESSAGES && !error_messages.contains(&text)
                    {
                        error_messages.push(text);
                    }
                }
            }
        }
        let cold = instances.values().filter(|cold| **cold).count();
        Report {
            function: target.function.clone(),
            qualifier: target.qualifier.clone(),
            run,
            requested,
            answered,
            // At most `requested` entries, itself a u32 count.
            distinct: u32::try_from(instances.len()).unwrap_or(u32::MAX),
            cold: u32::try_from(cold).unwrap_or(u32::MAX),
            throttled,
            errors,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            instances: instances.into_keys().collect(),
            error_messages,
        }
    }

    /// The report of a target refused before anything was sent: no Invoke, one error.
    pub(crate) fn refused(target: &Target, run: String, err: crate::Error) -> Report {
        let mut report = Report::count(target, run, [], Duration::ZERO);
        report.errors = 1;
        report.error_messages = vec![PingError::Refused(err).to_string()];
        report
    }

    /// Whether every Invoke reached its own environment and answered.
    pub fn all_distinct(&self) -> bool {
        self.requested > 0 && self.distinct == self.requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(instance: &str, cold: bool) -> Outcome {
        Outcome::Answered(ReplyBody {
            instance: instance.to_owned(),
            cold,
            run: Some("run".to_owned()),
            index: Some(0),
            uptime_ms: 10,
            invocations: 1,
            app_restarts: 0,
        })
    }

    fn failed(message: &str) -> Outcome {
        Outcome::Failed(PingError::Invoke(message.to_owned()))
    }

    fn count(outcomes: Vec<Outcome>) -> Report {
        Report::count(
            &Target::new("f", "staging", 6),
            "run".to_owned(),
            outcomes,
            Duration::from_millis(120),
        )
    }

    #[test]
    fn every_ping_on_its_own_cold_instance() {
        let report = count((0..6).map(|i| answer(&format!("i-{i}"), true)).collect());
        assert_eq!(report.requested, 6);
        assert_eq!(report.answered, 6);
        assert_eq!(report.distinct, 6);
        assert_eq!(report.cold, 6);
        assert_eq!((report.throttled, report.errors), (0, 0));
        assert_eq!(report.duration_ms, 120);
        assert_eq!(report.instances.len(), 6);
        assert!(report.all_distinct());
    }

    #[test]
    fn an_instance_answering_twice_counts_once() {
        let report = count(vec![
            answer("a", true),
            answer("a", false),
            answer("b", false),
            answer("b", false),
            answer("c", false),
            answer("a", false),
        ]);
        assert_eq!(report.answered, 6);
        assert_eq!(report.distinct, 3);
        // `a` said cold once: one cold instance, counted once.
        assert_eq!(report.cold, 1);
        assert_eq!(report.instances, vec!["a", "b", "c"]);
        assert!(!report.all_distinct());
    }

    #[test]
    fn throttles_and_errors_are_counted_apart() {
        let report = count(vec![
            answer("a", true),
            answer("b", false),
            Outcome::Throttled,
            Outcome::Throttled,
            failed("timeout"),
            Outcome::Failed(PingError::Function {
                error_type: "Up.UnsupportedEvent".into(),
                message: "no known shape".into(),
            }),
        ]);
        assert_eq!(report.requested, 6);
        assert_eq!(report.answered, 2);
        assert_eq!((report.distinct, report.cold), (2, 1));
        assert_eq!(report.throttled, 2);
        assert_eq!(report.errors, 2);
        assert_eq!(
            report.error_messages,
            vec![
                "Invoke failed: timeout",
                "Up.UnsupportedEvent: no known shape"
            ]
        );
        assert_eq!(
            report.answered + report.throttled + report.errors,
            report.requested
        );
    }

    #[test]
    fn error_texts_are_kept_once_and_only_the_first_few() {
        let mut outcomes: Vec<Outcome> = (0..4).map(|_| failed("same")).collect();
        outcomes.extend((0..10).map(|i| failed(&format!("e{i}"))));
        let report = count(outcomes);
        assert_eq!(report.errors, 14);
        assert_eq!(report.error_messages.len(), MAX_ERROR_MESSAGES);
        assert_eq!(report.error_messages[0], "Invoke failed: same");
        assert_eq!(report.error_messages[1], "Invoke failed: e0");
    }

    #[test]
    fn a_refused_target_sends_nothing_and_says_why() {
        let target = Target::new("f", "staging", 0);
        let err = target.validate().unwrap_err();
        let report = Report::refused(&target, "run".into(), err);
        assert_eq!(
            (report.requested, report.answered, report.errors),
            (0, 0, 1)
        );
        assert_eq!(
            report.error_messages,
            vec!["not sent: concurrency 0 is outside 1..=1000"]
        );
    }

    #[test]
    fn the_summary_has_the_documented_fields() {
        let report = count(vec![answer("a", true)]);
        let value = serde_json::to_value(&report).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "function",
            "qualifier",
            "run",
            "requested",
            "answered",
            "distinct",
            "cold",
            "throttled",
            "errors",
            "duration_ms",
            "instances",
            "error_messages",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }
}
