//! Up's web features through the real `bootstrap` under `up-emulator`, in front of the real
//! python-echo app: static files (served without the app), redirects and rewrites, header
//! rules and `X-Robots-Tag`, CORS, gzip/br compression and error pages, and one request that
//! shows the whole stack's order.
//!
//! The app logs every request it answers (`python-echo GET /path 200`), so "never reached the
//! app" is checked against its own log, after a marker request proves the log is up to date.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use serde_json::{Map, Value, json};
use std::io::Read;
use std::path::Path;
use up_emulator::Outcome;
use up_tests::harness::{Function, START_BOUND, lambda_body, task_root, v2_event};
use up_tests::paths::workspace_root;

/// The up.json every test runs with.
fn up_json() -> Value {
    json!({
        "name": "web-features",
        "proxy": {"command": "python3 app.py"},
        "static": {"dir": "public", "prefix": "/"},
        "headers": {
            "/*.css": {"Cache-Control": "public, max-age=3600"},
            "/*.txt": {"Cache-Control": "public, max-age=60"},
            "/api/*": {"X-Api": "v1", "Cache-Control": "no-store"},
            "/api/special": {"X-Api": "special"}
        },
        "redirects": {
            "/blog/:slug": {"location": "/posts/:slug", "status": 301, "force": true},
            "/shop/sale": {"location": "/sale", "status": 302, "force": true},
            "/shop/*": {"location": "/store/:splat", "status": 301, "force": true},
            "/status/:code": {"location": "/moved/:code", "status": 302},
            "/docs/*": {"location": "/guide/:splat", "status": 200, "force": true},
            "/app/*": {"location": "/index.html", "status": 200, "force": true}
        },
        "cors": {
            "allowed_origins": ["https://app.example.com"],
            "allowed_methods": ["GET", "POST", "PUT"],
            "allowed_headers": ["Content-Type", "X-Token"],
            "allow_credentials": true,
            "max_age": 600
        },
        "error_pages": {
            "enable": true,
            "dir": "errors",
            "variables": {"support_email": "help@example.com"}
        }
    })
}

/// A text file big enough to be compressed, written into `public/` by [`start`].
fn big_text() -> String {
    (0..400)
        .map(|i| format!("line {i:03}: the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The bootstrap over python-echo with [`up_json`] and the web fixtures, on `stage`.
async fn start(stage: &str) -> Function {
    let dir = task_root("python-echo", &up_json());
    let fixtures = workspace_root().join("tests/fixtures/web");
    copy_dir(&fixtures.join("public"), &dir.path().join("public"));
    copy_dir(&fixtures.join("errors"), &dir.path().join("errors"));
    std::fs::write(dir.path().join("public/big.txt"), big_text()).unwrap();
    Function::start(dir.path(), &[("UP_STAGE", stage)])
        .await
        .owning(dir)
}

/// A response as the client sees it.
#[derive(Debug)]
struct Reply {
    status: u64,
    headers: Map<String, Value>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// The echo document python-echo answers with.
    fn echo(&self) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not an echo ({e}): {self:?}"))
    }
}

async fn send(
    function: &Function,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let response = function
        .invoke_json(&v2_event(method, path, query, headers, body))
        .await;
    Reply {
        status: response["statusCode"].as_u64().unwrap(),
        headers: response["headers"].as_object().cloned().unwrap_or_default(),
        body: lambda_body(&response),
    }
}

async fn get(function: &Function, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(function, "GET", path, "", headers, None).await
}

/// The requests the app answered, once a marker request shows its log is complete.
async fn app_requests(function: &Function, marker: &str) -> Vec<String> {
    let invocation = function
        .invoke(&v2_event("GET", marker, "", &[], None))
        .await;
    assert!(
        matches!(invocation.outcome, Outcome::Response(_)),
        "{:?}",
        invocation.outcome
    );
    let instance = function
        .emulator
        .instances()
        .into_iter()
        .find(|i| i.index() == invocation.instance)
        .unwrap();
    let line = format!("python-echo GET {marker} ");
    instance
        .wait_for_log(|l| l.contains(&line), START_BOUND)
        .await
        .expect("the app logs the marker request");
    function
        .json_logs()
        .into_iter()
        .filter(|l| l["source"] == "app")
        .filter_map(|l| l["msg"].as_str().map(str::to_owned))
        .filter(|m| m.starts_with("python-echo ") && !m.contains("listening"))
        .collect()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(body, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn static_files_are_served_without_the_app() {
    let function = start("staging").await;
    let css =
        std::fs::read(workspace_root().join("tests/fixtures/web/public/css/site.css")).unwrap();

    let r = get(&function, "/css/site.css", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, css);
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").unwrap().to_owned();
    let last_modified = r.header("last-modified").unwrap().to_owned();

    // Validators: the browser's cached copy is still good.
    let r = get(&function, "/css/site.css", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 304, "{r:?}");
    assert!(r.body.is_empty());
    let r = get(
        &function,
        "/css/site.css",
        &[("if-modified-since", &last_modified)],
    )
    .await;
    assert_eq!(r.status, 304, "{r:?}");

    // Ranges.
    let r = get(&function, "/css/site.css", &[("range", "bytes=0-9")]).await;
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.body, css[..10]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-9/{}", css.len()).as_str())
    );
    let r = get(&function, "/css/site.css", &[("range", "bytes=99999-")]).await;
    assert_eq!(r.status, 416, "{r:?}");

    // A folder is served by its index.html.
    let r = get(&function, "/", &[]).await;
    assert!(r.text().contains("served from static.dir"), "{r:?}");

    // Paths that climb out of the folder are never looked up: the app gets them as sent, and
    // up.json (one level above public/) is never served.
    for path in [
        "/css/../../up.json",
        "/%2e%2e/up.json",
        "/css/..%2f..%2fup.json",
    ] {
        let r = get(&function, path, &[]).await;
        let echo = r.echo();
        assert_eq!(echo["path"], path);
        assert!(!r.text().contains("web-features"), "{path}: {r:?}");
    }

    let seen = app_requests(&function, "/marker").await;
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("/css/site.css") || l == "python-echo GET / 200"),
        "the app served a static file: {seen:?}"
    );
    assert_eq!(
        seen.len(),
        4,
        "three traversal attempts and the marker: {seen:?}"
    );
}

#[tokio::test]
async fn redirects_and_rewrites() {
    let function = start("staging").await;

    // Forced 301: answered before the app, query kept.
    let r = send(
        &function,
        "GET",
        "/blog/hello-world",
        "utm=x&b=2",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(r.header("location"), Some("/posts/hello-world?utm=x&b=2"));

    // Rules apply in up.json's order: the specific rule written first wins over the splat.
    let r = get(&function, "/shop/sale", &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some("/sale"));
    let r = get(&function, "/shop/shoes/red", &[]).await;
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(r.header("location"), Some("/store/shoes/red"));

    // Not forced: only where the app has nothing (a 404).
    let r = get(&function, "/status/200", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "status 200");
    let r = get(&function, "/status/404", &[]).await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some("/moved/404"));

    // A 200 rewrite: the app sees the new path, the original one, and the query.
    let r = send(&function, "GET", "/docs/setup/linux", "v=2", &[], None).await;
    let echo = r.echo();
    assert_eq!(echo["path"], "/guide/setup/linux");
    assert_eq!(echo["query"], "v=2");
    let original = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| {
            h[0].as_str()
                .unwrap()
                .eq_ignore_ascii_case("x-original-path")
        })
        .map(|h| h[1].clone());
    assert_eq!(original, Some(json!("/docs/setup/linux")));

    let seen = app_requests(&function, "/marker").await;
    assert!(!seen.iter().any(|l| l.contains("/blog/")), "{seen:?}");
    assert!(
        seen.iter().any(|l| l == "python-echo GET /status/404 404"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn header_rules_and_robots_by_stage() {
    let staging = start("staging").await;
    let r = get(&staging, "/api/users", &[]).await;
    assert_eq!(r.header("x-api"), Some("v1"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-robots-tag"), Some("none"));
    let r = get(&staging, "/api/special", &[]).await;
    assert_eq!(r.header("x-api"), Some("special"), "a later rule wins");
    let r = get(&staging, "/css/site.css", &[]).await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(r.header("x-robots-tag"), Some("none"));
    let r = get(&staging, "/other", &[]).await;
    assert_eq!(r.header("x-api"), None);

    let production = start("production").await;
    let r = get(&production, "/api/users", &[]).await;
    assert_eq!(r.header("x-api"), Some("v1"));
    assert_eq!(r.header("x-robots-tag"), None, "{r:?}");
    let r = get(&production, "/css/site.css", &[]).await;
    assert_eq!(r.header("x-robots-tag"), None, "{r:?}");
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let function = start("staging").await;
    let origin = ("origin", "https://app.example.com");

    let r = send(
        &function,
        "OPTIONS",
        "/api/items",
        "",
        &[
            origin,
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-token"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("PUT"),
        "{r:?}"
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("x-token"),
        "{r:?}"
    );

    let r = get(&function, "/api/items", &[origin]).await;
    assert_eq!(r.echo()["path"], "/api/items");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = get(
        &function,
        "/api/items",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let seen = app_requests(&function, "/marker").await;
    assert!(
        !seen.iter().any(|l| l.starts_with("python-echo OPTIONS")),
        "a preflight reached the app: {seen:?}"
    );
}

#[tokio::test]
async fn responses_are_compressed_for_clients_that_ask() {
    let function = start("staging").await;
    let body = big_text();
    let mirror = |accept: &'static str| {
        let function = &function;
        let body = body.clone();
        async move {
            let mut headers = vec![("content-type", "text/plain; charset=utf-8")];
            if !accept.is_empty() {
                headers.push(("accept-encoding", accept));
            }
            send(function, "POST", "/mirror", "", &headers, Some(&body)).await
        }
    };

    let r = mirror("gzip").await;
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{r:?}");
    assert!(r.header("vary").unwrap().contains("accept-encoding"));
    assert!(r.body.len() < body.len() / 4, "{} bytes", r.body.len());
    assert_eq!(gunzip(&r.body), body.as_bytes());

    let r = mirror("gzip, deflate, br").await;
    assert_eq!(r.header("content-encoding"), Some("br"), "{r:?}");
    assert_eq!(unbrotli(&r.body), body.as_bytes());

    let r = mirror("br;q=0.2, gzip;q=0.8").await;
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{r:?}");
    assert_eq!(gunzip(&r.body), body.as_bytes());

    let r = mirror("").await;
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.text(), body);

    // Too small to be worth it.
    let r = get(&function, "/text/utf-8", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(r.header("content-encoding"), None, "{r:?}");
    assert_eq!(r.text(), "café");
}

#[tokio::test]
async fn error_pages_for_html_clients_only() {
    let function = start("staging").await;
    let browser = (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    );

    let r = get(&function, "/status/503", &[browser]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.contains("<h1>503: Service Unavailable</h1>"), "{page}");
    assert!(page.contains("mailto:help@example.com"), "{page}");

    let r = get(&function, "/status/418", &[browser]).await;
    assert_eq!(r.status, 418);
    assert!(r.text().contains("Something went wrong (418)"), "{r:?}");

    let r = get(&function, "/status/503", &[("accept", "application/json")]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "status 503");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

/// One request through every layer: a static file asked for cross-origin, with br, on
/// staging. CORS (outermost), header rules and robots, and compression all apply to a file
/// the app never saw; a forced rewrite lands on a static file too, since redirects come
/// before static files.
#[tokio::test]
async fn the_whole_stack_in_order() {
    let function = start("staging").await;
    let r = get(
        &function,
        "/big.txt",
        &[
            ("origin", "https://app.example.com"),
            ("accept-encoding", "br"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(unbrotli(&r.body), big_text().as_bytes());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(r.header("x-robots-tag"), Some("none"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    let r = get(&function, "/app/settings/profile", &[]).await;
    assert!(r.text().contains("served from static.dir"), "{r:?}");

    let seen = app_requests(&function, "/marker").await;
    assert_eq!(seen, ["python-echo GET /marker 200"]);
}
