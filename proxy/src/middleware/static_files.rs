//! `static`: files under `static.dir` answered by the bootstrap itself, so a stylesheet or an
//! image never reaches the app.
//!
//! `"static": {"dir": "public", "prefix": "/assets/"}` serves `GET /assets/css/site.css` from
//! `$LAMBDA_TASK_ROOT/public/css/site.css`. What is served, and how:
//! - `GET` and `HEAD` only; a request under the prefix that names no file (or any other
//!   method) falls through to the app, untouched.
//! - A folder is served by its `index.html`; asked for without the trailing slash, it answers
//!   `301` to the URL with one, so the page's relative links resolve.
//! - `ETag` (size and modification time) with `If-None-Match` → `304`; `Last-Modified` with
//!   `If-Modified-Since` → `304`.
//! - `Range: bytes=` (one range) → `206` with `Content-Range`, `416` when it starts past the end;
//!   `If-Range` is honoured; several ranges get the whole file (`200`), as RFC 9110 allows.
//! - `Content-Type` from the file's extension; `charset=utf-8` for text.
//!
//! Nothing outside the folder is ever served: a path that needed normalising (`..`, `.`, `//`,
//! `%2e`, `%2f`, `\`) is not looked up at all and goes to the app as it came; a file whose real
//! path (symlinks resolved) is outside the folder is a miss; so are dotfiles (`/.env`,
//! `/.git/config`), except under `/.well-known/`.
//!
//! A miss costs one failed `open()`; a hit reads the file, on the blocking pool when it is
//! large. A file larger than Lambda's 6 MB response limit is not read whole: it gets a `502`
//! naming the limit, while a `Range` request for a part of it is still served.
//!
//! # Why by hand
//! tower-http's `ServeDir` has no `ETag`/`If-None-Match`, answers a miss with its own `404` where
//! the request must fall through to the app, streams its body (Lambda takes whole responses, so
//! we would collect it again), and follows symlinks out of the folder. What remains once those
//! are handled is small: an `open`, a `Range` parser and two conditional headers. The
//! extension → type table is a short list of web types rather than `mime_guess`'s full table,
//! which would cost binary size on every cold start.

use super::pattern::normalise;
use super::{Cause, Request, Response, StackError, text};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use pin_project_lite::pin_project;
use std::fs::{File, Metadata};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tower::{Layer, Service};

/// Files at most this large are read on the request's task; larger ones on the blocking pool.
const INLINE_READ: u64 = 64 * 1024;

/// The layer for `up.json`'s `static`; passes everything through when `static.dir` is unset.
pub fn layer(config: &up_config::Config, env: &crate::Env) -> Result<StaticLayer, StackError> {
    let Some(dir) = &config.static_files.dir else {
        return Ok(StaticLayer { files: None });
    };
    let files = Files::new(&env.task_root().join(dir), &config.static_files.prefix)?;
    Ok(StaticLayer {
        files: Some(Arc::new(files)),
    })
}

/// Serves files from a folder (see the module docs).
#[derive(Debug, Clone)]
pub struct StaticLayer {
    files: Option<Arc<Files>>,
}

impl StaticLayer {
    /// Files from `dir` under the URL `prefix`.
    pub fn new(dir: &Path, prefix: &str) -> Result<Self, StackError> {
        Ok(Self {
            files: Some(Arc::new(Files::new(dir, prefix)?)),
        })
    }
}

impl<S> Layer<S> for StaticLayer {
    type Service = StaticFiles<S>;
    fn layer(&self, inner: S) -> StaticFiles<S> {
        StaticFiles {
            inner,
            files: self.files.clone(),
        }
    }
}

/// The service of [`StaticLayer`].
#[derive(Debug, Clone)]
pub struct StaticFiles<S> {
    inner: S,
    files: Option<Arc<Files>>,
}

/// The folder and the URL prefix it is served under.
#[derive(Debug)]
struct Files {
    /// Canonical (symlinks resolved), so a file's real path can be checked against it.
    root: PathBuf,
    /// Starts and ends with `/`.
    prefix: String,
}

impl Files {
    fn new(dir: &Path, prefix: &str) -> Result<Self, StackError> {
        let problem = |message: String| StackError::Config {
            key: "static.dir".into(),
            message,
        };
        let root = dir
            .canonicalize()
            .map_err(|e| problem(format!("{}: {e}", dir.display())))?;
        if !root.is_dir() {
            return Err(problem(format!("{} is not a folder", dir.display())));
        }
        let mut normalised = String::with_capacity(prefix.len() + 2);
        if !prefix.starts_with('/') {
            normalised.push('/');
        }
        normalised.push_str(prefix);
        if !normalised.ends_with('/') {
            normalised.push('/');
        }
        Ok(Self {
            root,
            prefix: normalised,
        })
    }

    /// Finds the file `request` names, without reading it.
    fn lookup(&self, request: &Request) -> Lookup {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return Lookup::Miss;
        }
        let raw = request.uri().path();
        let normalised = normalise(raw);
        if !normalised.canonical {
            return Lookup::Miss;
        }
        let Some(relative) = normalised.path.strip_prefix(self.prefix.as_str()) else {
            return Lookup::Miss;
        };
        if relative
            .split('/')
            .any(|s| s.starts_with('.') && s != ".well-known")
        {
            return Lookup::Miss;
        }
        let mut path = self.root.join(relative);
        let Some((mut file, mut meta)) = open(&path) else {
            return Lookup::Miss;
        };
        if meta.is_dir() {
            path.push("index.html");
            if !relative.is_empty() && !relative.ends_with('/') {
                if !path.is_file() {
                    return Lookup::Miss;
                }
                let location = match request.uri().query() {
                    Some(query) => format!("{raw}/?{query}"),
                    None => format!("{raw}/"),
                };
                return Lookup::Redirect(location);
            }
            let Some(index) = open(&path) else {
                return Lookup::Miss;
            };
            (file, meta) = index;
        }
        if !meta.is_file() {
            return Lookup::Miss;
        }
        match path.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => {}
            _ => {
                tracing::warn!(
                    path = %normalised.path,
                    "static: the file resolves outside static.dir; not served"
                );
                return Lookup::Miss;
            }
        }
        Lookup::Found(Found { file, meta, path })
    }
}

fn open(path: &Path) -> Option<(File, Metadata)> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    Some((file, meta))
}

#[derive(Debug)]
enum Lookup {
    Miss,
    Redirect(String),
    Found(Found),
}

#[derive(Debug)]
struct Found {
    file: File,
    meta: Metadata,
    path: PathBuf,
}

/// How to answer for a found file: a response without a body to read, or the part to read.
#[derive(Debug)]
enum Plan {
    Done(Response),
    Read {
        file: File,
        start: u64,
        len: u64,
        head: http::response::Parts,
        path: PathBuf,
    },
}

impl Found {
    fn plan(self, request: &Request) -> Plan {
        let len = self.meta.len();
        let modified = self.meta.modified().ok();
        let etag = etag(len, modified);
        let last_modified = modified.map(httpdate::fmt_http_date);
        let headers = request.headers();

        let mut response = http::Response::new(Bytes::new());
        let out = response.headers_mut();
        insert(out, header::ETAG, &etag);
        if let Some(lm) = &last_modified {
            insert(out, header::LAST_MODIFIED, lm);
        }
        if not_modified(headers, &etag, modified) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return Plan::Done(response);
        }

        let range = if if_range_holds(headers, &etag, last_modified.as_deref()) {
            byte_range(headers.get(header::RANGE), len)
        } else {
            Range::Full
        };
        let (start, end) = match range {
            Range::Full => (0, len),
            Range::Part(first, last) => (first, last + 1),
            Range::Unsatisfiable => {
                let mut refused = text(StatusCode::RANGE_NOT_SATISFIABLE, "Range Not Satisfiable");
                insert(
                    refused.headers_mut(),
                    header::CONTENT_RANGE,
                    &format!("bytes */{len}"),
                );
                return Plan::Done(refused);
            }
        };
        let out = response.headers_mut();
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&self.path)),
        );
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
        if let Range::Part(first, last) = range {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            insert(
                response.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes {first}-{last}/{len}"),
            );
        }
        if request.method() == Method::HEAD || start == end {
            return Plan::Done(response);
        }
        if end - start > crate::runtime::MAX_RESPONSE as u64 {
            let message = format!(
                "static file {} is {} bytes, over Lambda's 6 MB response limit",
                request.uri().path(),
                end - start
            );
            let mut refused = text(StatusCode::BAD_GATEWAY, &message);
            refused.extensions_mut().insert(Cause(message));
            return Plan::Done(refused);
        }
        let (head, _) = response.into_parts();
        Plan::Read {
            file: self.file,
            start,
            len: end - start,
            head,
            path: self.path,
        }
    }
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    // Every value built here is ASCII (a date, hex digits, numbers); a failure would only drop
    // the header.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// A strong validator from the size and the modification time (as nginx does).
fn etag(len: u64, modified: Option<SystemTime>) -> String {
    let nanos = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

/// `If-None-Match` (weak comparison), else `If-Modified-Since` (whole seconds).
fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(list) = headers.get(header::IF_NONE_MATCH) {
        let list = list.to_str().unwrap_or("");
        return list
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag);
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => seconds(modified) <= seconds(since),
        _ => false,
    }
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `If-Range`: the range applies only while the client's copy is current (a strong ETag match,
/// or the exact `Last-Modified` date).
fn if_range_holds(headers: &HeaderMap, etag: &str, last_modified: Option<&str>) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let value = value.to_str().unwrap_or("").trim();
    if value.starts_with('"') {
        value == etag
    } else if value.starts_with("W/") {
        false
    } else {
        Some(value) == last_modified
    }
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// No usable range: the whole file.
    Full,
    /// First and last byte, inclusive.
    Part(u64, u64),
    /// The range starts past the end.
    Unsatisfiable,
}

/// Parses a single `bytes=` range; anything else (several ranges, other units, bad syntax) is
/// ignored, which RFC 9110 allows.
fn byte_range(header: Option<&HeaderValue>, len: u64) -> Range {
    let Some(spec) = header.and_then(|v| v.to_str().ok()) else {
        return Range::Full;
    };
    let spec = spec.trim();
    let Some(set) = spec
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| &spec[6..])
    else {
        return Range::Full;
    };
    if set.contains(',') {
        return Range::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Range::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return match digits(last) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if len == 0 => Range::Unsatisfiable,
            Some(suffix) => Range::Part(len.saturating_sub(suffix), len - 1),
            None => Range::Full,
        };
    }
    let Some(first) = digits(first) else {
        return Range::Full;
    };
    let last = if last.is_empty() {
        None
    } else {
        match digits(last) {
            Some(last) if last >= first => Some(last),
            _ => return Range::Full,
        }
    };
    if first >= len {
        return Range::Unsatisfiable;
    }
    Range::Part(first, last.map_or(len - 1, |l| l.min(len - 1)))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The media type for a file name's extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "rss" => "application/rss+xml",
        "atom" => "application/atom+xml",
        "ics" => "text/calendar; charset=utf-8",
        "yaml" | "yml" => "application/yaml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        _ => "application/octet-stream",
    }
}

fn read_part(mut file: File, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_failed(path: &Path, error: &dyn std::fmt::Display) -> Response {
    let message = format!("static file {}: {error}", path.display());
    let mut response = text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    response.extensions_mut().insert(Cause(message));
    response
}

fn with_body(head: http::response::Parts, body: Vec<u8>) -> Response {
    http::Response::from_parts(head, Bytes::from(body))
}

impl<S> Service<Request> for StaticFiles<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = StaticFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let lookup = match &self.files {
            Some(files) => files.lookup(&request),
            None => Lookup::Miss,
        };
        let found = match lookup {
            Lookup::Miss => {
                return StaticFuture::Inner {
                    inner: self.inner.call(request),
                };
            }
            Lookup::Redirect(location) => {
                let mut response = text(StatusCode::MOVED_PERMANENTLY, "Moved Permanently");
                insert(response.headers_mut(), header::LOCATION, &location);
                return StaticFuture::Ready {
                    response: Some(response),
                };
            }
            Lookup::Found(found) => found,
        };
        let response = match found.plan(&request) {
            Plan::Done(response) => response,
            Plan::Read {
                file,
                start,
                len,
                head,
                path,
            } if len <= INLINE_READ => match read_part(file, start, len) {
                Ok(body) => with_body(head, body),
                Err(e) => read_failed(&path, &e),
            },
            Plan::Read {
                file,
                start,
                len,
                head,
                path,
            } => {
                return StaticFuture::Reading {
                    read: tokio::task::spawn_blocking(move || read_part(file, start, len)),
                    head: Some(head),
                    path,
                };
            }
        };
        StaticFuture::Ready {
            response: Some(response),
        }
    }
}

pin_project! {
    /// The future of [`StaticFiles`]: the app's answer, a file, or an answer made here.
    #[project = StaticProj]
    #[derive(Debug)]
    pub enum StaticFuture<F> {
        /// Not a static file: the app answers.
        Inner { #[pin] inner: F },
        /// Answered without reading (304, 416, HEAD, a redirect) or read already.
        Ready { response: Option<Response> },
        /// A large file being read on the blocking pool.
        Reading {
            read: JoinHandle<std::io::Result<Vec<u8>>>,
            head: Option<http::response::Parts>,
            path: PathBuf,
        },
    }
}

impl<F, E> Future for StaticFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            StaticProj::Inner { inner } => inner.poll(cx),
            StaticProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("StaticFuture polled after completion"),
            },
            StaticProj::Reading { read, head, path } => {
                let read = ready!(Pin::new(read).poll(cx));
                let Some(head) = head.take() else {
                    panic!("StaticFuture polled after completion");
                };
                Poll::Ready(Ok(match read {
                    Ok(Ok(body)) => with_body(head, body),
                    Ok(Err(e)) => read_failed(path, &e),
                    Err(e) => read_failed(path, &e),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    struct Site {
        dir: tempfile::TempDir,
        app_calls: Arc<AtomicUsize>,
    }

    impl Site {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let public = dir.path().join("public");
            std::fs::create_dir_all(public.join("docs")).unwrap();
            std::fs::create_dir_all(public.join("empty")).unwrap();
            std::fs::create_dir_all(public.join(".well-known")).unwrap();
            std::fs::write(public.join("index.html"), "<h1>home</h1>").unwrap();
            std::fs::write(public.join("site.css"), "body{color:red}").unwrap();
            std::fs::write(public.join("docs/index.html"), "<h1>docs</h1>").unwrap();
            std::fs::write(public.join("digits.txt"), "0123456789").unwrap();
            std::fs::write(public.join(".env"), "SECRET=1").unwrap();
            std::fs::write(public.join(".well-known/security.txt"), "contact").unwrap();
            std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), public.join("link.txt"))
                .unwrap();
            std::fs::write(
                public.join("big.bin"),
                vec![7u8; INLINE_READ as usize * 2 + 5],
            )
            .unwrap();
            Self {
                dir,
                app_calls: Arc::new(AtomicUsize::new(0)),
            }
        }

        async fn get(&self, prefix: &str, request: http::request::Builder) -> Response {
            let calls = self.app_calls.clone();
            let app = tower::service_fn(move |_req: Request| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, Infallible>(http::Response::new(Bytes::from("app"))) }
            });
            StaticLayer::new(&self.dir.path().join("public"), prefix)
                .unwrap()
                .layer(app)
                .oneshot(request.body(Bytes::new()).unwrap())
                .await
                .unwrap()
        }

        fn app_calls(&self) -> usize {
            self.app_calls.load(Ordering::SeqCst)
        }
    }

    fn get(uri: &str) -> http::request::Builder {
        http::Request::get(uri)
    }

    #[tokio::test]
    async fn serves_files_with_type_and_validators_without_the_app() {
        let site = Site::new();
        let r = site.get("/", get("/site.css")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.body(), "body{color:red}");
        assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
        assert_eq!(r.headers()["content-length"], "15");
        assert_eq!(r.headers()["accept-ranges"], "bytes");
        assert!(r.headers()["etag"].to_str().unwrap().starts_with("\"f-"));
        assert!(r.headers().contains_key("last-modified"));
        assert_eq!(site.app_calls(), 0);

        let head = site.get("/", http::Request::head("/site.css")).await;
        assert_eq!(head.status(), 200);
        assert!(head.body().is_empty());
        assert_eq!(head.headers()["content-length"], "15");

        let big = site.get("/", get("/big.bin")).await;
        assert_eq!(big.body().len(), INLINE_READ as usize * 2 + 5);
        assert_eq!(big.headers()["content-type"], "application/octet-stream");
        assert_eq!(site.app_calls(), 0);
    }

    #[tokio::test]
    async fn misses_and_other_methods_go_to_the_app() {
        let site = Site::new();
        assert_eq!(site.get("/", get("/nope.css")).await.body(), "app");
        assert_eq!(
            site.get("/", http::Request::post("/site.css")).await.body(),
            "app"
        );
        assert_eq!(site.get("/", get("/empty/")).await.body(), "app");
        assert_eq!(site.app_calls(), 3);
    }

    #[tokio::test]
    async fn folders_are_served_by_their_index() {
        let site = Site::new();
        assert_eq!(site.get("/", get("/")).await.body(), "<h1>home</h1>");
        let docs = site.get("/", get("/docs/")).await;
        assert_eq!(docs.body(), "<h1>docs</h1>");
        assert_eq!(docs.headers()["content-type"], "text/html; charset=utf-8");
        let moved = site.get("/", get("/docs?x=1")).await;
        assert_eq!(moved.status(), 301);
        assert_eq!(moved.headers()["location"], "/docs/?x=1");
        assert_eq!(site.app_calls(), 0);
    }

    #[tokio::test]
    async fn the_prefix_maps_onto_the_folder() {
        let site = Site::new();
        assert_eq!(
            site.get("/assets", get("/assets/site.css")).await.body(),
            "body{color:red}"
        );
        assert_eq!(site.get("/assets/", get("/site.css")).await.body(), "app");
        assert_eq!(
            site.get("/assets/", get("/assetssite.css")).await.body(),
            "app"
        );
    }

    #[tokio::test]
    async fn conditional_requests_get_304() {
        let site = Site::new();
        let first = site.get("/", get("/site.css")).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let last_modified = first.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_owned();

        let same = site
            .get(
                "/",
                get("/site.css").header("if-none-match", format!("\"x\", W/{etag}")),
            )
            .await;
        assert_eq!(same.status(), 304);
        assert!(same.body().is_empty());
        assert_eq!(same.headers()["etag"], etag.as_str());

        let changed = site
            .get("/", get("/site.css").header("if-none-match", "\"other\""))
            .await;
        assert_eq!(changed.status(), 200);

        let since = site
            .get(
                "/",
                get("/site.css").header("if-modified-since", &last_modified),
            )
            .await;
        assert_eq!(since.status(), 304);
        let old = site
            .get(
                "/",
                get("/site.css").header("if-modified-since", "Thu, 01 Jan 1998 00:00:00 GMT"),
            )
            .await;
        assert_eq!(old.status(), 200);
        // If-None-Match wins over If-Modified-Since.
        let both = site
            .get(
                "/",
                get("/site.css")
                    .header("if-none-match", "\"other\"")
                    .header("if-modified-since", &last_modified),
            )
            .await;
        assert_eq!(both.status(), 200);
    }

    #[tokio::test]
    async fn ranges_get_206_or_416() {
        let site = Site::new();
        let range = |spec: &'static str| get("/digits.txt").header("range", spec);
        let r = site.get("/", range("bytes=2-4")).await;
        assert_eq!(r.status(), 206);
        assert_eq!(r.body(), "234");
        assert_eq!(r.headers()["content-range"], "bytes 2-4/10");
        assert_eq!(r.headers()["content-length"], "3");
        assert_eq!(site.get("/", range("bytes=7-")).await.body(), "789");
        assert_eq!(site.get("/", range("bytes=-3")).await.body(), "789");
        assert_eq!(site.get("/", range("bytes=5-99")).await.body(), "56789");
        let refused = site.get("/", range("bytes=10-")).await;
        assert_eq!(refused.status(), 416);
        assert_eq!(refused.headers()["content-range"], "bytes */10");
        for ignored in ["bytes=0-1,4-5", "items=0-1", "bytes=4-2", "bytes=+1-2"] {
            let full = site.get("/", range(ignored)).await;
            assert_eq!(full.status(), 200, "{ignored}");
            assert_eq!(full.body(), "0123456789", "{ignored}");
        }
        let stale = site
            .get("/", range("bytes=0-1").header("if-range", "\"old\""))
            .await;
        assert_eq!(stale.status(), 200);
        let etag = r.headers()["etag"].clone();
        let current = site
            .get("/", range("bytes=0-1").header("if-range", etag))
            .await;
        assert_eq!(current.status(), 206);
    }

    #[tokio::test]
    async fn nothing_outside_the_folder_is_served() {
        let site = Site::new();
        for path in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/docs/..%2f..%2fsecret.txt",
            "/docs/../../secret.txt",
            "//secret.txt",
            "/link.txt",
            "/.env",
            "/docs/%2e%65nv",
        ] {
            let r = site.get("/", get(path)).await;
            assert_eq!(r.body(), "app", "{path}");
        }
        assert_eq!(
            site.get("/", get("/.well-known/security.txt")).await.body(),
            "contact"
        );
    }

    #[test]
    fn a_missing_folder_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = StaticLayer::new(&dir.path().join("nope"), "/").unwrap_err();
        assert!(e.to_string().starts_with("static.dir: "), "{e}");
    }

    #[test]
    fn range_parsing() {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(byte_range(None, 10), Range::Full);
        assert_eq!(byte_range(Some(&h("bytes=0-0")), 10), Range::Part(0, 0));
        assert_eq!(byte_range(Some(&h("BYTES= 1 - 2")), 10), Range::Part(1, 2));
        assert_eq!(byte_range(Some(&h("bytes=-20")), 10), Range::Part(0, 9));
        assert_eq!(byte_range(Some(&h("bytes=-0")), 10), Range::Unsatisfiable);
        assert_eq!(byte_range(Some(&h("bytes=0-")), 0), Range::Unsatisfiable);
        assert_eq!(byte_range(Some(&h("bytes=x-1")), 10), Range::Full);
    }
}
