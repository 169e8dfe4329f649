//! Classifying a raw Lambda event before any HTTP parsing.
//!
//! One cheap pass over the raw JSON ([`Probe`]) tells which shape the event has: API Gateway
//! REST (payload 1.0), HTTP API (payload 2.0), Function URL (2.0 on a `lambda-url` domain), ALB
//! (single- or multi-value), a warm-up ping, or something else. The same pass keeps the query
//! parameters in the order the event lists them, which `aws_lambda_events`' `QueryMap` (a hash
//! map) loses.

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// Which kind of event arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// API Gateway REST API, or HTTP API with payload format 1.0.
    ApiGatewayV1,
    /// API Gateway HTTP API, payload format 2.0.
    ApiGatewayV2,
    /// A Lambda Function URL (payload 2.0).
    FunctionUrl,
    /// Application Load Balancer, multi-value headers off.
    Alb,
    /// Application Load Balancer, multi-value headers on.
    AlbMultiValue,
    /// A warm-up ping (see DESIGN.md's warm-ping contract).
    Warm,
    /// Anything else (S3, SQS, a custom payload, ...).
    Other,
}

impl Shape {
    /// The name used in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Shape::ApiGatewayV1 => "apigateway_v1",
            Shape::ApiGatewayV2 => "apigateway_v2",
            Shape::FunctionUrl => "function_url",
            Shape::Alb => "alb",
            Shape::AlbMultiValue => "alb_multi_value",
            Shape::Warm => "warm",
            Shape::Other => "other",
        }
    }

    /// True for the shapes that carry an HTTP request.
    pub fn is_http(self) -> bool {
        !matches!(self, Shape::Warm | Shape::Other)
    }
}

/// What one pass over the raw event tells.
#[derive(Debug, Default, Deserialize)]
pub struct Probe {
    #[serde(default)]
    version: Option<String>,
    #[serde(default, rename = "httpMethod")]
    http_method: Option<IgnoredAny>,
    #[serde(default, rename = "requestContext")]
    request_context: Option<ProbeContext>,
    #[serde(default, rename = "multiValueHeaders")]
    multi_value_headers: Option<IgnoredAny>,
    /// `queryStringParameters` in event order.
    #[serde(default, rename = "queryStringParameters")]
    pub query: Option<Pairs>,
    /// `multiValueQueryStringParameters` in event order.
    #[serde(default, rename = "multiValueQueryStringParameters")]
    pub multi_value_query: Option<Pairs>,
    /// `up_warm`: the warmer's ping (see [`crate::warm::Ping`]).
    #[serde(default)]
    pub up_warm: Option<serde_json::Value>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    warmer: Option<bool>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, rename = "detail-type")]
    detail_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ProbeContext {
    #[serde(default)]
    elb: Option<IgnoredAny>,
    #[serde(default, rename = "domainName")]
    domain_name: Option<String>,
}

impl Probe {
    /// Reads the probe from the raw event. `Err` only when the bytes are not a JSON object.
    pub fn read(raw: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }

    /// The event's shape.
    pub fn shape(&self) -> Shape {
        if self.is_warm() {
            return Shape::Warm;
        }
        let Some(ctx) = &self.request_context else {
            return Shape::Other;
        };
        if ctx.elb.is_some() {
            return if self.multi_value_headers.is_some() {
                Shape::AlbMultiValue
            } else {
                Shape::Alb
            };
        }
        if self.version.as_deref() == Some("2.0") {
            let url = ctx
                .domain_name
                .as_deref()
                .is_some_and(|d| d.contains(".lambda-url."));
            return if url {
                Shape::FunctionUrl
            } else {
                Shape::ApiGatewayV2
            };
        }
        if self.http_method.is_some() {
            return Shape::ApiGatewayV1;
        }
        Shape::Other
    }

    fn is_warm(&self) -> bool {
        self.up_warm.is_some()
            || self.source.as_deref() == Some("serverless-plugin-warmup")
            || self.warmer == Some(true)
            || self.kind.as_deref() == Some("warmer")
            || (self.detail_type.as_deref() == Some("Scheduled Event")
                && self.source.as_deref() == Some("aws.events"))
    }
}

/// Query parameters as `(name, values)` in the order the event lists them. A single-value map
/// (`{"a": "1"}`) and a multi-value map (`{"a": ["1", "2"]}`) both read into this.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pairs(pub Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of query parameters")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Pairs, E> {
                Ok(Pairs::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Pairs, E> {
                Ok(Pairs::default())
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Pairs, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let values = map.next_value::<OneOrMany>()?.0;
                    pairs.push((key, values));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_option(PairsVisitor)
    }
}

struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(Option<String>),
            Many(Vec<Option<String>>),
        }
        Ok(OneOrMany(match Raw::deserialize(d)? {
            Raw::One(v) => vec![v.unwrap_or_default()],
            Raw::Many(vs) => vs.into_iter().map(Option::unwrap_or_default).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(json: &str) -> Shape {
        Probe::read(json).unwrap().shape()
    }

    #[test]
    fn shapes() {
        assert_eq!(
            shape(r#"{"httpMethod":"GET","requestContext":{"stage":"prod"}}"#),
            Shape::ApiGatewayV1
        );
        assert_eq!(
            shape(r#"{"version":"1.0","httpMethod":"GET","requestContext":{}}"#),
            Shape::ApiGatewayV1
        );
        assert_eq!(
            shape(
                r#"{"version":"2.0","requestContext":{"domainName":"x.execute-api.us-east-1.amazonaws.com"}}"#
            ),
            Shape::ApiGatewayV2
        );
        assert_eq!(
            shape(
                r#"{"version":"2.0","requestContext":{"domainName":"abc.lambda-url.us-east-1.on.aws"}}"#
            ),
            Shape::FunctionUrl
        );
        assert_eq!(
            shape(r#"{"httpMethod":"GET","requestContext":{"elb":{}},"headers":{}}"#),
            Shape::Alb
        );
        assert_eq!(
            shape(r#"{"httpMethod":"GET","requestContext":{"elb":{}},"multiValueHeaders":{}}"#),
            Shape::AlbMultiValue
        );
        assert_eq!(shape(r#"{"up_warm":{"run":"x"}}"#), Shape::Warm);
        assert_eq!(
            shape(r#"{"source":"serverless-plugin-warmup"}"#),
            Shape::Warm
        );
        assert_eq!(shape(r#"{"warmer":true}"#), Shape::Warm);
        assert_eq!(shape(r#"{"type":"warmer"}"#), Shape::Warm);
        assert_eq!(
            shape(r#"{"source":"aws.events","detail-type":"Scheduled Event"}"#),
            Shape::Warm
        );
        assert_eq!(
            shape(r#"{"Records":[{"eventSource":"aws:s3"}]}"#),
            Shape::Other
        );
        assert_eq!(shape(r#"{"httpMethod":"GET"}"#), Shape::Other);
    }

    #[test]
    fn query_pairs_keep_event_order() {
        let p = Probe::read(
            r#"{"queryStringParameters":{"z":"1","a":"2"},"multiValueQueryStringParameters":{"z":["1","3"],"a":["2"]}}"#,
        )
        .unwrap();
        assert_eq!(
            p.query.unwrap().0,
            [
                ("z".into(), vec!["1".into()]),
                ("a".into(), vec!["2".into()])
            ]
        );
        assert_eq!(
            p.multi_value_query.unwrap().0[0],
            ("z".into(), vec!["1".into(), "3".into()])
        );
    }

    #[test]
    fn null_query_maps_are_empty() {
        let p = Probe::read(r#"{"queryStringParameters":null}"#).unwrap();
        assert_eq!(p.query.unwrap_or_default(), Pairs::default());
    }

    #[test]
    fn not_an_object_is_an_error() {
        assert!(Probe::read("[1,2]").is_err());
        assert!(Probe::read("nope").is_err());
    }
}
