//! Warm-up pings: answered by the bootstrap itself, never forwarded to the app.
//!
//! DESIGN.md fixes the format. The warmer sends `{"up_warm": {"run", "index", "of", "hold_ms"}}`;
//! other warmers' pings (`{"source": "serverless-plugin-warmup"}`, `{"warmer": true}`,
//! `{"type": "warmer"}`, an EventBridge `Scheduled Event`) are answered the same way. The reply
//! is held `hold_ms` (default 75, at most 1000) so that N concurrent pings occupy N execution
//! environments at once instead of queueing on one, and tells the warmer which environment
//! answered (`instance`, fixed for the life of the process) and whether this was its first
//! invocation (`cold`).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a reply is held when the ping does not say.
pub const DEFAULT_HOLD: Duration = Duration::from_millis(75);
/// The longest a reply is ever held, whatever the ping asks.
pub const MAX_HOLD: Duration = Duration::from_millis(1000);

/// What a ping asks. Every field is optional: other warmers send none of them.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct Ping {
    /// The warm run this ping belongs to, echoed back.
    #[serde(default)]
    pub run: Option<String>,
    /// This ping's position in the run, echoed back.
    #[serde(default)]
    pub index: Option<u64>,
    /// How many pings the run sent.
    #[serde(default)]
    pub of: Option<u64>,
    /// How long to hold the reply, in milliseconds.
    #[serde(default)]
    pub hold_ms: Option<u64>,
}

impl Ping {
    /// The ping inside an event's `up_warm` value; a value of another shape asks nothing.
    pub fn from_value(value: Option<&serde_json::Value>) -> Self {
        value
            .and_then(|v| Ping::deserialize(v).ok())
            .unwrap_or_default()
    }

    /// How long to hold the reply: `hold_ms`, default [`DEFAULT_HOLD`], capped at [`MAX_HOLD`].
    pub fn hold(&self) -> Duration {
        self.hold_ms
            .map_or(DEFAULT_HOLD, Duration::from_millis)
            .min(MAX_HOLD)
    }
}

/// What this execution environment has served so far.
#[derive(Debug)]
pub struct Environment {
    instance: String,
    started: Instant,
    invocations: AtomicU64,
}

/// One invocation as counted by [`Environment::invoked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Invocations served by this environment, this one included.
    pub invocations: u64,
    /// True only for the first invocation of any kind.
    pub cold: bool,
}

impl Environment {
    /// A new environment named `instance`, started now.
    pub fn new(instance: String) -> Self {
        Self {
            instance,
            started: Instant::now(),
            invocations: AtomicU64::new(0),
        }
    }

    /// The environment's instance id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Counts one invocation (of any kind) and says whether it was the first.
    pub fn invoked(&self) -> Count {
        let invocations = self.invocations.fetch_add(1, Ordering::Relaxed) + 1;
        Count {
            invocations,
            cold: invocations == 1,
        }
    }

    /// The reply to `ping`, counted as `count`, with `app_restarts` so far.
    pub fn reply(&self, ping: &Ping, count: Count, app_restarts: u32) -> Reply {
        Reply {
            up_warm: ReplyBody {
                instance: self.instance.clone(),
                cold: count.cold,
                run: ping.run.clone(),
                index: ping.index,
                uptime_ms: self.started.elapsed().as_millis() as u64,
                invocations: count.invocations,
                app_restarts,
            },
        }
    }
}

/// The reply of DESIGN.md's warm-ping contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The one key of the reply.
    pub up_warm: ReplyBody,
}

/// The fields of a [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyBody {
    /// This environment's id, fixed for the life of the process.
    pub instance: String,
    /// True only when this ping was the environment's first invocation.
    pub cold: bool,
    /// The ping's `run`, echoed (`null` when it had none).
    pub run: Option<String>,
    /// The ping's `index`, echoed (`null` when it had none).
    pub index: Option<u64>,
    /// Milliseconds since the bootstrap started.
    pub uptime_ms: u64,
    /// Invocations this environment has served, this one included.
    pub invocations: u64,
    /// How many times the app has been restarted.
    pub app_restarts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ping_fields_are_read_and_hold_is_capped() {
        let value = json!({"run": "r-1", "index": 3, "of": 20, "hold_ms": 5000});
        let ping = Ping::from_value(Some(&value));
        assert_eq!(ping.run.as_deref(), Some("r-1"));
        assert_eq!(ping.index, Some(3));
        assert_eq!(ping.of, Some(20));
        assert_eq!(ping.hold(), MAX_HOLD);
        assert_eq!(Ping::from_value(None).hold(), DEFAULT_HOLD);
        // Another warmer's odd `up_warm` value asks nothing rather than failing.
        assert_eq!(Ping::from_value(Some(&json!("yes"))), Ping::default());
        let zero = Ping::from_value(Some(&json!({"hold_ms": 0})));
        assert_eq!(zero.hold(), Duration::ZERO);
    }

    #[test]
    fn only_the_first_invocation_is_cold() {
        let env = Environment::new("inst-1".into());
        let first = env.invoked();
        let second = env.invoked();
        assert_eq!(
            (first, second),
            (
                Count {
                    invocations: 1,
                    cold: true
                },
                Count {
                    invocations: 2,
                    cold: false
                }
            )
        );
    }

    #[test]
    fn reply_has_the_contract_fields() {
        let env = Environment::new("inst-1".into());
        let ping = Ping::from_value(Some(&json!({"run": "r-1", "index": 3})));
        let count = env.invoked();
        let reply = serde_json::to_value(env.reply(&ping, count, 2)).unwrap();
        let body = &reply["up_warm"];
        assert_eq!(body["instance"], "inst-1");
        assert_eq!(body["cold"], true);
        assert_eq!(body["run"], "r-1");
        assert_eq!(body["index"], 3);
        assert_eq!(body["invocations"], 1);
        assert_eq!(body["app_restarts"], 2);
        assert!(body["uptime_ms"].is_u64());
        let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 7, "{keys:?}");
    }
}
