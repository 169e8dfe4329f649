//! DESIGN.md's warm-ping contract, the warmer's side: the ping it sends and the reply it
//! accepts.
//!
//! Ping: `{"up_warm": {"run": "<uuid>", "index": 3, "of": 20, "hold_ms": 75}}`.
//! Reply: `{"up_warm": {"instance": "<uuid>", "cold": true, "run": "<uuid>", "index": 3,
//! "uptime_ms": 1234, "invocations": 17, "app_restarts": 0}}`. A reply counts only when it has
//! that shape and echoes this ping's `run` and `index`; new fields are tolerated.

use serde::{Deserialize, Serialize};

use crate::error::PingError;

/// Longest excerpt of an unexpected payload kept in an error message.
const PAYLOAD_EXCERPT: usize = 300;

/// The ping: one key, `up_warm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub up_warm: PingBody,
}

/// The fields of a [`Ping`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingBody {
    /// The run's id: every ping of one [`crate::warm`] call carries the same one.
    pub run: String,
    /// This ping's position in the run, 0-based.
    pub index: u32,
    /// How many pings the run sends.
    pub of: u32,
    /// How long the environment should hold its reply.
    pub hold_ms: u64,
}

impl Ping {
    /// Ping `index` of `of` in run `run`.
    pub fn new(run: &str, index: u32, of: u32, hold_ms: u64) -> Self {
        Ping {
            up_warm: PingBody {
                run: run.to_owned(),
                index,
                of,
                hold_ms,
            },
        }
    }

    /// The Invoke payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings and integers into memory cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The reply: one key, `up_warm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub up_warm: ReplyBody,
}

/// The fields of a [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyBody {
    /// The execution environment's id, fixed for its life.
    pub instance: String,
    /// True when this ping was the environment's first invocation.
    pub cold: bool,
    /// The ping's `run`, echoed (`null` when the ping had none).
    pub run: Option<String>,
    /// The ping's `index`, echoed (`null` when the ping had none).
    pub index: Option<u64>,
    /// Milliseconds since the environment's bootstrap started.
    pub uptime_ms: u64,
    /// Invocations the environment has served, this one included.
    pub invocations: u64,
    /// Times the environment restarted its app.
    pub app_restarts: u32,
}

/// Reads the answer to `ping`: the Invoke's `FunctionError` (set when the invocation failed)
/// and its payload.
pub fn read_reply(
    ping: &PingBody,
    function_error: Option<&str>,
    payload: &[u8],
) -> Result<ReplyBody, PingError> {
    if let Some(kind) = function_error {
        return Err(function_failure(kind, payload));
    }
    let reply: Reply = serde_json::from_slice(payload).map_err(|_| PingError::NotAReply {
        payload: excerpt(payload),
    })?;
    let body = reply.up_warm;
    if body.instance.is_empty() {
        return Err(PingError::NotAReply {
            payload: excerpt(payload),
        });
    }
    if body.run.as_deref() != Some(ping.run.as_str()) || body.index != Some(u64::from(ping.index)) {
        return Err(PingError::Mismatch {
            run: ping.run.clone(),
            index: ping.index,
            got: format!(
                "run {} index {}",
                body.run.as_deref().unwrap_or("null"),
                body.index
                    .map_or_else(|| "null".to_owned(), |i| i.to_string())
            ),
        });
    }
    Ok(body)
}

/// The error of a failed invocation: Lambda's `{"errorType", "errorMessage"}` payload when it
/// has that shape, else the payload itself under the `FunctionError` kind (`Unhandled`).
fn function_failure(kind: &str, payload: &[u8]) -> PingError {
    #[derive(Deserialize)]
    struct LambdaError {
        #[serde(rename = "errorType", default)]
        error_type: Option<String>,
        #[serde(rename = "errorMessage", default)]
        error_message: Option<String>,
    }
    match serde_json::from_slice::<LambdaError>(payload) {
        Ok(LambdaError {
            error_type: Some(error_type),
            error_message,
        }) => PingError::Function {
            error_type,
            message: shorten(error_message.as_deref().unwrap_or_default()),
        },
        Ok(LambdaError {
            error_type: None,
            error_message: Some(message),
        }) => PingError::Function {
            error_type: kind.to_owned(),
            message: shorten(&message),
        },
        _ => PingError::Function {
            error_type: kind.to_owned(),
            message: excerpt(payload),
        },
    }
}

/// The start of `payload` as text, for an error message.
fn excerpt(payload: &[u8]) -> String {
    if payload.is_empty() {
        return "(empty)".to_owned();
    }
    shorten(&String::from_utf8_lossy(payload))
}

/// `text` cut to [`PAYLOAD_EXCERPT`] characters, marked when cut.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(PAYLOAD_EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ping() -> PingBody {
        Ping::new("run-1", 3, 20, 75).up_warm
    }

    fn reply(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn the_ping_has_the_contract_shape() {
        let bytes = Ping::new("r", 3, 20, 75).to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            value,
            json!({"up_warm": {"run": "r", "index": 3, "of": 20, "hold_ms": 75}})
        );
    }

    #[test]
    fn a_reply_of_the_contract_shape_is_accepted() {
        let payload = reply(json!({"up_warm": {
            "instance": "i-1", "cold": true, "run": "run-1", "index": 3,
            "uptime_ms": 1234, "invocations": 1, "app_restarts": 0, "new_field": "tolerated"
        }}));
        let body = read_reply(&ping(), None, &payload).unwrap();
        assert_eq!(body.instance, "i-1");
        assert!(body.cold);
        assert_eq!(body.uptime_ms, 1234);
    }

    #[test]
    fn a_function_error_keeps_its_type_and_message() {
        let payload = reply(json!({
            "errorType": "Up.UnsupportedEvent", "errorMessage": "event of no known shape"
        }));
        let err = read_reply(&ping(), Some("Unhandled"), &payload).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Up.UnsupportedEvent: event of no known shape"
        );

        let err = read_reply(&ping(), Some("Unhandled"), b"boom").unwrap_err();
        assert_eq!(err.to_string(), "Unhandled: boom");
    }

    #[test]
    fn other_payloads_are_not_replies() {
        // An HTTP response (the target is not the up bootstrap, or ignored the ping).
        let payload = reply(json!({"statusCode": 200, "body": "hello"}));
        let err = read_reply(&ping(), None, &payload).unwrap_err();
        assert!(matches!(err, PingError::NotAReply { .. }), "{err}");
        assert!(err.to_string().contains("statusCode"), "{err}");
        // A reply missing a field of the contract.
        let payload = reply(json!({"up_warm": {"instance": "i-1", "cold": true}}));
        assert!(matches!(
            read_reply(&ping(), None, &payload),
            Err(PingError::NotAReply { .. })
        ));
        assert_eq!(
            read_reply(&ping(), None, b"").unwrap_err().to_string(),
            "not a warm reply: (empty)"
        );
        let long = "x".repeat(1000);
        let err = read_reply(&ping(), None, long.as_bytes()).unwrap_err();
        assert!(err.to_string().chars().count() < 350, "{err}");
    }

    #[test]
    fn a_reply_to_another_ping_is_refused() {
        let payload = reply(json!({"up_warm": {
            "instance": "i-1", "cold": false, "run": "run-0", "index": 3,
            "uptime_ms": 1, "invocations": 2, "app_restarts": 0
        }}));
        let err = read_reply(&ping(), None, &payload).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reply to run run-0 index 3 (expected run run-1 index 3)"
        );
        let payload = reply(json!({"up_warm": {
            "instance": "i-1", "cold": false, "run": null, "index": null,
            "uptime_ms": 1, "invocations": 2, "app_restarts": 0
        }}));
        assert!(matches!(
            read_reply(&ping(), None, &payload),
            Err(PingError::Mismatch { .. })
        ));
    }
}
