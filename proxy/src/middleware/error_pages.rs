//! `error_pages`: HTML pages instead of the app's error bodies, for clients that ask for HTML.
//!
//! ```json
//! "error_pages": {"enable": true, "dir": "errors", "variables": {"support_email": "help@example.com"}}
//! ```
//!
//! When a response's status is 400 or more and the request's `Accept` names `text/html` (or
//! `text/*`) with a non-zero quality, its body is replaced by the first template that exists of
//! `<dir>/<CODE>.html`, `<dir>/<N>xx.html`, `<dir>/error.html`, and else by a built-in page. The
//! status and the response's other headers (`WWW-Authenticate`, `Retry-After`, cookies, ...)
//! stay; `Content-Type` becomes `text/html; charset=utf-8`, `Vary: Accept` is added, and the
//! validators and encoding of the old body (`ETag`, `Last-Modified`, `Content-Encoding`, ...) go.
//! The bootstrap's own failures (`502` when the app died, `504` when it was too slow) get pages
//! too, and keep their [`super::Cause`] for the access log.
//!
//! Left as they are, on purpose:
//! - responses that are already HTML: the app's own designed error page wins (apex/up replaced
//!   them; we prefer not to throw away a page someone wrote);
//! - clients whose `Accept` is only `*/*` (`fetch()`, `curl`): a script calling a JSON API must
//!   keep getting the API's error body;
//! - `HEAD` requests, which have no body.
//!
//! Templates are read once, at start-up, and use apex/up's Go-template names: `{{.StatusCode}}`,
//! `{{.StatusText}}`, `{{.Variables.NAME}}` (from `error_pages.variables`), and the blocks
//! `{{with X}}…{{.}}…{{else}}…{{end}}` and `{{if X}}…{{else}}…{{end}}`; `{{- ` and ` -}}` trim
//! whitespace, `{{/* … */}}` is a comment. Values are HTML-escaped. Any other action is a
//! start-up error naming the file, so a template never renders half-understood.

use super::{Request, Response, StackError};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use pin_project_lite::pin_project;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

/// The page used when no template in `dir` matches (apex/up's default page takes the same
/// `color` and `support_email` variables).
const DEFAULT_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.StatusText}} – {{.StatusCode}}</title>
<style>
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:{{with .Variables.color}}{{.}}{{else}}#444{{end}}}
main{text-align:center;padding:2em}
h1{font-size:1.4em;margin:0 0 .4em}
a{color:inherit}
</style>
</head>
<body>
<main>
<h1>{{.StatusText}}</h1>
<p>{{with .Variables.support_email}}Please try again, or <a href="mailto:{{.}}">contact support</a>.{{else}}Please try again later.{{end}}</p>
</main>
</body>
</html>
"#;

/// The layer for `up.json`'s `error_pages`; passes everything through unless enabled.
pub fn layer(config: &up_config::Config, env: &crate::Env) -> Result<ErrorPagesLayer, StackError> {
    let settings = &config.error_pages;
    if !settings.enable || settings.disable {
        return Ok(ErrorPagesLayer { pages: None });
    }
    let pages = Pages::load(&env.task_root().join(&settings.dir), &settings.variables)?;
    Ok(ErrorPagesLayer {
        pages: Some(Arc::new(pages)),
    })
}

/// Error pages (see the module docs).
#[derive(Debug, Clone)]
pub struct ErrorPagesLayer {
    pages: Option<Arc<Pages>>,
}

impl<S> Layer<S> for ErrorPagesLayer {
    type Service = ErrorPages<S>;
    fn layer(&self, inner: S) -> ErrorPages<S> {
        ErrorPages {
            inner,
            pages: self.pages.clone(),
        }
    }
}

/// The service of [`ErrorPagesLayer`].
#[derive(Debug, Clone)]
pub struct ErrorPages<S> {
    inner: S,
    pages: Option<Arc<Pages>>,
}

/// The templates of `dir`, by specificity.
#[derive(Debug)]
struct Pages {
    exact: BTreeMap<u16, Template>,
    /// `4xx.html`, `5xx.html`.
    class: [Option<Template>; 2],
    error: Option<Template>,
    fallback: Template,
    variables: BTreeMap<String, Value>,
}

impl Pages {
    fn load(dir: &Path, variables: &BTreeMap<String, Value>) -> Result<Self, StackError> {
        let problem = |message: String| StackError::Config {
            key: "error_pages.dir".into(),
            message,
        };
        let entries =
            std::fs::read_dir(dir).map_err(|e| problem(format!("{}: {e}", dir.display())))?;
        let mut pages = Pages {
            exact: BTreeMap::new(),
            class: [None, None],
            error: None,
            fallback: Template::parse(DEFAULT_PAGE).map_err(problem)?,
            variables: variables.clone(),
        };
        for entry in entries {
            let entry = entry.map_err(|e| problem(format!("{}: {e}", dir.display())))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".html")) else {
                continue;
            };
            let code = match stem {
                "error" => None,
                "4xx" => Some(4),
                "5xx" => Some(5),
                code if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => {
                    match code.parse::<u16>() {
                        Ok(code @ 400..=599) => Some(code),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let path = entry.path();
            let source = std::fs::read_to_string(&path)
                .map_err(|e| problem(format!("{}: {e}", path.display())))?;
            let template = Template::parse(&source)
                .map_err(|e| problem(format!("{}: {e}", path.display())))?;
            match code {
                None => pages.error = Some(template),
                Some(4) => pages.class[0] = Some(template),
                Some(5) => pages.class[1] = Some(template),
                Some(code) => {
                    pages.exact.insert(code, template);
                }
            }
        }
        Ok(pages)
    }

    fn render(&self, status: StatusCode) -> String {
        let code = status.as_u16();
        let class = match code / 100 {
            4 => self.class[0].as_ref(),
            5 => self.class[1].as_ref(),
            _ => None,
        };
        let template = self
            .exact
            .get(&code)
            .or(class)
            .or(self.error.as_ref())
            .unwrap_or(&self.fallback);
        let data = Data {
            code,
            text: status.canonical_reason().unwrap_or("Error"),
            variables: &self.variables,
        };
        let mut out = String::with_capacity(template.size_hint);
        render(&template.nodes, &data, Val::Missing, &mut out);
        out
    }
}

/// True when `Accept` names `text/html` or `text/*` with a quality above zero.
fn accepts_html(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            (media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case("text/*"))
                && parts.all(|p| {
                    let p = p.trim();
                    match p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                        Some(q) => q.trim().parse::<f32>().is_ok_and(|q| q > 0.0),
                        None => true,
                    }
                })
        })
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/html"))
}

/// The response with its body replaced by the page for its status.
fn replace(mut response: Response, pages: &Pages) -> Response {
    let page = pages.render(response.status());
    let headers = response.headers_mut();
    for stale in [
        header::CONTENT_ENCODING,
        header::CONTENT_LENGTH,
        header::CONTENT_RANGE,
        header::CONTENT_LANGUAGE,
        header::CONTENT_DISPOSITION,
        header::ACCEPT_RANGES,
        header::ETAG,
        header::LAST_MODIFIED,
    ] {
        headers.remove(stale);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(page.len()));
    let varies = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept"));
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Accept"));
    }
    *response.body_mut() = Bytes::from(page);
    response
}

impl<S> Service<Request> for ErrorPages<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ErrorPagesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let pages = self
            .pages
            .as_ref()
            .filter(|_| request.method() != Method::HEAD && accepts_html(request.headers()))
            .cloned();
        ErrorPagesFuture {
            inner: self.inner.call(request),
            pages,
        }
    }
}

pin_project! {
    /// The future of [`ErrorPages`].
    #[derive(Debug)]
    pub struct ErrorPagesFuture<F> {
        #[pin]
        inner: F,
        pages: Option<Arc<Pages>>,
    }
}

impl<F, E> Future for ErrorPagesFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        Poll::Ready(result.map(|response| match this.pages.take() {
            Some(pages) if response.status().as_u16() >= 400 && !is_html(&response) => {
                replace(response, &pages)
            }
            _ => response,
        }))
    }
}

// --- templates -----------------------------------------------------------------------------

/// A parsed template.
#[derive(Debug)]
struct Template {
    nodes: Vec<Node>,
    size_hint: usize,
}

#[derive(Debug)]
enum Node {
    Text(String),
    Value(Field),
    /// `{{if X}}` (`with` false) or `{{with X}}` (`with` true, `.` is X inside `then`).
    Block {
        with: bool,
        field: Field,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    StatusCode,
    StatusText,
    Variable(String),
    Dot,
}

/// A lexed piece: text, or an action with its trim markers.
#[derive(Debug)]
enum Token<'a> {
    Text(&'a str),
    Action(&'a str),
}

/// How a nested list ended.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Eof,
    Else,
    End,
}

impl Template {
    fn parse(source: &str) -> Result<Self, String> {
        let tokens = lex(source)?;
        let mut at = 0;
        let (nodes, end) = parse_list(&tokens, &mut at)?;
        match end {
            Stop::Eof => Ok(Self {
                nodes,
                size_hint: source.len() + 64,
            }),
            Stop::Else => Err("{{else}} outside {{if}} or {{with}}".into()),
            Stop::End => Err("{{end}} without {{if}} or {{with}}".into()),
        }
    }
}

/// Splits `source` into text and actions, applying `{{- ` / ` -}}` trimming.
fn lex(source: &str) -> Result<Vec<Token<'_>>, String> {
    let mut tokens = Vec::new();
    let mut rest = source;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("unclosed \"{{{{\" near {:?}", excerpt(after)))?;
        let mut action = &after[..close];
        if let Some(stripped) = action
            .strip_prefix('-')
            .filter(|a| a.starts_with(char::is_whitespace))
        {
            text = text.trim_end();
            action = stripped;
        }
        trim_next = false;
        if let Some(stripped) = action
            .strip_suffix('-')
            .filter(|a| a.ends_with(char::is_whitespace))
        {
            trim_next = true;
            action = stripped;
        }
        if !text.is_empty() {
            tokens.push(Token::Text(text));
        }
        tokens.push(Token::Action(action.trim()));
        rest = &after[close + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
    Ok(tokens)
}

fn excerpt(s: &str) -> &str {
    let end = s.char_indices().nth(20).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

fn parse_list(tokens: &[Token<'_>], at: &mut usize) -> Result<(Vec<Node>, Stop), String> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.get(*at) {
        *at += 1;
        let action = match token {
            Token::Text(text) => {
                nodes.push(Node::Text((*text).to_owned()));
                continue;
            }
            Token::Action(action) => *action,
        };
        if action.starts_with("/*") && action.ends_with("*/") {
            continue;
        }
        match action {
            "else" => return Ok((nodes, Stop::Else)),
            "end" => return Ok((nodes, Stop::End)),
            _ => {}
        }
        let block = action
            .strip_prefix("if ")
            .map(|f| (false, f))
            .or_else(|| action.strip_prefix("with ").map(|f| (true, f)));
        let Some((with, field)) = block else {
            nodes.push(Node::Value(parse_field(action)?));
            continue;
        };
        let field = parse_field(field.trim())?;
        let (then, end) = parse_list(tokens, at)?;
        let otherwise = match end {
            Stop::End => Vec::new(),
            Stop::Else => match parse_list(tokens, at)? {
                (otherwise, Stop::End) => otherwise,
                _ => return Err(format!("{{{{{action}}}}} has no {{{{end}}}}")),
            },
            Stop::Eof => return Err(format!("{{{{{action}}}}} has no {{{{end}}}}")),
        };
        nodes.push(Node::Block {
            with,
            field,
            then,
            otherwise,
        });
    }
    Ok((nodes, Stop::Eof))
}

fn parse_field(action: &str) -> Result<Field, String> {
    let field = match action {
        "." => Field::Dot,
        ".StatusCode" => Field::StatusCode,
        ".StatusText" => Field::StatusText,
        other => match other.strip_prefix(".Variables.") {
            Some(name)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Field::Variable(name.to_owned())
            }
            _ => {
                return Err(format!(
                    "unsupported template action {{{{{action}}}}}; use {{{{.StatusCode}}}}, \
                     {{{{.StatusText}}}}, {{{{.Variables.NAME}}}}, {{{{.}}}}, {{{{if …}}}}, \
                     {{{{with …}}}}, {{{{else}}}}, {{{{end}}}}"
                ));
            }
        },
    };
    Ok(field)
}

/// What a template is rendered with.
#[derive(Debug)]
struct Data<'a> {
    code: u16,
    text: &'a str,
    variables: &'a BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Code(u16),
    Text(&'a str),
    Json(&'a Value),
    Missing,
}

impl Val<'_> {
    fn truthy(self) -> bool {
        match self {
            Val::Code(c) => c != 0,
            Val::Text(t) => !t.is_empty(),
            Val::Json(v) => match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
            },
            Val::Missing => false,
        }
    }

    fn write(self, out: &mut String) {
        match self {
            Val::Code(c) => out.push_str(&c.to_string()),
            Val::Text(t) => escape(t, out),
            Val::Json(Value::String(s)) => escape(s, out),
            Val::Json(Value::Null) | Val::Missing => {}
            Val::Json(other) => escape(&other.to_string(), out),
        }
    }
}

fn lookup<'a>(field: &Field, data: &Data<'a>, dot: Val<'a>) -> Val<'a> {
    match field {
        Field::StatusCode => Val::Code(data.code),
        Field::StatusText => Val::Text(data.text),
        Field::Variable(name) => data.variables.get(name).map_or(Val::Missing, Val::Json),
        Field::Dot => dot,
    }
}

fn render<'a>(nodes: &[Node], data: &Data<'a>, dot: Val<'a>, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Value(field) => lookup(field, data, dot).write(out),
            Node::Block {
                with,
                field,
                then,
                otherwise,
            } => {
                let value = lookup(field, data, dot);
                if value.truthy() {
                    render(then, data, if *with { value } else { dot }, out);
                } else {
                    render(otherwise, data, dot, out);
                }
            }
        }
    }
}

/// HTML escaping, as Go's `html/template` does for text.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn pages(files: &[(&str, &str)], variables: &str) -> (tempfile::TempDir, ErrorPagesLayer) {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let variables: BTreeMap<String, Value> = serde_json::from_str(variables).unwrap();
        let pages = Pages::load(dir.path(), &variables).unwrap();
        (
            dir,
            ErrorPagesLayer {
                pages: Some(Arc::new(pages)),
            },
        )
    }

    async fn send(
        layer: &ErrorPagesLayer,
        status: u16,
        content_type: &str,
        request: http::request::Builder,
    ) -> Response {
        let content_type = HeaderValue::from_str(content_type).unwrap();
        let app = tower::service_fn(move |_req: Request| {
            let mut response = http::Response::new(Bytes::from("app body"));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type.clone());
            response
                .headers_mut()
                .insert(header::ETAG, HeaderValue::from_static("\"x\""));
            response
                .extensions_mut()
                .insert(super::super::Cause("app died".into()));
            async move { Ok::<_, Infallible>(response) }
        });
        layer
            .layer(app)
            .oneshot(request.body(Bytes::new()).unwrap())
            .await
            .unwrap()
    }

    fn browser() -> http::request::Builder {
        http::Request::get("/x").header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
    }

    fn body(r: &Response) -> &str {
        std::str::from_utf8(r.body()).unwrap()
    }

    #[tokio::test]
    async fn the_most_specific_template_wins() {
        let (_dir, layer) = pages(
            &[
                ("404.html", "nf {{.StatusCode}} {{.StatusText}}"),
                ("4xx.html", "client {{.StatusCode}}"),
                ("error.html", "any {{.StatusCode}}"),
                ("200.html", "ignored"),
                ("notes.txt", "ignored"),
            ],
            "{}",
        );
        let r = send(&layer, 404, "text/plain", browser()).await;
        assert_eq!(r.status(), 404);
        assert_eq!(body(&r), "nf 404 Not Found");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["vary"], "Accept");
        assert!(!r.headers().contains_key("etag"));
        assert!(r.extensions().get::<super::super::Cause>().is_some());
        assert_eq!(
            body(&send(&layer, 403, "text/plain", browser()).await),
            "client 403"
        );
        assert_eq!(
            body(&send(&layer, 502, "text/plain", browser()).await),
            "any 502"
        );
    }

    #[tokio::test]
    async fn only_html_clients_and_only_non_html_errors() {
        let (_dir, layer) = pages(&[("error.html", "page")], "{}");
        let json = http::Request::get("/x").header("accept", "application/json");
        assert_eq!(
            body(&send(&layer, 500, "application/json", json).await),
            "app body"
        );
        let any = http::Request::get("/x").header("accept", "*/*");
        assert_eq!(
            body(&send(&layer, 500, "application/json", any).await),
            "app body"
        );
        let refused = http::Request::get("/x").header("accept", "text/html;q=0, */*");
        assert_eq!(
            body(&send(&layer, 500, "text/plain", refused).await),
            "app body"
        );
        let text = http::Request::get("/x").header("accept", "text/*");
        assert_eq!(body(&send(&layer, 500, "text/plain", text).await), "page");
        let head = http::Request::head("/x").header("accept", "text/html");
        assert_eq!(
            body(&send(&layer, 500, "text/plain", head).await),
            "app body"
        );
        assert_eq!(
            body(&send(&layer, 200, "text/plain", browser()).await),
            "app body"
        );
        assert_eq!(
            body(&send(&layer, 399, "text/plain", browser()).await),
            "app body"
        );
        let own = send(&layer, 404, "text/html; charset=utf-8", browser()).await;
        assert_eq!(body(&own), "app body");
    }

    #[tokio::test]
    async fn the_built_in_page_uses_variables() {
        let (_dir, layer) = pages(&[], r#"{"support_email": "help@example.com"}"#);
        let r = send(&layer, 503, "text/plain", browser()).await;
        let page = body(&r);
        assert!(
            page.contains("<title>Service Unavailable – 503</title>"),
            "{page}"
        );
        assert!(page.contains("mailto:help@example.com"), "{page}");
        assert!(page.contains("color:#444"), "{page}");
    }

    #[test]
    fn templates_support_apex_blocks_and_escape_values() {
        let variables: BTreeMap<String, Value> = serde_json::from_str(
            r#"{"email": "a&b@example.com", "n": 3, "off": false, "html": "<b>"}"#,
        )
        .unwrap();
        let data = Data {
            code: 418,
            text: "I'm a teapot",
            variables: &variables,
        };
        let run = |source: &str| {
            let template = Template::parse(source).unwrap();
            let mut out = String::new();
            render(&template.nodes, &data, Val::Missing, &mut out);
            out
        };
        assert_eq!(
            run("{{.StatusCode}} {{ .StatusText }}"),
            "418 I&#39;m a teapot"
        );
        assert_eq!(
            run("{{with .Variables.email}}<a href=\"mailto:{{.}}\">{{else}}none{{end}}"),
            "<a href=\"mailto:a&amp;b@example.com\">"
        );
        assert_eq!(
            run("{{with .Variables.missing}}x{{else}}none{{end}}"),
            "none"
        );
        assert_eq!(run("{{if .Variables.off}}on{{else}}off{{end}}"), "off");
        assert_eq!(run("{{if .Variables.n}}{{.Variables.n}}{{end}}"), "3");
        assert_eq!(run("{{.Variables.html}}"), "&lt;b&gt;");
        assert_eq!(run("a  {{- .StatusCode -}}  b{{/* note */}}"), "a418b");
        assert_eq!(
            run("{{if .StatusCode}}{{with .Variables.n}}[{{.}}]{{end}}{{end}}"),
            "[3]"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for (source, expected) in [
            (
                "{{range .Items}}",
                "unsupported template action {{range .Items}}",
            ),
            ("{{.Foo}}", "unsupported template action {{.Foo}}"),
            ("{{if .StatusCode}}x", "has no {{end}}"),
            ("x{{end}}", "{{end}} without"),
            ("{{.StatusCode", "unclosed"),
        ] {
            let e = Template::parse(source).unwrap_err();
            assert!(e.contains(expected), "{source}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("500.html"), "{{template \"x\"}}").unwrap();
        let e = Pages::load(dir.path(), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("error_pages.dir: "), "{e}");
        assert!(e.contains("500.html: unsupported template action"), "{e}");
        let e = Pages::load(&dir.path().join("nope"), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("error_pages.dir: "), "{e}");
    }
}
