//! Looking at the raw event before `lambda_runtime` does.
//!
//! `lambda_runtime` stops its whole loop on an event that is not UTF-8, and reports one that is
//! not JSON with a Rust type name as its `errorType`. [`EventGuardLayer`] sits in front of it:
//! it reads the [`Probe`] of every event (the one pass over the raw JSON the handler needs
//! anyway, handed over through a slot so it is not done twice), and replaces an event that
//! cannot be read with a small JSON marker that the handler answers with `Up.InvalidEvent`.

use crate::event::Probe;
use bytes::Bytes;
use lambda_runtime::LambdaInvocation;
use lambda_runtime::tower::{Layer, Service};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The probe of one invocation, or why its event could not be read.
#[derive(Debug)]
pub struct Probed {
    /// The invocation it belongs to.
    pub request_id: String,
    /// The probe, or the reason the event is invalid.
    pub probe: Result<Probe, String>,
}

/// Where the guard leaves the probe for the handler.
pub type ProbeSlot = Arc<Mutex<Option<Probed>>>;

/// The key of the marker event that replaces an unreadable one.
pub const INVALID_EVENT_KEY: &str = "up_invalid_event";

/// Probes each event before `lambda_runtime` deserialises it.
#[derive(Debug, Clone)]
pub struct EventGuardLayer {
    slot: ProbeSlot,
}

impl EventGuardLayer {
    /// A layer leaving probes in `slot`.
    pub fn new(slot: ProbeSlot) -> Self {
        Self { slot }
    }
}

impl<S> Layer<S> for EventGuardLayer {
    type Service = EventGuard<S>;
    fn layer(&self, inner: S) -> EventGuard<S> {
        EventGuard {
            inner,
            slot: self.slot.clone(),
        }
    }
}

/// The service of [`EventGuardLayer`].
#[derive(Debug, Clone)]
pub struct EventGuard<S> {
    inner: S,
    slot: ProbeSlot,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for EventGuard<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let probe = probe(&invocation.body);
        if let Err(reason) = &probe {
            let marker = serde_json::json!({ INVALID_EVENT_KEY: reason });
            invocation.body = Bytes::from(marker.to_string());
        }
        let probed = Probed {
            request_id: invocation.context.request_id.clone(),
            probe,
        };
        *self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(probed);
        self.inner.call(invocation)
    }
}

/// The event's probe, or why it cannot be read.
pub fn probe(body: &[u8]) -> Result<Probe, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the event is not UTF-8: {e}"))?;
    Probe::read(text).map_err(|e| format!("the event is not a JSON object: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_events_have_reasons() {
        assert!(
            probe(b"not json")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            probe(b"{\"a\":\"\xff\"}")
                .unwrap_err()
                .contains("not UTF-8")
        );
        assert!(probe(b"{\"httpMethod\":\"GET\",\"requestContext\":{}}").is_ok());
    }
}
