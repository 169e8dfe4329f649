//! Warm-up fan-out: keep N execution environments of a function alive and count them.
//!
//! [`warm`] sends `target.concurrency` `Invoke` calls (RequestResponse) at once to one
//! function alias, each carrying DESIGN.md's warm ping
//! `{"up_warm": {"run", "index", "of", "hold_ms"}}`. The bootstrap answers a ping itself (the
//! app never sees it) and holds the reply `hold_ms`, so N pings in flight together occupy N
//! environments. Each reply names its environment (`instance`) and says whether that
//! environment was cold; the [`Report`] counts what came back: answered, distinct instances,
//! cold instances, throttled (`TooManyRequestsException`, e.g. reserved concurrency below N)
//! and errors, with the run's duration.
//!
//! Retries are off by default ([`Options`]): a retried ping lands on an environment that is
//! already warm and inflates the count.
//!
//! The `warmer` binary is a Lambda function ([`function`]) that a scheduled rule invokes with
//! a constant [`Event`] listing targets; it warms them in parallel, prints one JSON summary
//! line per target and one CloudWatch Embedded Metric Format line ([`metrics`]).
//!
//! # Layout
//! - `target`: [`Target`] and [`Event`], their JSON shape and validation.
//! - `ping`: the warm-ping contract: the ping sent, the reply accepted.
//! - `report`: [`Report`] and the counting of replies into it.
//! - `fanout`: [`Options`], [`client`] and [`warm`]: the N parallel Invokes.
//! - `metrics`: the Embedded Metric Format document of one report.
//! - `function`: the Lambda handler of the `warmer` binary.
//! - `error`: [`Error`] (bad targets and events) and [`PingError`] (one failed ping).

mod error;
mod fanout;
pub mod function;
pub mod metrics;
pub mod ping;
mod report;
mod target;

pub use error::{Error, PingError};
pub use fanout::{Options, client, warm};
pub use report::Report;
pub use target::{DEFAULT_HOLD_MS, Event, MAX_CONCURRENCY, Target};
