//! Rate limiting with `governor`: `"throttle": {"rate": 10, "per": "1s", "burst": 20,
//! "key": "ip", "exempt": ["/health"]}`.
//!
//! A request over the limit gets `429 Too Many Requests` with `Retry-After` (whole seconds,
//! rounded up) and a short body; it never reaches auth or the app. `key` chooses what a limit
//! is counted per: `ip` (the request context's source IP — never a client header such as
//! `X-Forwarded-For`), `header:<Name>` (e.g. an API key; requests without the header share one
//! limit), or `global`. `exempt` paths (matched on the normalised path, and only when it is
//! canonical) are never throttled.
//!
//! Limits are per execution environment: Lambda runs one request at a time per environment
//! and scales out by adding environments, each with its own counters. The throttle protects an
//! environment (and the app behind it) from one client's flood; it is not a global quota.
//!
//! Keyed state stays bounded: every [`PRUNE_EVERY`] checks, keys whose bucket has refilled
//! (indistinguishable from a new key) are dropped; if more than [`MAX_KEYS`] keys are still
//! recent, the state is reset (logged), so memory never grows with the number of distinct keys.

use super::pattern::{Patterns, normalise};
use super::{Meta, Request, Response, StackError, text};
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use http::StatusCode;
use http::header::{HeaderValue, RETRY_AFTER};
use pin_project_lite::pin_project;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};
use up_config::{Throttle as Config, ThrottleKey};

/// Checks between two prunes of idle keys.
pub const PRUNE_EVERY: u64 = 1024;
/// The most keys kept; beyond it the state is reset.
pub const MAX_KEYS: usize = 10_000;

type Limiter<C> =
    RateLimiter<String, HashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The throttle for `up.json`'s `throttle` (none: every request passes).
pub fn layer(config: &up_config::Config, env: &crate::Env) -> Result<ThrottleLayer, StackError> {
    let _ = env;
    config
        .throttle
        .as_ref()
        .map_or(Ok(ThrottleLayer { policy: None }), |t| {
            ThrottleLayer::with_clock(t, MonotonicClock)
        })
}

/// Adds rate limiting. `C` is the clock (a fake one in tests).
#[derive(Debug)]
pub struct ThrottleLayer<C: Clock = MonotonicClock> {
    policy: Option<Arc<Policy<C>>>,
}

impl<C: Clock> Clone for ThrottleLayer<C> {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
        }
    }
}

impl<C: Clock + Clone> ThrottleLayer<C> {
    /// The throttle `config` describes, on `clock`.
    pub fn with_clock(config: &Config, clock: C) -> Result<Self, StackError> {
        let invalid = |message: String| StackError::Config {
            key: "throttle".into(),
            message,
        };
        let rate = u32::try_from(config.rate.get()).unwrap_or(u32::MAX);
        let burst = config
            .burst
            .map_or(rate, |b| u32::try_from(b.get()).unwrap_or(u32::MAX));
        let period = config.per / rate.max(1);
        let quota = Quota::with_period(period)
            .ok_or_else(|| invalid(format!("rate {rate} per {:?} is too fast", config.per)))?
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let exempt = Patterns::parse(&config.exempt).map_err(invalid)?;
        Ok(Self {
            policy: Some(Arc::new(Policy {
                limiter: Mutex::new(RateLimiter::hashmap_with_clock(quota, clock.clone())),
                quota,
                clock,
                key: config.key.clone(),
                exempt,
                describe: format!("{rate} per {}", describe(config.per)),
                checks: AtomicU64::new(0),
            })),
        })
    }

    /// How many keys the throttle holds state for now.
    pub fn keys(&self) -> usize {
        self.policy.as_ref().map_or(0, |p| p.lock().len())
    }
}

/// `1s`, `1m`, `250ms`.
fn describe(per: Duration) -> String {
    if per.subsec_millis() == 0 && per.as_secs().is_multiple_of(60) && per.as_secs() > 0 {
        format!("{}m", per.as_secs() / 60)
    } else if per.subsec_millis() == 0 {
        format!("{}s", per.as_secs())
    } else {
        format!("{}ms", per.as_millis())
    }
}

/// The limiter and what it keys on.
#[derive(Debug)]
struct Policy<C: Clock> {
    limiter: Mutex<Limiter<C>>,
    quota: Quota,
    clock: C,
    key: ThrottleKey,
    exempt: Patterns,
    describe: String,
    checks: AtomicU64,
}

impl<C: Clock + Clone> Policy<C> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Limiter<C>> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key `request` is counted under, or `None` when it is exempt.
    fn key(&self, request: &Request) -> Option<String> {
        if !self.exempt.is_empty() {
            let path = normalise(request.uri().path());
            if path.canonical && self.exempt.matches(&path.path) {
                return None;
            }
        }
        Some(match &self.key {
            ThrottleKey::Global => String::new(),
            ThrottleKey::Ip => request
                .extensions()
                .get::<Meta>()
                .and_then(|m| m.source_ip.clone())
                .unwrap_or_default(),
            ThrottleKey::Header(name) => request
                .headers()
                .get(name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
        })
    }

    /// `Ok` when `key` may go on, else how long until it may.
    fn check(&self, key: &String) -> Result<(), Duration> {
        let n = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        let limiter = self.lock();
        let outcome = limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()));
        if n.is_multiple_of(PRUNE_EVERY) || limiter.len() > MAX_KEYS {
            drop(limiter);
            self.prune();
        }
        outcome
    }

    /// Drops keys that have refilled; resets the state when too many are still recent.
    fn prune(&self) {
        let mut limiter = self.lock();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        let left = limiter.len();
        if left > MAX_KEYS {
            *limiter = RateLimiter::hashmap_with_clock(self.quota, self.clock.clone());
            tracing::warn!(
                keys = left,
                max = MAX_KEYS,
                "throttle: too many distinct keys at once; state reset"
            );
        }
    }
}

impl<S, C: Clock> Layer<S> for ThrottleLayer<C> {
    type Service = Throttle<S, C>;
    fn layer(&self, inner: S) -> Throttle<S, C> {
        Throttle {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of [`ThrottleLayer`].
#[derive(Debug)]
pub struct Throttle<S, C: Clock = MonotonicClock> {
    inner: S,
    policy: Option<Arc<Policy<C>>>,
}

impl<S: Clone, C: Clock> Clone for Throttle<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<S, C> Service<Request> for Throttle<S, C>
where
    S: Service<Request, Response = Response>,
    C: Clock + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ThrottleFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(policy) = &self.policy
            && let Some(key) = policy.key(&request)
            && let Err(wait) = policy.check(&key)
        {
            return ThrottleFuture::Reject {
                response: Some(too_many(&policy.describe, wait)),
            };
        }
        ThrottleFuture::Inner {
            future: self.inner.call(request),
        }
    }
}

/// `429` with `Retry-After` in whole seconds, rounded up (at least 1).
fn too_many(limit: &str, wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = text(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Too Many Requests: over the limit of {limit}; retry in {seconds} s"),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

pin_project! {
    /// The future of [`Throttle`]: the refusal, or the inner service's.
    #[project = ThrottleProj]
    #[derive(Debug)]
    pub enum ThrottleFuture<F> {
        /// Over the limit.
        Reject { response: Option<Response> },
        /// Let through.
        Inner { #[pin] future: F },
    }
}

impl<F, E> Future for ThrottleFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ThrottleProj::Reject { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            ThrottleProj::Inner { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use governor::clock::FakeRelativeClock;
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;
    use tower::ServiceExt;

    fn config(json: serde_json::Value) -> Config {
        serde_json::from_value(json).unwrap()
    }

    /// A throttle on a fake clock over an app that counts the requests it sees.
    fn throttle(
        json: serde_json::Value,
    ) -> (
        FakeRelativeClock,
        ThrottleLayer<FakeRelativeClock>,
        Arc<AtomicUsize>,
    ) {
        let clock = FakeRelativeClock::default();
        let layer = ThrottleLayer::with_clock(&config(json), clock.clone()).unwrap();
        (clock, layer, Arc::new(AtomicUsize::new(0)))
    }

    async fn send(
        layer: &ThrottleLayer<FakeRelativeClock>,
        seen: &Arc<AtomicUsize>,
        ip: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let seen = seen.clone();
        let app = tower::service_fn(move |_r: Request| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Bytes::from_static(b"ok"))) }
        });
        let mut request = http::Request::builder().uri(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut request = request.body(Bytes::new()).unwrap();
        request.extensions_mut().insert(Meta {
            shape: crate::event::Shape::ApiGatewayV2,
            source_ip: Some(ip.to_owned()),
            request_id: "r".into(),
            cold: false,
            budget: Duration::from_secs(1),
        });
        layer.layer(app).oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn over_the_limit_is_429_with_retry_after_and_never_reaches_the_app() {
        let (clock, layer, seen) =
            throttle(serde_json::json!({"rate": 2, "per": "10s", "burst": 2}));
        for _ in 0..2 {
            assert_eq!(send(&layer, &seen, "1.1.1.1", "/", &[]).await.status(), 200);
        }
        let refused = send(&layer, &seen, "1.1.1.1", "/", &[]).await;
        assert_eq!(refused.status(), 429);
        // One token every 5 s: the next is 5 s away.
        assert_eq!(refused.headers()[RETRY_AFTER], "5");
        let body = String::from_utf8(refused.body().to_vec()).unwrap();
        assert!(body.contains("2 per 10s"), "{body}");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        // Another IP has its own limit; the first one refills with time.
        assert_eq!(send(&layer, &seen, "2.2.2.2", "/", &[]).await.status(), 200);
        clock.advance(Duration::from_millis(4_200));
        let refused = send(&layer, &seen, "1.1.1.1", "/", &[]).await;
        assert_eq!(refused.headers()[RETRY_AFTER], "1", "0.8 s rounds up");
        clock.advance(Duration::from_millis(800));
        assert_eq!(send(&layer, &seen, "1.1.1.1", "/", &[]).await.status(), 200);
    }

    #[tokio::test]
    async fn ip_keys_ignore_forwarded_headers() {
        let (_clock, layer, seen) = throttle(serde_json::json!({"rate": 1, "per": "1m"}));
        assert_eq!(send(&layer, &seen, "1.1.1.1", "/", &[]).await.status(), 200);
        let spoofed = [("x-forwarded-for", "9.9.9.9"), ("x-real-ip", "9.9.9.9")];
        assert_eq!(
            send(&layer, &seen, "1.1.1.1", "/", &spoofed).await.status(),
            429
        );
    }

    #[tokio::test]
    async fn header_and_global_keys() {
        let (_c, layer, seen) =
            throttle(serde_json::json!({"rate": 1, "per": "1m", "key": "header:X-Api-Key"}));
        let a = [("x-api-key", "a")];
        let b = [("x-api-key", "b")];
        assert_eq!(send(&layer, &seen, "1.1.1.1", "/", &a).await.status(), 200);
        assert_eq!(send(&layer, &seen, "2.2.2.2", "/", &a).await.status(), 429);
        assert_eq!(send(&layer, &seen, "1.1.1.1", "/", &b).await.status(), 200);

        let (_c, layer, seen) =
            throttle(serde_json::json!({"rate": 1, "per": "1m", "key": "global"}));
        assert_eq!(send(&layer, &seen, "1.1.1.1", "/", &[]).await.status(), 200);
        assert_eq!(send(&layer, &seen, "2.2.2.2", "/", &[]).await.status(), 429);
    }

    #[tokio::test]
    async fn exempt_paths_are_never_throttled_unless_disguised() {
        let (_c, layer, seen) =
            throttle(serde_json::json!({"rate": 1, "per": "1m", "exempt": ["/health"]}));
        assert_eq!(send(&layer, &seen, "1.1.1.1", "/", &[]).await.status(), 200);
        for _ in 0..5 {
            assert_eq!(
                send(&layer, &seen, "1.1.1.1", "/health", &[])
                    .await
                    .status(),
                200
            );
        }
        assert_eq!(
            send(&layer, &seen, "1.1.1.1", "/health/../api", &[])
                .await
                .status(),
            429
        );
    }

    #[tokio::test]
    async fn state_stays_bounded_with_100k_distinct_keys() {
        let (clock, layer, seen) = throttle(serde_json::json!({"rate": 10, "per": "1s"}));
        // Keys arriving over time: idle ones are pruned as they refill.
        for i in 0..100_000u32 {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            send(&layer, &seen, &ip, "/", &[]).await;
            clock.advance(Duration::from_micros(200));
        }
        assert!(layer.keys() <= MAX_KEYS, "{} keys held", layer.keys());
        assert!(
            layer.keys() < 2 * PRUNE_EVERY as usize,
            "{} keys held",
            layer.keys()
        );

        // Keys all at once (no time passes): the state is reset rather than grown.
        let (_clock, layer, seen) = throttle(serde_json::json!({"rate": 10, "per": "1s"}));
        for i in 0..100_000u32 {
            send(&layer, &seen, &format!("k{i}"), "/", &[]).await;
        }
        assert!(layer.keys() <= MAX_KEYS + 1, "{} keys held", layer.keys());
        assert_eq!(
            seen.load(Ordering::SeqCst),
            100_000,
            "new keys are never refused"
        );
    }
}
