//! What to warm: [`Target`] (one alias, N environments) and [`Event`] (the warmer function's
//! input, the scheduled rule's constant JSON).
//!
//! Both are up's own format, written by `up deploy`: unknown fields are errors (a misspelt
//! `hold_ms` would otherwise silently fall back to the default), and every target is validated
//! as it is read.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How long the bootstrap holds a reply when the target does not say (DESIGN.md).
pub const DEFAULT_HOLD_MS: u64 = 75;

/// The most Invokes one run sends: Lambda's default account concurrency.
pub const MAX_CONCURRENCY: u32 = 1000;

/// One warm target: also the JSON shape of the warmer function's event entries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "TargetFields")]
pub struct Target {
    /// Function name or ARN.
    pub function: String,
    /// The exact alias the front door invokes, e.g. `staging`: environments are per version,
    /// so warming another qualifier warms nothing the users reach.
    pub qualifier: String,
    /// N parallel Invokes (1..=[`MAX_CONCURRENCY`]).
    pub concurrency: u32,
    /// How long each environment holds its reply, in milliseconds (the bootstrap caps it).
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// EMF dimension `app`; default: `function`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// EMF dimension `stage`; default: `qualifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

fn default_hold_ms() -> u64 {
    DEFAULT_HOLD_MS
}

/// The JSON fields of a [`Target`], before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    function: String,
    qualifier: String,
    concurrency: u32,
    #[serde(default = "default_hold_ms")]
    hold_ms: u64,
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    stage: Option<String>,
}

impl TryFrom<TargetFields> for Target {
    type Error = Error;

    fn try_from(fields: TargetFields) -> Result<Self, Error> {
        let target = Target {
            function: fields.function,
            qualifier: fields.qualifier,
            concurrency: fields.concurrency,
            hold_ms: fields.hold_ms,
            app: fields.app,
            stage: fields.stage,
        };
        target.validate()?;
        Ok(target)
    }
}

impl Target {
    /// A target with the default hold and dimensions.
    pub fn new(
        function: impl Into<String>,
        qualifier: impl Into<String>,
        concurrency: u32,
    ) -> Self {
        Target {
            function: function.into(),
            qualifier: qualifier.into(),
            concurrency,
            hold_ms: DEFAULT_HOLD_MS,
            app: None,
            stage: None,
        }
    }

    /// Checks what deserializing checks: a function, a qualifier, 1..=1000 Invokes, and no
    /// empty dimension.
    pub fn validate(&self) -> Result<(), Error> {
        if self.function.trim().is_empty() {
            return Err(Error::Empty { field: "function" });
        }
        if self.qualifier.trim().is_empty() {
            return Err(Error::Empty { field: "qualifier" });
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(Error::Concurrency {
                concurrency: self.concurrency,
            });
        }
        if self.app.as_deref().is_some_and(|app| app.trim().is_empty()) {
            return Err(Error::Empty { field: "app" });
        }
        if self
            .stage
            .as_deref()
            .is_some_and(|stage| stage.trim().is_empty())
        {
            return Err(Error::Empty { field: "stage" });
        }
        Ok(())
    }

    /// The EMF `app` dimension: `app`, else the function.
    pub fn app(&self) -> &str {
        self.app.as_deref().unwrap_or(&self.function)
    }

    /// The EMF `stage` dimension: `stage`, else the qualifier.
    pub fn stage(&self) -> &str {
        self.stage.as_deref().unwrap_or(&self.qualifier)
    }
}

/// The warmer function's event: `{"targets": [Target, ...]}`; a bare JSON array of targets is
/// accepted too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "EventFields")]
pub struct Event {
    pub targets: Vec<Target>,
}

/// The two accepted JSON shapes of an [`Event`], before the list is checked.
#[derive(Deserialize)]
#[serde(untagged)]
enum EventFields {
    Object(EventObject),
    Array(Vec<Target>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventObject {
    targets: Vec<Target>,
}

impl TryFrom<EventFields> for Event {
    type Error = Error;

    fn try_from(fields: EventFields) -> Result<Self, Error> {
        let targets = match fields {
            EventFields::Object(object) => object.targets,
            EventFields::Array(targets) => targets,
        };
        Event::checked(targets)
    }
}

impl Event {
    /// Reads an event from JSON. Errors name the bad value's path, e.g.
    /// `warm event: targets[1].concurrency: concurrency 0 is outside 1..=1000`.
    pub fn from_value(value: serde_json::Value) -> Result<Event, Error> {
        let targets = match value {
            serde_json::Value::Object(_) => path_checked::<EventObject>(value, "")?.targets,
            serde_json::Value::Array(_) => path_checked::<Vec<Target>>(value, "targets")?,
            other => {
                return Err(Error::EventShape {
                    found: json_kind(&other),
                });
            }
        };
        Event::checked(targets)
    }

    /// Reads an event from JSON text (see [`Event::from_value`]).
    pub fn from_slice(json: &[u8]) -> Result<Event, Error> {
        let value = serde_json::from_slice(json).map_err(|e| Error::Event {
            path: ".".to_owned(),
            message: e.to_string(),
        })?;
        Event::from_value(value)
    }

    /// An event of these targets: at least one, and no alias twice.
    fn checked(targets: Vec<Target>) -> Result<Event, Error> {
        if targets.is_empty() {
            return Err(Error::NoTargets);
        }
        let mut seen = HashSet::new();
        for target in &targets {
            if !seen.insert((target.function.as_str(), target.qualifier.as_str())) {
                return Err(Error::DuplicateTarget {
                    function: target.function.clone(),
                    qualifier: target.qualifier.clone(),
                });
            }
        }
        Ok(Event { targets })
    }
}

/// Deserializes `value` as `T`, naming the path of the first bad value (prefixed with
/// `prefix`, the name the top level stands for).
fn path_checked<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_owned(),
            (false, rest) if rest.starts_with('[') => format!("{prefix}{rest}"),
            (false, rest) => format!("{prefix}.{rest}"),
        };
        Error::Event {
            path,
            message: err.into_inner().to_string(),
        }
    })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_target_reads_with_defaults() {
        let target: Target = serde_json::from_value(json!({
            "function": "myapp", "qualifier": "staging", "concurrency": 6
        }))
        .unwrap();
        assert_eq!(target, Target::new("myapp", "staging", 6));
        assert_eq!(target.hold_ms, 75);
        assert_eq!(target.app(), "myapp");
        assert_eq!(target.stage(), "staging");
    }

    #[test]
    fn dimensions_can_be_named() {
        let target: Target = serde_json::from_value(json!({
            "function": "arn:aws:lambda:us-east-1:1:function:myapp", "qualifier": "production",
            "concurrency": 2, "hold_ms": 200, "app": "myapp", "stage": "prod"
        }))
        .unwrap();
        assert_eq!(target.hold_ms, 200);
        assert_eq!(target.app(), "myapp");
        assert_eq!(target.stage(), "prod");
        // Serialize writes what was given, nothing for absent dimensions.
        let plain = serde_json::to_value(Target::new("f", "q", 1)).unwrap();
        assert_eq!(
            plain,
            json!({"function": "f", "qualifier": "q", "concurrency": 1, "hold_ms": 75})
        );
    }

    #[test]
    fn bad_targets_are_refused_with_the_reason() {
        assert_eq!(
            Target::new("f", "q", 0).validate(),
            Err(Error::Concurrency { concurrency: 0 })
        );
        assert_eq!(
            Target::new("f", "q", 1001).validate(),
            Err(Error::Concurrency { concurrency: 1001 })
        );
        assert!(Target::new("f", "q", 1000).validate().is_ok());
        assert_eq!(
            Target::new(" ", "q", 1).validate(),
            Err(Error::Empty { field: "function" })
        );
        assert_eq!(
            Target::new("f", "", 1).validate(),
            Err(Error::Empty { field: "qualifier" })
        );
        let mut target = Target::new("f", "q", 1);
        target.stage = Some(String::new());
        assert_eq!(target.validate(), Err(Error::Empty { field: "stage" }));
    }

    #[test]
    fn an_event_is_an_object_or_a_bare_array() {
        let target = json!({"function": "f", "qualifier": "q", "concurrency": 3});
        let object = Event::from_value(json!({"targets": [target.clone()]})).unwrap();
        let array = Event::from_value(json!([target.clone()])).unwrap();
        assert_eq!(object, array);
        assert_eq!(object.targets, vec![Target::new("f", "q", 3)]);
        // serde's own Deserialize accepts both shapes too.
        let via_serde: Event = serde_json::from_value(json!([target])).unwrap();
        assert_eq!(via_serde, object);
    }

    #[test]
    fn event_errors_name_the_path() {
        let err = Event::from_value(json!({"targets": [
            {"function": "f", "qualifier": "q", "concurrency": 3},
            {"function": "g", "qualifier": "q", "concurrency": 0},
        ]}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "warm event: targets[1]: concurrency 0 is outside 1..=1000"
        );

        let err = Event::from_value(json!([
            {"function": "f", "qualifier": "q", "concurrency": 3, "hold": 5}
        ]))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("warm event: targets[0]"), "{text}");
        assert!(text.contains("unknown field `hold`"), "{text}");

        let err = Event::from_value(json!({"targets": [{"function": "f", "concurrency": 1}]}))
            .unwrap_err();
        assert!(
            err.to_string().contains("missing field `qualifier`"),
            "{err}"
        );

        let err = Event::from_value(json!({"target": []})).unwrap_err();
        assert!(err.to_string().contains("unknown field `target`"), "{err}");
    }

    #[test]
    fn events_without_targets_or_with_a_repeat_are_refused() {
        assert_eq!(
            Event::from_value(json!({"targets": []})),
            Err(Error::NoTargets)
        );
        assert_eq!(Event::from_value(json!([])), Err(Error::NoTargets));
        assert_eq!(
            Event::from_value(json!("warm")),
            Err(Error::EventShape { found: "a string" })
        );
        let target = json!({"function": "f", "qualifier": "q", "concurrency": 1});
        assert_eq!(
            Event::from_value(json!([target.clone(), target])),
            Err(Error::DuplicateTarget {
                function: "f".into(),
                qualifier: "q".into()
            })
        );
        assert!(Event::from_slice(b"{not json").is_err());
    }
}
