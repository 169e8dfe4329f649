//! `headers`: response headers by path pattern, and `X-Robots-Tag: none` outside production.
//!
//! ```json
//! "headers": {
//!   "/*":       {"X-Frame-Options": "DENY"},
//!   "/*.css":   {"Cache-Control": "public, max-age=3600"}
//! }
//! ```
//!
//! Every rule whose pattern matches the request's normalised path (as the client sent it,
//! before any rewrite) sets its headers on the response, whoever answered it (the app, a static
//! file, an error page, a redirect). Rules apply in up.json order, so a later rule overrides an
//! earlier one for the same header; a rule's header replaces the response's own.
//!
//! As apex/up does, every stage but `production` (`UP_STAGE`) adds `X-Robots-Tag: none`, so
//! staging copies of a site stay out of search engines; a response that sets its own
//! `X-Robots-Tag` keeps it.

use super::pattern::{Pattern, normalise};
use super::{Request, Response, StackError};
use http::header::{HeaderName, HeaderValue};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

static X_ROBOTS_TAG: HeaderName = HeaderName::from_static("x-robots-tag");

/// The layer for `up.json`'s `headers` and the stage's robots rule.
pub fn layer(config: &up_config::Config, env: &crate::Env) -> Result<HeadersLayer, StackError> {
    let rules = config
        .headers
        .iter()
        .map(|(pattern, fields)| Rule::new(pattern, fields))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HeadersLayer {
        rules: rules.into(),
        robots: env.stage() != Some("production"),
    })
}

/// Sets headers by path pattern (see the module docs).
#[derive(Debug, Clone)]
pub struct HeadersLayer {
    rules: Arc<[Rule]>,
    robots: bool,
}

impl<S> Layer<S> for HeadersLayer {
    type Service = Headers<S>;
    fn layer(&self, inner: S) -> Headers<S> {
        Headers {
            inner,
            rules: self.rules.clone(),
            robots: self.robots,
        }
    }
}

/// The service of [`HeadersLayer`].
#[derive(Debug, Clone)]
pub struct Headers<S> {
    inner: S,
    rules: Arc<[Rule]>,
    robots: bool,
}

#[derive(Debug)]
struct Rule {
    pattern: Pattern,
    fields: Vec<(HeaderName, HeaderValue)>,
}

impl Rule {
    fn new(
        pattern: &str,
        fields: &up_config::value::OrderedMap<String>,
    ) -> Result<Self, StackError> {
        let problem = |key: String, message: String| StackError::Config { key, message };
        let compiled =
            Pattern::parse(pattern).map_err(|m| problem(format!("headers.{pattern}"), m))?;
        let fields = fields
            .iter()
            .map(|(name, value)| {
                let key = format!("headers.{pattern}.{name}");
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| problem(key.clone(), "not a valid header name".into()))?;
                let value = HeaderValue::from_str(value).map_err(|_| {
                    problem(key, "not a valid header value (control characters?)".into())
                })?;
                Ok((name, value))
            })
            .collect::<Result<_, StackError>>()?;
        Ok(Self {
            pattern: compiled,
            fields,
        })
    }
}

impl<S> Service<Request> for Headers<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = HeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut matched = Vec::new();
        if !self.rules.is_empty() {
            let path = normalise(request.uri().path()).path;
            matched.extend(
                self.rules
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| rule.pattern.matches(&path))
                    .map(|(i, _)| i),
            );
        }
        let rules = (!matched.is_empty()).then(|| self.rules.clone());
        HeadersFuture {
            inner: self.inner.call(request),
            rules,
            matched,
            robots: self.robots,
        }
    }
}

pin_project! {
    /// The future of [`Headers`].
    #[derive(Debug)]
    pub struct HeadersFuture<F> {
        #[pin]
        inner: F,
        rules: Option<Arc<[Rule]>>,
        matched: Vec<usize>,
        robots: bool,
    }
}

impl<F, E> Future for HeadersFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let Ok(response) = result.as_mut() {
            let headers = response.headers_mut();
            if let Some(rules) = this.rules.take() {
                for rule in this.matched.iter().filter_map(|&i| rules.get(i)) {
                    for (name, value) in &rule.fields {
                        headers.insert(name.clone(), value.clone());
                    }
                }
            }
            if *this.robots && !headers.contains_key(&X_ROBOTS_TAG) {
                headers.insert(X_ROBOTS_TAG.clone(), HeaderValue::from_static("none"));
            }
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::convert::Infallible;
    use tower::ServiceExt;
    use up_config::Config;

    fn env(stage: Option<&str>) -> crate::Env {
        stage
            .map(|s| ("UP_STAGE".to_owned(), s.to_owned()))
            .into_iter()
            .collect()
    }

    async fn send(layer: &HeadersLayer, uri: &str, app_headers: &[(&str, &str)]) -> Response {
        let mut response = http::Response::new(Bytes::from("app"));
        for (k, v) in app_headers {
            response.headers_mut().insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let app = tower::service_fn(move |_req: Request| {
            let response = response.clone();
            async move { Ok::<_, Infallible>(response) }
        });
        layer
            .layer(app)
            .oneshot(http::Request::get(uri).body(Bytes::new()).unwrap())
            .await
            .unwrap()
    }

    fn layer_from(json: &str, stage: Option<&str>) -> HeadersLayer {
        let config: Config = serde_json::from_str(json).unwrap();
        layer(&config, &env(stage)).unwrap()
    }

    #[tokio::test]
    async fn matching_rules_set_headers_later_ones_winning() {
        let layer = layer_from(
            r#"{"headers": {
                "/*": {"X-Frame-Options": "DENY", "Cache-Control": "no-store"},
                "/*.css": {"Cache-Control": "public, max-age=3600"},
                "/api/:name": {"X-Api": "yes"}
            }}"#,
            Some("production"),
        );
        let css = send(&layer, "/css/site.css", &[("cache-control", "private")]).await;
        assert_eq!(css.headers()["cache-control"], "public, max-age=3600");
        assert_eq!(css.headers()["x-frame-options"], "DENY");
        assert!(!css.headers().contains_key("x-api"));
        let api = send(&layer, "/api/users", &[]).await;
        assert_eq!(api.headers()["x-api"], "yes");
        assert_eq!(api.headers()["cache-control"], "no-store");
        // The normalised path is what rules see.
        let tricky = send(&layer, "/api/x/../users", &[]).await;
        assert_eq!(tricky.headers()["x-api"], "yes");
    }

    #[tokio::test]
    async fn robots_are_kept_out_everywhere_but_production() {
        for stage in [Some("staging"), Some("development"), None] {
            let r = send(&layer_from("{}", stage), "/", &[]).await;
            assert_eq!(r.headers()["x-robots-tag"], "none", "{stage:?}");
        }
        let r = send(&layer_from("{}", Some("production")), "/", &[]).await;
        assert!(!r.headers().contains_key("x-robots-tag"));
        let own = send(
            &layer_from("{}", Some("staging")),
            "/",
            &[("x-robots-tag", "noindex")],
        )
        .await;
        assert_eq!(own.headers()["x-robots-tag"], "noindex");
    }

    #[test]
    fn bad_rules_are_config_errors() {
        let config: Config =
            serde_json::from_str(r#"{"headers": {"/*": {"Bad Name": "x"}}}"#).unwrap();
        let e = layer(&config, &env(None)).unwrap_err().to_string();
        assert_eq!(e, "headers./*.Bad Name: not a valid header name");
        let config: Config =
            serde_json::from_str(r#"{"headers": {"/*": {"X-A": "a\nb"}}}"#).unwrap();
        let e = layer(&config, &env(None)).unwrap_err().to_string();
        assert!(
            e.starts_with("headers./*.X-A: not a valid header value"),
            "{e}"
        );
        let config: Config =
            serde_json::from_str(r#"{"headers": {"*.css": {"X-A": "a"}}}"#).unwrap();
        assert!(layer(&config, &env(None)).is_err());
    }
}
