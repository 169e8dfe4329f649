//! The added latency of the middleware stack, per request: the full stack (access log, limit,
//! throttle, auth, and every web-feature layer) around a stand-in app that answers at once,
//! against the app alone. Run with `cargo bench -p up-bench --bench middleware`.
//!
//! Batches of each configuration are interleaved so that drift on a shared machine hits all of
//! them alike; each batch gives one per-request mean, and the figures are the medians (and p99)
//! of those means. Log lines go through the bootstrap's real JSON log sink (its writer thread
//! writes to a sink that discards them). Then, for context, the time the stack takes to
//! answer a JSON body of about 145 KiB compressed with br and with gzip (median of 20 each).

use bytes::Bytes;
use serde_json::json;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;
use up_bench::stats::Summary;
use up_proxy::event::Shape;
use up_proxy::log::LogSink;
use up_proxy::middleware::{Meta, Request, Response, Stack, stack};

const BATCH: usize = 2_000;
const ROUNDS: usize = 40;

fn app() -> impl tower::Service<
    Request,
    Response = Response,
    Error = Infallible,
    Future = std::future::Ready<Result<Response, Infallible>>,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(|_r: Request| {
        let mut response = http::Response::new(Bytes::from_static(b"{\"ok\":true}"));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        std::future::ready(Ok(response))
    })
}

fn request() -> Request {
    let mut request = http::Request::builder()
        .method("GET")
        .uri("/items/42?view=full")
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0")
        .header("accept", "application/json")
        .header("authorization", "Bearer bench-token")
        .header("x-request-id", "req-1")
        .body(Bytes::new())
        .expect("static request");
    request.extensions_mut().insert(Meta {
        shape: Shape::ApiGatewayV2,
        source_ip: Some("203.0.113.9".into()),
        request_id: "req-1".into(),
        cold: false,
        budget: Duration::from_secs(15),
    });
    request
}

fn build(up_json: serde_json::Value, env: &up_proxy::Env) -> Stack {
    let config = up_config::parse(&up_json.to_string(), Path::new("up.json"), Some("staging"))
        .expect("bench up.json");
    stack(&config, env, app()).expect("stack builds")
}

async fn batch(stack: &Stack) -> Duration {
    let started = Instant::now();
    for _ in 0..BATCH {
        let response = stack
            .clone()
            .oneshot(request())
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(
            response.status(),
            200,
            "the bench request must pass every layer"
        );
    }
    started.elapsed() / BATCH as u32
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sink = Arc::new(LogSink::new(
        "bench-instance".into(),
        Some("staging".into()),
        tracing::level_filters::LevelFilter::INFO,
        Box::new(std::io::sink()),
    ));
    up_proxy::log::init(sink.clone());
    let env = up_proxy::Env::from_iter([
        ("UP_STAGE".to_owned(), "staging".to_owned()),
        ("UP_API_TOKENS".to_owned(), "bench-token".to_owned()),
    ]);
    let base = json!({"name": "bench", "logs": {"disable": true}});
    let throttle = json!({"rate": 1_000_000, "per": "1s", "burst": 1_000_000, "key": "ip"});
    let auth = json!({"bearer": {"tokens_env": "UP_API_TOKENS"}});
    let with = |key: &str, value: serde_json::Value, base: &serde_json::Value| {
        let mut v = base.clone();
        v[key] = value;
        v
    };
    let logs_on = with("logs", json!({"disable": false}), &base);
    let full = with(
        "auth",
        auth.clone(),
        &with("throttle", throttle.clone(), &logs_on),
    );
    let configs: Vec<(&str, Stack)> = vec![
        ("app alone (no stack)", Stack::new(app())),
        ("stack, nothing configured", build(base.clone(), &env)),
        ("access log on", build(logs_on.clone(), &env)),
        (
            "throttle on",
            build(with("throttle", throttle, &base), &env),
        ),
        ("auth (bearer) on", build(with("auth", auth, &base), &env)),
        ("throttle + auth + logs on", build(full, &env)),
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
    runtime.block_on(async {
        // Warm up every stack once.
        for (_, s) in &configs {
            batch(s).await;
        }
        for _ in 0..ROUNDS {
            for (i, (_, s)) in configs.iter().enumerate() {
                samples[i].push(batch(s).await);
            }
        }
    });
    sink.flush();
    let summaries: Vec<Summary> = samples
        .iter_mut()
        .map(|s| Summary::of(s).expect("samples"))
        .collect();
    let floor = summaries[0].median;
    println!("middleware: {ROUNDS} rounds x {BATCH} requests per configuration, per-request means");
    println!(
        "{:<28} {:>10} {:>10} {:>12}",
        "configuration", "median", "p99", "added"
    );
    for ((name, _), summary) in configs.iter().zip(&summaries) {
        println!(
            "{name:<28} {:>8.2}µs {:>8.2}µs {:>10.2}µs",
            summary.median.as_secs_f64() * 1e6,
            summary.p99.as_secs_f64() * 1e6,
            (summary.median.as_secs_f64() - floor.as_secs_f64()) * 1e6
        );
    }
    let full = summaries[summaries.len() - 1].median;
    println!(
        "added by the full stack with throttle + auth + logs on: {:.2}µs median per request (target ≤ 20µs)",
        (full.as_secs_f64() - floor.as_secs_f64()) * 1e6
    );
    runtime.block_on(compression(&env));
}

/// The stack answering a 145 KiB JSON body with each encoding: time and size.
async fn compression(env: &up_proxy::Env) {
    let items: Vec<serde_json::Value> = (0..2050)
        .map(|i| json!({"id": i, "name": format!("item {i}"), "tags": ["a", "b"], "price": i * 7 % 1000, "active": i % 3 == 0}))
        .collect();
    let body = Bytes::from(serde_json::to_vec(&items).expect("json"));
    let big = body.clone();
    let app = tower::service_fn(move |_r: Request| {
        let mut response = http::Response::new(big.clone());
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let config = up_config::parse(
        r#"{"name": "bench", "logs": {"disable": true}}"#,
        Path::new("up.json"),
        Some("staging"),
    )
    .expect("bench up.json");
    let stack = stack(&config, env, app).expect("stack builds");
    for encoding in ["br", "gzip"] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..20 {
            let mut request = request();
            request.headers_mut().insert(
                http::header::ACCEPT_ENCODING,
                http::HeaderValue::from_static(encoding),
            );
            let started = Instant::now();
            let response = stack
                .clone()
                .oneshot(request)
                .await
                .unwrap_or_else(|e| match e {});
            times.push(started.elapsed());
            assert_eq!(response.headers()["content-encoding"], encoding);
            size = response.body().len();
        }
        let summary = Summary::of(&mut times).expect("samples");
        println!(
            "{encoding:<4} a {} KiB JSON body: {:.2} ms median, {size} bytes ({:.1}× smaller)",
            body.len() / 1024,
            summary.median.as_secs_f64() * 1e3,
            body.len() as f64 / size as f64
        );
    }
}
