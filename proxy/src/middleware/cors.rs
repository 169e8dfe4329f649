//! `cors`: cross-origin resource sharing, by tower-http's CORS layer built from up.json.
//!
//! ```json
//! "cors": {"allowed_origins": ["https://app.example.com"], "allow_credentials": true}
//! ```
//!
//! `"cors": true` (or `{}`) allows any origin with apex/up's defaults. Without `cors` (or with
//! `"enable": false`) no CORS header is ever added and requests pass untouched.
//!
//! A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here, without the
//! app; other requests go on and get the CORS headers added to their response.
//!
//! The browser forbids `*` together with credentials, so with `allow_credentials` a `*` in
//! `allowed_origins`, `allowed_methods` or `allowed_headers` mirrors the request instead (as
//! apex/up's rs/cors does); `exposed_headers: ["*"]` with credentials is a configuration
//! error. An origin with one `*` inside (`https://*.example.com`) matches any text in its place.
//! `debug` logs one line per cross-origin request: its origin, whether it was a preflight, and
//! whether it was allowed.

use super::{Request, Response, StackError};
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{HeaderName, HeaderValue, Method};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tower::util::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, ExposeHeaders};

/// The layer for `up.json`'s `cors`.
pub fn layer(config: &up_config::Config, _env: &crate::Env) -> Result<CorsLayer, StackError> {
    match &config.cors {
        Some(cors) if cors.enable => CorsLayer::new(cors),
        _ => Ok(CorsLayer {
            cors: None,
            debug: false,
        }),
    }
}

/// CORS (see the module docs).
#[derive(Debug, Clone)]
pub struct CorsLayer {
    cors: Option<tower_http::cors::CorsLayer>,
    debug: bool,
}

impl CorsLayer {
    /// The layer for a `cors` section.
    pub fn new(config: &up_config::Cors) -> Result<Self, StackError> {
        let credentials = config.allow_credentials;
        let wildcard = |list: &[String]| list.iter().any(|v| v == "*");

        let origins = if wildcard(&config.allowed_origins) {
            if credentials {
                AllowOrigin::mirror_request()
            } else {
                AllowOrigin::any()
            }
        } else {
            let origins = config
                .allowed_origins
                .iter()
                .map(|o| OriginRule::parse(o))
                .collect::<Result<Vec<_>, _>>()?;
            if origins.iter().all(|o| matches!(o, OriginRule::Exact(_))) {
                AllowOrigin::list(origins.into_iter().filter_map(|o| match o {
                    OriginRule::Exact(value) => Some(value),
                    OriginRule::Wildcard(..) => None,
                }))
            } else {
                AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                    origins.iter().any(|rule| rule.matches(origin))
                })
            }
        };

        let methods = if wildcard(&config.allowed_methods) {
            if credentials {
                AllowMethods::mirror_request()
            } else {
                AllowMethods::any()
            }
        } else {
            AllowMethods::list(
                config
                    .allowed_methods
                    .iter()
                    .map(|m| {
                        Method::from_bytes(m.as_bytes()).map_err(|_| {
                            problem(
                                "cors.allowed_methods",
                                format!("{m:?} is not an HTTP method"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };

        let headers = if wildcard(&config.allowed_headers) {
            if credentials {
                AllowHeaders::mirror_request()
            } else {
                AllowHeaders::any()
            }
        } else {
            AllowHeaders::list(names("cors.allowed_headers", &config.allowed_headers)?)
        };

        let exposed = if wildcard(&config.exposed_headers) {
            if credentials {
                return Err(problem(
                    "cors.exposed_headers",
                    "\"*\" cannot be combined with allow_credentials (browsers refuse it); list the headers".into(),
                ));
            }
            ExposeHeaders::any()
        } else {
            ExposeHeaders::list(names("cors.exposed_headers", &config.exposed_headers)?)
        };

        let mut cors = tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(methods)
            .allow_headers(headers)
            .expose_headers(exposed)
            .allow_credentials(credentials);
        if config.max_age > 0 {
            cors = cors.max_age(Duration::from_secs(u64::from(config.max_age)));
        }
        Ok(Self {
            cors: Some(cors),
            debug: config.debug,
        })
    }
}

fn problem(key: &str, message: String) -> StackError {
    StackError::Config {
        key: key.into(),
        message,
    }
}

fn names(key: &str, list: &[String]) -> Result<Vec<HeaderName>, StackError> {
    list.iter()
        .map(|h| {
            HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| problem(key, format!("{h:?} is not a header name")))
        })
        .collect()
}

/// One entry of `allowed_origins`.
#[derive(Debug, Clone)]
enum OriginRule {
    Exact(HeaderValue),
    /// The text before and after the one `*`.
    Wildcard(String, String),
}

impl OriginRule {
    fn parse(origin: &str) -> Result<Self, StackError> {
        let bad = |why: &str| {
            problem(
                "cors.allowed_origins",
                format!("{origin:?} {why}; expected an origin such as \"https://example.com\""),
            )
        };
        match origin.split_once('*') {
            None => HeaderValue::from_str(origin)
                .map(Self::Exact)
                .map_err(|_| bad("is not a valid origin")),
            Some((_, after)) if after.contains('*') => Err(bad("has more than one \"*\"")),
            Some((before, after)) => Ok(Self::Wildcard(
                before.to_ascii_lowercase(),
                after.to_ascii_lowercase(),
            )),
        }
    }

    fn matches(&self, origin: &HeaderValue) -> bool {
        match self {
            Self::Exact(value) => value.as_bytes().eq_ignore_ascii_case(origin.as_bytes()),
            Self::Wildcard(before, after) => origin.to_str().is_ok_and(|o| {
                let o = o.to_ascii_lowercase();
                o.len() >= before.len() + after.len()
                    && o.starts_with(before.as_str())
                    && o.ends_with(after.as_str())
            }),
        }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;
    fn layer(&self, inner: S) -> Cors<S> {
        match &self.cors {
            Some(cors) => Cors {
                inner: Either::Left(cors.layer(inner)),
                debug: self.debug,
            },
            None => Cors {
                inner: Either::Right(inner),
                debug: false,
            },
        }
    }
}

/// The service of [`CorsLayer`].
#[derive(Debug, Clone)]
pub struct Cors<S> {
    inner: Either<tower_http::cors::Cors<S>, S>,
    debug: bool,
}

impl<S> Service<Request> for Cors<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CorsFuture<<Either<tower_http::cors::Cors<S>, S> as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let line = if self.debug {
            request.headers().get(ORIGIN).map(|origin| Line {
                origin: String::from_utf8_lossy(origin.as_bytes()).into_owned(),
                method: request.method().clone(),
                preflight: request.method() == Method::OPTIONS
                    && request
                        .headers()
                        .contains_key(ACCESS_CONTROL_REQUEST_METHOD),
            })
        } else {
            None
        };
        CorsFuture {
            inner: self.inner.call(request),
            line,
        }
    }
}

/// What `debug` logs about a cross-origin request.
#[derive(Debug)]
struct Line {
    origin: String,
    method: Method,
    preflight: bool,
}

pin_project! {
    /// The future of [`Cors`]: tower-http's, plus the `debug` line.
    #[derive(Debug)]
    pub struct CorsFuture<F> {
        #[pin]
        inner: F,
        line: Option<Line>,
    }
}

impl<F, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Some(line), Ok(response)) = (this.line.take(), &result) {
            let allowed = response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN);
            tracing::info!(
                origin = %line.origin,
                method = %line.method,
                preflight = line.preflight,
                allowed,
                status = response.status().as_u16(),
                "cors"
            );
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;
    use up_config::Config;

    async fn send(json: &str, request: http::request::Builder) -> (Response, usize) {
        let config: Config = serde_json::from_str(json).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = tower::service_fn(move |_req: Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(http::Response::new(Bytes::from("app"))) }
        });
        let response = layer(&config, &crate::Env::default())
            .unwrap()
            .layer(app)
            .oneshot(request.body(Bytes::new()).unwrap())
            .await
            .unwrap();
        (response, calls.load(Ordering::SeqCst))
    }

    fn preflight(origin: &str) -> http::request::Builder {
        http::Request::builder()
            .method("OPTIONS")
            .uri("/api")
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "x-token")
    }

    #[tokio::test]
    async fn without_cors_nothing_is_added() {
        for json in ["{}", r#"{"cors": false}"#, r#"{"cors": {"enable": false}}"#] {
            let (r, calls) = send(json, preflight("https://a.example")).await;
            assert!(
                !r.headers()
                    .keys()
                    .any(|k| k.as_str().starts_with("access-control-")),
                "{json}: {:?}",
                r.headers()
            );
            assert_eq!(calls, 1, "{json}: the app answers OPTIONS itself");
        }
    }

    #[tokio::test]
    async fn defaults_allow_any_origin() {
        let (r, calls) = send(r#"{"cors": true}"#, preflight("https://a.example")).await;
        assert_eq!(calls, 0, "a preflight never reaches the app");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let methods = r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(methods.contains("PUT"), "{methods}");
        assert_eq!(r.headers()["access-control-allow-headers"], "*");

        let simple = http::Request::get("/api").header("origin", "https://a.example");
        let (r, calls) = send(r#"{"cors": true}"#, simple).await;
        assert_eq!(calls, 1);
        assert_eq!(r.body(), "app");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
    }

    #[tokio::test]
    async fn listed_and_wildcard_origins_with_credentials() {
        let json = r#"{"cors": {
            "allowed_origins": ["https://app.example.com", "https://*.preview.example.com"],
            "allowed_methods": ["GET", "PUT"],
            "allowed_headers": ["*"],
            "exposed_headers": ["X-Total"],
            "allow_credentials": true,
            "max_age": 600
        }}"#;
        let (r, _) = send(json, preflight("https://app.example.com")).await;
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        assert_eq!(r.headers()["access-control-allow-headers"], "x-token");
        assert_eq!(r.headers()["access-control-max-age"], "600");
        let (r, _) = send(json, preflight("https://pr-7.preview.example.com")).await;
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://pr-7.preview.example.com"
        );
        let (r, _) = send(json, preflight("https://evil.example")).await;
        assert!(!r.headers().contains_key("access-control-allow-origin"));

        let simple = http::Request::get("/").header("origin", "https://app.example.com");
        let (r, _) = send(json, simple).await;
        assert_eq!(r.headers()["access-control-expose-headers"], "x-total");
    }

    #[test]
    fn unusable_settings_are_config_errors() {
        let error = |json: &str| {
            let config: Config = serde_json::from_str(json).unwrap();
            layer(&config, &crate::Env::default())
                .unwrap_err()
                .to_string()
        };
        assert!(
            error(r#"{"cors": {"exposed_headers": ["*"], "allow_credentials": true}}"#)
                .starts_with("cors.exposed_headers: ")
        );
        assert!(
            error(r#"{"cors": {"allowed_methods": ["GE T"]}}"#)
                .starts_with("cors.allowed_methods: ")
        );
        assert!(
            error(r#"{"cors": {"allowed_origins": ["https://*.*.example"]}}"#)
                .contains("more than one")
        );
    }
}
