//! CloudWatch metrics of a warm run through the Embedded Metric Format: one JSON log line that
//! CloudWatch Logs turns into metrics, so the warmer makes no PutMetricData call.
//!
//! Namespace `up`, dimensions `app` and `stage`, metrics `WarmInstances` (distinct
//! environments that answered), `ColdInstances` (those that were cold) and `WarmErrors`
//! (failed pings; throttles are not errors and ride along as the `throttled` property).
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde::Serialize;

use crate::report::Report;

/// The metrics' namespace.
pub const NAMESPACE: &str = "up";

/// One EMF document: the `_aws` metadata, the dimension values, the metric values and a few
/// searchable properties.
#[derive(Debug, Clone, Serialize)]
pub struct Emf<'a> {
    #[serde(rename = "_aws")]
    pub aws: Metadata,
    pub app: &'a str,
    pub stage: &'a str,
    #[serde(rename = "WarmInstances")]
    pub warm_instances: u32,
    #[serde(rename = "ColdInstances")]
    pub cold_instances: u32,
    #[serde(rename = "WarmErrors")]
    pub warm_errors: u32,
    /// Properties (not metrics): searchable in Logs Insights.
    pub function: &'a str,
    pub qualifier: &'a str,
    pub run: &'a str,
    pub requested: u32,
    pub throttled: u32,
}

/// The `_aws` member.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// Milliseconds since the epoch.
    #[serde(rename = "Timestamp")]
    pub timestamp: u64,
    #[serde(rename = "CloudWatchMetrics")]
    pub cloudwatch_metrics: [Directive; 1],
}

/// One metric directive: which members are metrics, under which dimensions.
#[derive(Debug, Clone, Serialize)]
pub struct Directive {
    #[serde(rename = "Namespace")]
    pub namespace: &'static str,
    #[serde(rename = "Dimensions")]
    pub dimensions: [[&'static str; 2]; 1],
    #[serde(rename = "Metrics")]
    pub metrics: [Metric; 3],
}

/// A metric's name and unit.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    #[serde(rename = "Name")]
    pub name: &'static str,
    #[serde(rename = "Unit")]
    pub unit: &'static str,
}

impl<'a> Emf<'a> {
    /// The metrics of `report` under dimensions `app` and `stage`, stamped `timestamp_ms`.
    pub fn new(report: &'a Report, app: &'a str, stage: &'a str, timestamp_ms: u64) -> Self {
        let count = |name| Metric {
            name,
            unit: "Count",
        };
        Emf {
            aws: Metadata {
                timestamp: timestamp_ms,
                cloudwatch_metrics: [Directive {
                    namespace: NAMESPACE,
                    dimensions: [["app", "stage"]],
                    metrics: [
                        count("WarmInstances"),
                        count("ColdInstances"),
                        count("WarmErrors"),
                    ],
                }],
            },
            app,
            stage,
            warm_instances: report.distinct,
            cold_instances: report.cold,
            warm_errors: report.errors,
            function: &report.function,
            qualifier: &report.qualifier,
            run: &report.run,
            requested: report.requested,
            throttled: report.throttled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_document_follows_the_emf_specification() {
        let report = Report {
            function: "myapp".into(),
            qualifier: "staging".into(),
            run: "r".into(),
            requested: 6,
            answered: 5,
            distinct: 4,
            cold: 2,
            throttled: 1,
            errors: 0,
            duration_ms: 90,
            instances: vec![],
            error_messages: vec![],
        };
        let value =
            serde_json::to_value(Emf::new(&report, "myapp", "staging", 1_700_000_000_000)).unwrap();
        assert_eq!(
            value,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "up",
                        "Dimensions": [["app", "stage"]],
                        "Metrics": [
                            {"Name": "WarmInstances", "Unit": "Count"},
                            {"Name": "ColdInstances", "Unit": "Count"},
                            {"Name": "WarmErrors", "Unit": "Count"}
                        ]
                    }]
                },
                "app": "myapp",
                "stage": "staging",
                "WarmInstances": 4,
                "ColdInstances": 2,
                "WarmErrors": 0,
                "function": "myapp",
                "qualifier": "staging",
                "run": "r",
                "requested": 6,
                "throttled": 1
            })
        );
    }
}
