//! `redirects`: 3xx redirects and 200 rewrites by path pattern, as in apex/up.
//!
//! ```json
//! "redirects": {
//!   "/blog/:slug": {"location": "/posts/:slug", "status": 301},
//!   "/docs/*":     {"location": "/help/:splat", "status": 200},
//!   "/*":          {"location": "/index.html", "status": 200}
//! }
//! ```
//!
//! - The first rule (in up.json order) whose pattern matches the normalised path applies;
//!   `:name` and `:splat` in `location` take what the pattern captured (percent-encoded again).
//!   The request's query string is kept (appended with `&` when `location` has its own).
//! - `301`/`302`/`307`/`308` answer with `Location`; `200` rewrites the request's path (the
//!   app sees the original one in `X-Original-Path`) and sends it on to static files and the
//!   app, so `"/*": {"location": "/index.html", "status": 200}` serves a single-page app.
//! - Without `force`, a rule applies only where nothing exists: the request goes through
//!   first, and only a `404` (from static files or the app) is replaced by the redirect, or by
//!   the answer to the rewritten request. With `force`, the rule applies before anything else.
//!
//! Rules are checked at start-up: patterns, placeholders that the pattern does not capture, and
//! rewrites to anything but a path of this app are configuration errors.

use super::pattern::{Pattern, normalise};
use super::{Cause, Request, Response, StackError, text};
use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{StatusCode, Uri};
use percent_encoding::{AsciiSet, utf8_percent_encode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

static X_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-original-path");

/// What a captured value is escaped with before it goes into a path: what a request path
/// escapes, and `%` too (a captured value is decoded text); `/` stays, for splats.
const PATH_VALUE: &AsciiSet = &crate::request::PATH.add(b'%');

/// The layer for `up.json`'s `redirects`; passes everything through when there are none.
pub fn layer(config: &up_config::Config, _env: &crate::Env) -> Result<RedirectsLayer, StackError> {
    let rules = config
        .redirects
        .iter()
        .map(|(pattern, redirect)| {
            Rule::new(pattern, &redirect.location, redirect.status, redirect.force)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RedirectsLayer {
        rules: (!rules.is_empty()).then(|| rules.into()),
    })
}

/// Redirects and rewrites (see the module docs).
#[derive(Debug, Clone)]
pub struct RedirectsLayer {
    rules: Option<Arc<[Rule]>>,
}

impl<S> Layer<S> for RedirectsLayer {
    type Service = Redirects<S>;
    fn layer(&self, inner: S) -> Redirects<S> {
        Redirects {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// The service of [`RedirectsLayer`].
#[derive(Debug, Clone)]
pub struct Redirects<S> {
    inner: S,
    rules: Option<Arc<[Rule]>>,
}

/// One compiled rule.
#[derive(Debug)]
struct Rule {
    pattern: Pattern,
    location: Vec<Piece>,
    status: StatusCode,
    force: bool,
}

/// A part of `location`: text as written, or a placeholder.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Capture(String),
}

impl Rule {
    fn new(pattern: &str, location: &str, status: u16, force: bool) -> Result<Self, StackError> {
        let problem = |message: String| StackError::Config {
            key: format!("redirects.{pattern}"),
            message,
        };
        let compiled = Pattern::parse(pattern).map_err(problem)?;
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| matches!(s.as_u16(), 200 | 301 | 302 | 307 | 308))
            .ok_or_else(|| problem(format!("status {status} is not 301, 302, 307, 308 or 200")))?;
        if location.is_empty() {
            return Err(problem("location is empty".into()));
        }
        if status == StatusCode::OK && (!location.starts_with('/') || location.starts_with("//")) {
            return Err(problem(format!(
                "a rewrite (status 200) must point at a path of this app, such as \"/index.html\"; got {location:?}"
            )));
        }
        let captured = capture_names(pattern);
        let pieces = pieces(location);
        for piece in &pieces {
            if let Piece::Capture(name) = piece
                && !captured.iter().any(|c| c == name)
            {
                return Err(problem(format!(
                    "location uses :{name}, which the pattern does not capture (it captures: {})",
                    if captured.is_empty() {
                        "nothing".to_owned()
                    } else {
                        captured
                            .iter()
                            .map(|c| format!(":{c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )));
            }
            if let Piece::Text(text) = piece
                && HeaderValue::from_str(text).is_err()
            {
                return Err(problem(format!(
                    "location {location:?} has characters a URL cannot carry"
                )));
            }
        }
        Ok(Self {
            pattern: compiled,
            location: pieces,
            status,
            force,
        })
    }

    /// `location` with the captures filled in and `query` kept.
    fn target(&self, captures: &[(String, String)], query: Option<&str>) -> String {
        let mut target = String::new();
        for piece in &self.location {
            match piece {
                Piece::Text(text) => target.push_str(text),
                Piece::Capture(name) => {
                    let value = captures
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or("", |(_, v)| v.as_str());
                    target.extend(utf8_percent_encode(value, PATH_VALUE));
                }
            }
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(query);
        }
        target
    }
}

/// The names a pattern captures: each `:name` at a segment start, and `splat` for `*` (the
/// same rules as [`Pattern::parse`]).
fn capture_names(pattern: &str) -> Vec<String> {
    let mut names: Vec<String> = placeholders(pattern).collect();
    if pattern.contains('*') {
        names.push("splat".into());
    }
    names
}

/// Each `:name` that starts a segment (or the whole string).
fn placeholders(s: &str) -> impl Iterator<Item = String> + '_ {
    pieces(s).into_iter().filter_map(|p| match p {
        Piece::Capture(name) => Some(name),
        Piece::Text(_) => None,
    })
}

/// Splits `location` into text and `:name` placeholders; a `:` counts only at the start of a
/// segment, so `https://host:8080/` is text.
fn pieces(location: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = location.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_segment_start = i == 0 || location[..i].ends_with('/');
        if c == ':' && at_segment_start {
            let mut name = String::new();
            while let Some(&(_, n)) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                text.push(':');
                continue;
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Capture(name));
        } else {
            text.push(c);
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// The redirect answer.
fn redirect(status: StatusCode, target: &str) -> Response {
    let mut response = text(status, status.canonical_reason().unwrap_or("Redirect"));
    match HeaderValue::from_str(target) {
        Ok(location) => {
            response.headers_mut().insert(LOCATION, location);
            response
        }
        Err(_) => failed(target),
    }
}

/// `request` sent to `target` instead, with its original path in `X-Original-Path`; `None`
/// when `target` is not a valid URI.
fn rewrite(mut request: Request, target: &str) -> Option<Request> {
    let uri: Uri = target.parse().ok()?;
    if let Ok(original) = HeaderValue::from_str(request.uri().path()) {
        request
            .headers_mut()
            .insert(X_ORIGINAL_PATH.clone(), original);
    }
    *request.uri_mut() = uri;
    Some(request)
}

/// Rules are checked at start-up, so only a capture could make a target unusable.
fn failed(target: &str) -> Response {
    let message = format!("redirects: the target {target:?} is not a valid URL");
    let mut response = text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    response.extensions_mut().insert(Cause(message));
    response
}

fn copy(request: &Request) -> Request {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

impl<S> Service<Request> for Redirects<S>
where
    S: Service<Request, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RedirectFuture<S, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(rules) = &self.rules else {
            return RedirectFuture::Inner {
                inner: self.inner.call(request),
            };
        };
        let path = normalise(request.uri().path()).path;
        let matched = rules
            .iter()
            .find_map(|rule| Some((rule, rule.pattern.captures(&path)?)));
        let Some((rule, captures)) = matched else {
            return RedirectFuture::Inner {
                inner: self.inner.call(request),
            };
        };
        let target = rule.target(&captures, request.uri().query());
        let is_rewrite = rule.status == StatusCode::OK;
        match (rule.force, is_rewrite) {
            (true, false) => RedirectFuture::Ready {
                response: Some(redirect(rule.status, &target)),
            },
            (true, true) => match rewrite(request, &target) {
                Some(request) => RedirectFuture::Inner {
                    inner: self.inner.call(request),
                },
                None => RedirectFuture::Ready {
                    response: Some(failed(&target)),
                },
            },
            (false, false) => RedirectFuture::First {
                inner: self.inner.call(request),
                then: Some(Then::Redirect(rule.status, target)),
            },
            (false, true) => {
                let then = match rewrite(copy(&request), &target) {
                    Some(rewritten) => Then::Rewrite(self.inner.clone(), rewritten),
                    None => Then::Respond(failed(&target)),
                };
                RedirectFuture::First {
                    inner: self.inner.call(request),
                    then: Some(then),
                }
            }
        }
    }
}

/// What replaces a `404` for a rule without `force`.
#[derive(Debug)]
pub enum Then<S> {
    /// A redirect to this target.
    Redirect(StatusCode, String),
    /// The answer to this rewritten request, from a fresh clone of the inner service.
    Rewrite(S, Request),
    /// This answer (a target that could not be built).
    Respond(Response),
}

pin_project! {
    /// The future of [`Redirects`].
    #[project = RedirectProj]
    #[derive(Debug)]
    pub enum RedirectFuture<S, F> {
        /// The inner answer as it is.
        Inner { #[pin] inner: F },
        /// An answer made here.
        Ready { response: Option<Response> },
        /// The inner answer, unless it is a 404.
        First { #[pin] inner: F, then: Option<Then<S>> },
        /// Waiting for the inner service to take the rewritten request.
        Retry { service: S, request: Option<Request> },
    }
}

impl<S> Future for RedirectFuture<S, S::Future>
where
    S: Service<Request, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                RedirectProj::Inner { inner } => return inner.poll(cx),
                RedirectProj::Ready { response } => {
                    let response = response.take();
                    return Poll::Ready(Ok(response
                        .unwrap_or_else(|| panic!("RedirectFuture polled after completion"))));
                }
                RedirectProj::First { inner, then } => {
                    let response = ready!(inner.poll(cx))?;
                    if response.status() != StatusCode::NOT_FOUND {
                        return Poll::Ready(Ok(response));
                    }
                    match then.take() {
                        Some(Then::Redirect(status, target)) => {
                            return Poll::Ready(Ok(redirect(status, &target)));
                        }
                        Some(Then::Respond(response)) => return Poll::Ready(Ok(response)),
                        Some(Then::Rewrite(service, request)) => {
                            self.set(RedirectFuture::Retry {
                                service,
                                request: Some(request),
                            });
                        }
                        None => panic!("RedirectFuture polled after completion"),
                    }
                }
                RedirectProj::Retry { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    let Some(request) = request.take() else {
                        panic!("RedirectFuture polled after completion");
                    };
                    let inner = service.call(request);
                    self.set(RedirectFuture::Inner { inner });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::convert::Infallible;
    use std::sync::Mutex;
    use tower::ServiceExt;
    use up_config::Config;

    /// An app that records what it was asked and 404s for paths starting with `/missing`.
    fn app(
        seen: Arc<Mutex<Vec<String>>>,
    ) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send
    {
        tower::service_fn(move |req: Request| {
            let target = req.uri().to_string();
            let original = req
                .headers()
                .get("x-original-path")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.lock().unwrap().push(match original {
                Some(o) => format!("{target} (from {o})"),
                None => target.clone(),
            });
            let status = if target.starts_with("/missing") {
                404
            } else {
                200
            };
            let mut response = http::Response::new(Bytes::from(format!("app {target}")));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            async move { Ok::<_, Infallible>(response) }
        })
    }

    fn layer_from(json: &str) -> RedirectsLayer {
        let config: Config = serde_json::from_str(json).unwrap();
        layer(&config, &crate::Env::default()).unwrap()
    }

    fn error_of(json: &str) -> String {
        let config: Config = serde_json::from_str(json).unwrap();
        layer(&config, &crate::Env::default())
            .unwrap_err()
            .to_string()
    }

    async fn send(layer: &RedirectsLayer, uri: &str) -> (Response, Vec<String>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let response = layer
            .layer(app(seen.clone()))
            .oneshot(http::Request::get(uri).body(Bytes::new()).unwrap())
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        (response, seen)
    }

    #[tokio::test]
    async fn forced_redirects_answer_before_the_app_and_keep_the_query() {
        let layer = layer_from(
            r#"{"redirects": {
                "/blog/:slug": {"location": "/posts/:slug", "status": 301, "force": true},
                "/docs/*": {"location": "https://help.example.com/:splat?from=docs", "status": 308, "force": true}
            }}"#,
        );
        let (r, seen) = send(&layer, "/blog/hello?utm=x").await;
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()["location"], "/posts/hello?utm=x");
        assert_eq!(r.body(), "Moved Permanently\n");
        assert!(seen.is_empty());
        let (r, _) = send(&layer, "/docs/a/b%20c?q=1").await;
        assert_eq!(r.status(), 308);
        assert_eq!(
            r.headers()["location"],
            "https://help.example.com/a/b%20c?from=docs&q=1"
        );
        let (r, seen) = send(&layer, "/other").await;
        assert_eq!(r.status(), 200);
        assert_eq!(seen, ["/other"]);
    }

    #[tokio::test]
    async fn unforced_rules_apply_only_where_the_app_has_nothing() {
        let layer = layer_from(
            r#"{"redirects": {
                "/:page": {"location": "/new/:page", "status": 302}
            }}"#,
        );
        let (r, seen) = send(&layer, "/exists").await;
        assert_eq!(r.status(), 200);
        assert_eq!(seen, ["/exists"]);
        let (r, seen) = send(&layer, "/missing?a=1").await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "/new/missing?a=1");
        assert_eq!(seen, ["/missing?a=1"]);
    }

    #[tokio::test]
    async fn rewrites_change_the_path_the_app_sees() {
        let layer = layer_from(
            r#"{"redirects": {
                "/old/*": {"location": "/v2/:splat", "status": 200, "force": true},
                "/missing/:id": {"location": "/index.html", "status": 200}
            }}"#,
        );
        let (r, seen) = send(&layer, "/old/a/b?x=1").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.body(), "app /v2/a/b?x=1");
        assert_eq!(seen, ["/v2/a/b?x=1 (from /old/a/b)"]);
        // Not forced: the app answers first, and its 404 is replaced.
        let (r, seen) = send(&layer, "/missing/7").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.body(), "app /index.html");
        assert_eq!(seen, ["/missing/7", "/index.html (from /missing/7)"]);
    }

    #[tokio::test]
    async fn the_first_matching_rule_in_file_order_wins() {
        let layer = layer_from(
            r#"{"redirects": {
                "/*": {"location": "/all", "status": 301, "force": true},
                "/a": {"location": "/a-only", "status": 301, "force": true}
            }}"#,
        );
        assert_eq!(send(&layer, "/a").await.0.headers()["location"], "/all");
    }

    #[tokio::test]
    async fn rules_match_the_normalised_path() {
        let layer = layer_from(
            r#"{"redirects": {"/a/:x": {"location": "/b/:x", "status": 301, "force": true}}}"#,
        );
        let (r, _) = send(&layer, "/z/../a/%3Cq%3E").await;
        assert_eq!(r.headers()["location"], "/b/%3Cq%3E");
    }

    #[test]
    fn bad_rules_are_config_errors() {
        assert!(
            error_of(r#"{"redirects": {"/a": {"location": "/b/:id"}}}"#)
                .starts_with("redirects./a: location uses :id, which the pattern does not capture")
        );
        assert!(
            error_of(
                r#"{"redirects": {"/a/*": {"location": "https://x.example/", "status": 200}}}"#
            )
            .contains("a rewrite (status 200) must point at a path")
        );
        assert!(
            error_of(r#"{"redirects": {"a": {"location": "/b"}}}"#)
                .starts_with("redirects.a: path pattern")
        );
        // A port is not a placeholder.
        layer_from(r#"{"redirects": {"/a": {"location": "http://localhost:8080/a"}}}"#);
    }

    #[test]
    fn location_pieces() {
        assert_eq!(
            pieces("/p/:slug.html"),
            [
                Piece::Text("/p/".into()),
                Piece::Capture("slug".into()),
                Piece::Text(".html".into())
            ]
        );
        assert_eq!(
            pieces("https://h:80/"),
            [Piece::Text("https://h:80/".into())]
        );
        assert_eq!(capture_names("/a/:x/*"), ["x", "splat"]);
    }
}
