//! The static `bootstrap` wrapping `examples/python-echo`, deployed to ministack as a
//! `provided.al2023` function behind the alias `staging`, called over HTTP through
//! API Gateway HTTP APIs (payload 2.0; `$default` and a named stage), a REST API
//! (payload 1.0, `binaryMediaTypes: ["*/*"]`) and a Function URL.
//!
//! Every check runs against every front and all failures are reported together, with the
//! function's log lines and the ministack log path, so one run shows the whole picture.
//! Needs the musl bootstrap and the `.venv` with ministack (`scripts/test` provides
//! both); it fails, never skips, when either is missing.
//!
//! ```text
//! cargo build --release -p up-proxy --target x86_64-unknown-linux-musl
//! cargo test -p up-tests --test ministack_proxy -- --nocapture
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Deserialize;
use up_tests::ministack::{
    HttpResponse, Ministack, Source, has_exited, http_request, kill_pid, package_zip,
};
use up_tests::paths;

const FUNCTION: &str = "up-python-echo";
const STAGE: &str = "staging";
/// Report scope of the checks that span every front.
const ALL_FRONTS: &str = "all fronts";

/// Which Lambda event payload a front sends; decides the AWS-documented shape of a few
/// answers (v2 joins repeated headers with commas, v1 keeps them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    V1,
    V2,
}

#[derive(Debug)]
struct Front {
    name: &'static str,
    payload: Payload,
    /// Request paths are appended to this.
    base: String,
}

/// What `examples/python-echo` answers on any path it does not special-case.
#[derive(Debug, Deserialize)]
struct Echo {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body_b64: String,
    pid: u32,
    cwd: String,
    env: HashMap<String, Option<String>>,
}

impl Echo {
    /// Values of request header `name` as the app saw them (case-insensitive), in order.
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Collects check outcomes across fronts.
#[derive(Debug, Default)]
struct Report {
    passed: Vec<String>,
    failed: Vec<String>,
    /// Observations worth reading even when checks pass (e.g. the shape ministack used).
    notes: Vec<String>,
    /// Every app pid seen, in request order (warm reuse).
    pids: Vec<(String, u32)>,
}

impl Report {
    /// `scope` is a front's name, or "all fronts".
    fn record(&mut self, scope: &str, check: &str, outcome: Result<(), String>) {
        let label = format!("[{scope}] {check}");
        match outcome {
            Ok(()) => self.passed.push(label),
            Err(why) => self.failed.push(format!("{label}: {why}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_echo_through_api_gateway_on_ministack() {
    // Fail (never skip) with the command to run when a prerequisite is missing.
    let bootstrap = paths::bootstrap_path();
    let app = paths::example_dir("python-echo");
    let mut ministack = Ministack::start().await;

    let zip = package_zip(&[
        ("bootstrap", Source::Path(&bootstrap), true),
        ("app.py", Source::Path(&app.join("app.py")), false),
        ("up.json", Source::Path(&app.join("up.json")), false),
    ])
    .expect("packaging the function zip");
    ministack
        .deploy_function(FUNCTION, zip, &[("UP_STAGE", STAGE)])
        .await
        .expect("deploying the function");
    let alias_arn = ministack
        .publish_alias(FUNCTION, STAGE)
        .await
        .expect("publishing the alias");

    // ministack does not substitute ${stageVariables.*}: every front names the alias ARN.
    let fronts = vec![
        Front {
            name: "HTTP API v2, $default stage",
            payload: Payload::V2,
            base: ministack
                .http_api(&alias_arn, None)
                .await
                .expect("HTTP API ($default)"),
        },
        Front {
            name: "HTTP API v2, stage staging",
            payload: Payload::V2,
            base: ministack
                .http_api(&alias_arn, Some(STAGE))
                .await
                .expect("HTTP API (staging)"),
        },
        Front {
            name: "REST API v1, stage staging",
            payload: Payload::V1,
            base: ministack
                .rest_api(&alias_arn, STAGE)
                .await
                .expect("REST API"),
        },
        Front {
            name: "Function URL, alias staging",
            payload: Payload::V2,
            base: ministack
                .function_url(FUNCTION, Some(STAGE))
                .await
                .expect("Function URL"),
        },
    ];

    let mut report = Report::default();
    for front in &fronts {
        check_front(front, &ministack, &mut report).await;
    }
    check_warm_reuse(&fronts, &mut report).await;
    // After warm reuse: this one replaces the app process on purpose.
    check_crash_and_restart(&fronts[0], &mut report).await;

    // Teardown: ministack leaves execution environments running when it exits, so the
    // harness TERMs its whole process group (ministack and the bootstraps) and gives it a
    // grace period. The bootstrap must take its app down with it: no app may outlive it.
    let logs = ministack.function_logs(FUNCTION).await;
    ministack.stop();
    check_no_app_outlives(&mut report).await;

    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "{} checks passed, {} failed",
        report.passed.len(),
        report.failed.len()
    );
    for note in &report.notes {
        let _ = writeln!(summary, "  note: {note}");
    }
    if report.failed.is_empty() {
        eprintln!("{summary}");
    } else {
        for failure in &report.failed {
            let _ = writeln!(summary, "  FAIL {failure}");
        }
        for pass in &report.passed {
            let _ = writeln!(summary, "  ok   {pass}");
        }
        let logs = match logs {
            Ok(lines) => lines.join("\n"),
            Err(err) => format!("(could not read them: {err:#})"),
        };
        panic!(
            "{summary}\nfunction log /aws/lambda/{FUNCTION}:\n{logs}\n\nministack log: {}",
            ministack.log_path().display()
        );
    }
}

async fn check_front(front: &Front, ministack: &Ministack, report: &mut Report) {
    // Path: the app sees the API path, never the stage.
    let outcome = async {
        let echo = get_echo(front, "/items/42", &[], report).await?;
        expect_eq("method", &echo.method, "GET")?;
        expect_eq("path", &echo.path, "/items/42")
    }
    .await;
    report.record(
        front.name,
        "path without stage: GET /items/42 reaches the app as /items/42",
        outcome,
    );

    let outcome = async {
        let echo = get_echo(front, "/", &[], report).await?;
        expect_eq("path", &echo.path, "/")
    }
    .await;
    report.record(front.name, "API root reaches the app as /", outcome);

    // Repeated request headers: every value reaches the app. API Gateway v2 hands
    // repeated headers over comma-joined (so the app may see one "a, b"); v1 keeps them
    // apart in multiValueHeaders. Either way the values, in order, are a then b.
    let outcome = async {
        let echo = get_echo(front, "/headers", &[("X-Tag", "a"), ("X-Tag", "b")], report).await?;
        let seen = echo.header("x-tag");
        report.notes.push(format!(
            "[{}] X-Tag: a + X-Tag: b reached the app as {seen:?}",
            front.name
        ));
        expect_eq("X-Tag values", &split_list(&seen, ','), &["a", "b"])
    }
    .await;
    report.record(
        front.name,
        "repeated request header X-Tag: a, X-Tag: b reaches the app",
        outcome,
    );

    // Repeated query keys.
    let outcome = async {
        let echo = get_echo(front, "/query?tag=a&tag=b&one=1", &[], report).await?;
        report.notes.push(format!(
            "[{}] ?tag=a&tag=b&one=1 reached the app as {:?}",
            front.name, echo.query
        ));
        let pairs = query_pairs(&echo.query);
        let tags: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| *k == "tag")
            .map(|(_, v)| *v)
            .collect();
        let ones: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| *k == "one")
            .map(|(_, v)| *v)
            .collect();
        expect_eq("tag values", &tags, &["a", "b"])?;
        expect_eq("one values", &ones, &["1"])
    }
    .await;
    report.record(
        front.name,
        "repeated query key ?tag=a&tag=b reaches the app",
        outcome,
    );

    // A text body (delivered as a string, not base64, in the event) arrives intact.
    let outcome = async {
        let body = br#"{"hello":"world","n":1}"#;
        let response = call(
            front,
            "POST",
            "/echo",
            &[("Content-Type", "application/json")],
            &body[..],
        )
        .await?;
        let echo = parse_echo(&response, report, front)?;
        expect_eq("method", &echo.method, "POST")?;
        let seen = BASE64
            .decode(&echo.body_b64)
            .map_err(|e| format!("body_b64: {e}"))?;
        expect_bytes("request body", &seen, body)
    }
    .await;
    report.record(
        front.name,
        "JSON request body reaches the app unchanged",
        outcome,
    );

    // A text answer must be readable by a client that sends no Accept header: a REST API
    // passes a base64 body through undecoded unless Accept matches binaryMediaTypes, so
    // text has to travel as text (isBase64Encoded false).
    let outcome = async {
        let response = call(front, "GET", "/no-accept", &[("Accept", "")], Bytes::new()).await?;
        parse_echo(&response, report, front).map(drop)
    }
    .await;
    report.record(
        front.name,
        "JSON answer is readable without an Accept header",
        outcome,
    );

    // Binary upload, byte-exact both ways (/mirror answers with the request body).
    let outcome = async {
        let sent = all_bytes(1024 + 17);
        let response = call(
            front,
            "POST",
            "/mirror",
            &[
                ("Content-Type", "application/octet-stream"),
                ("Accept", "application/octet-stream"),
            ],
            sent.clone(),
        )
        .await?;
        expect_status(&response, 200)?;
        expect_eq(
            "content-type",
            &response.header_values("content-type"),
            &["application/octet-stream".to_owned()],
        )?;
        expect_bytes("mirrored body", &response.body, &sent)
    }
    .await;
    report.record(
        front.name,
        "binary upload via /mirror comes back byte-exact",
        outcome,
    );

    // Binary download.
    let outcome = async {
        let response = call(
            front,
            "GET",
            "/bytes/1000",
            &[("Accept", "application/octet-stream")],
            Bytes::new(),
        )
        .await?;
        expect_status(&response, 200)?;
        expect_bytes("downloaded body", &response.body, &all_bytes(1000))
    }
    .await;
    report.record(
        front.name,
        "binary download /bytes/1000 is byte-exact",
        outcome,
    );

    // Request cookies reach the app.
    let outcome = async {
        let echo = get_echo(front, "/echo", &[("Cookie", "a=1; b=2")], report).await?;
        let seen = echo.header("cookie");
        report.notes.push(format!(
            "[{}] Cookie: a=1; b=2 reached the app as {seen:?}",
            front.name
        ));
        expect_eq("cookies", &split_list(&seen, ';'), &["a=1", "b=2"])
    }
    .await;
    report.record(front.name, "request Cookie reaches the app", outcome);

    // Two Set-Cookie headers come back as two header lines; X-Multi's two values survive
    // (v2 joins them with commas, v1 keeps two lines).
    let outcome = async {
        let response = call(front, "GET", "/cookies", &[], Bytes::new()).await?;
        expect_status(&response, 200)?;
        expect_eq(
            "Set-Cookie lines",
            &response.header_values("set-cookie"),
            &[
                "a=1; Path=/".to_owned(),
                "b=2; Path=/; HttpOnly; Expires=Wed, 21 Oct 2037 07:28:00 GMT".to_owned(),
            ],
        )?;
        let multi = response.header_values("x-multi");
        report
            .notes
            .push(format!("[{}] X-Multi came back as {multi:?}", front.name));
        let multi: Vec<&str> = multi.iter().map(String::as_str).collect();
        expect_eq("X-Multi values", &split_list(&multi, ','), &["one", "two"])?;
        if front.payload == Payload::V1 {
            expect_eq(
                "X-Multi header lines (v1 multiValueHeaders)",
                &multi.len(),
                &2,
            )?;
        }
        Ok(())
    }
    .await;
    report.record(
        front.name,
        "two Set-Cookie come back as two headers, X-Multi keeps both values",
        outcome,
    );

    // Status codes.
    for code in [201u16, 404, 503] {
        let outcome = async {
            let response =
                call(front, "GET", &format!("/status/{code}"), &[], Bytes::new()).await?;
            expect_status(&response, code)
        }
        .await;
        report.record(
            front.name,
            &format!("/status/{code} answers {code}"),
            outcome,
        );
    }

    // The app's context: stage from the function environment, a port, cwd = the
    // unpacked code (LAMBDA_TASK_ROOT), and the forwarding headers of the contract.
    let outcome = async {
        let echo = get_echo(front, "/context", &[], report).await?;
        expect_eq(
            "UP_STAGE",
            &echo.env.get("UP_STAGE").cloned().flatten(),
            &Some(STAGE.to_owned()),
        )?;
        if echo
            .env
            .get("PORT")
            .cloned()
            .flatten()
            .is_none_or(|p| p.is_empty())
        {
            return Err(format!("PORT not set: env {:?}", echo.env));
        }
        let cwd = Path::new(&echo.cwd);
        let code_root = ministack
            .tmpdir()
            .join(format!("ministack-provided-code-{}", ministack.port()));
        if !cwd.starts_with(&code_root) || !cwd.join("up.json").is_file() {
            return Err(format!(
                "cwd {} is not the unpacked code under {}",
                echo.cwd,
                code_root.display()
            ));
        }
        for name in ["x-forwarded-for", "x-forwarded-proto", "x-request-id"] {
            if echo.header(name).is_empty() {
                return Err(format!("no {name} header; the app saw {:?}", echo.headers));
            }
        }
        Ok(())
    }
    .await;
    report.record(
        front.name,
        "app context: UP_STAGE, PORT, cwd = LAMBDA_TASK_ROOT, X-Forwarded-*, X-Request-Id",
        outcome,
    );
}

/// Sequential requests are served by one warm execution environment: one bootstrap, one
/// app process. Every echo so far (all fronts hit the same alias) and a few more must
/// report the same app pid.
async fn check_warm_reuse(fronts: &[Front], report: &mut Report) {
    for round in 0..2 {
        for front in fronts {
            let outcome = get_echo(front, &format!("/warm/{round}"), &[], report)
                .await
                .map(drop);
            report.record(
                front.name,
                &format!("warm request {round} answers"),
                outcome,
            );
        }
    }
    let distinct: BTreeSet<u32> = report.pids.iter().map(|(_, pid)| *pid).collect();
    let outcome = if distinct.len() == 1 {
        Ok(())
    } else {
        Err(format!(
            "{} app pids over {} sequential requests (expected 1): {:?}",
            distinct.len(),
            report.pids.len(),
            report.pids
        ))
    };
    report.record(
        ALL_FRONTS,
        "warm reuse: every sequential request, on every front, reached the same app pid",
        outcome,
    );
}

/// The app dies mid-request: that request gets a 502 naming the exit, the next one is served
/// by a restarted app (`UP_RESTARTS=1`) in the same execution environment.
async fn check_crash_and_restart(front: &Front, report: &mut Report) {
    let crash = match call(front, "GET", "/exit/3", &[], Bytes::new()).await {
        Ok(r) if r.status == 502 && r.text().contains("the app exited") => Ok(()),
        Ok(r) => Err(format!(
            "expected 502 naming the exit, got {} {}",
            r.status,
            r.text()
        )),
        Err(e) => Err(e),
    };
    report.record(front.name, "app dying mid-request gives 502", crash);
    let before = report.pids.last().map(|(_, pid)| *pid);
    let restarted = match get_echo(front, "/after-crash", &[], report).await {
        Ok(echo) => {
            let restarts = echo.env.get("UP_RESTARTS").cloned().flatten();
            if restarts.as_deref() == Some("1") && Some(echo.pid) != before {
                Ok(())
            } else {
                Err(format!(
                    "UP_RESTARTS {restarts:?}, pid {} (was {before:?})",
                    echo.pid
                ))
            }
        }
        Err(e) => Err(e),
    };
    report.record(
        front.name,
        "next request is served by the restarted app",
        restarted,
    );
}

/// After teardown, every app process the echo reported must be gone (bounded wait);
/// one still running is reported and then killed by its pid.
async fn check_no_app_outlives(report: &mut Report) {
    const GRACE: std::time::Duration = std::time::Duration::from_secs(5);
    let pids: BTreeSet<u32> = report.pids.iter().map(|(_, pid)| *pid).collect();
    let deadline = std::time::Instant::now() + GRACE;
    while pids.iter().any(|pid| !has_exited(*pid)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let survivors: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| !has_exited(*pid))
        .collect();
    for pid in &survivors {
        kill_pid(*pid);
    }
    let outcome = if survivors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "app process(es) {survivors:?} still running {GRACE:?} after the bootstrap got \
             SIGTERM (and SIGKILL after the grace); killed them now"
        ))
    };
    report.record(
        ALL_FRONTS,
        "teardown: no app process outlives its bootstrap",
        outcome,
    );
}

async fn call(
    front: &Front,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<HttpResponse, String> {
    // Like curl, send `Accept: */*` unless the check sets Accept itself (or opts out
    // with an empty value): a REST API decodes a base64 answer only when Accept matches
    // binaryMediaTypes.
    let mut all: Vec<(&str, &str)> = headers
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
    {
        all.push(("Accept", "*/*"));
    }
    let url = format!("{}{path}", front.base);
    http_request(method, &url, &all, body)
        .await
        .map_err(|e| format!("{e:#}"))
}

async fn get_echo(
    front: &Front,
    path: &str,
    headers: &[(&str, &str)],
    report: &mut Report,
) -> Result<Echo, String> {
    let response = call(front, "GET", path, headers, Bytes::new()).await?;
    parse_echo(&response, report, front)
}

fn parse_echo(response: &HttpResponse, report: &mut Report, front: &Front) -> Result<Echo, String> {
    expect_status(response, 200)?;
    let echo: Echo = serde_json::from_slice(&response.body)
        .map_err(|e| format!("not the echo JSON ({e}): {}", snippet(&response.text())))?;
    report.pids.push((front.name.to_owned(), echo.pid));
    Ok(echo)
}

fn expect_status(response: &HttpResponse, code: u16) -> Result<(), String> {
    if response.status.as_u16() == code {
        Ok(())
    } else {
        Err(format!(
            "status {} (expected {code}); headers {:?}; body {}",
            response.status,
            response.headers,
            snippet(&response.text())
        ))
    }
}

fn expect_eq<A, B>(what: &str, actual: &A, expected: &B) -> Result<(), String>
where
    A: PartialEq<B> + std::fmt::Debug + ?Sized,
    B: std::fmt::Debug + ?Sized,
{
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {actual:?}, expected {expected:?}"))
    }
}

fn expect_bytes(what: &str, actual: &[u8], expected: &[u8]) -> Result<(), String> {
    if actual == expected {
        return Ok(());
    }
    let first_diff = actual.iter().zip(expected).position(|(a, b)| a != b);
    Err(format!(
        "{what}: {} bytes, expected {}; first difference at {first_diff:?}; got starts {}",
        actual.len(),
        expected.len(),
        snippet(&String::from_utf8_lossy(actual))
    ))
}

/// Split header values that may have been comma- (or `;`-) joined into single items.
fn split_list<'a>(values: &[&'a str], separator: char) -> Vec<&'a str> {
    values
        .iter()
        .flat_map(|v| v.split(separator))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// `a=1&b=2` into pairs (no percent-decoding: the test only sends plain values).
fn query_pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// `n` bytes where byte `i` is `i % 256`.
fn all_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 256) as u8).collect()
}

fn snippet(text: &str) -> String {
    const MAX: usize = 600;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}
