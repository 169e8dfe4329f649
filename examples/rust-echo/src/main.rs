//! rust-echo: an ordinary hyper 1 HTTP server, the kind of app a user brings to `up`.
//!
//! It knows nothing about Lambda: it listens on `127.0.0.1:$PORT` and answers HTTP.
//! The routes (the same contract as `examples/python-echo`) are listed in
//! `examples/README.md`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const NAME: &str = "rust-echo";

type Resp = Response<Full<Bytes>>;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[tokio::main]
async fn main() {
    let port: u16 = env("PORT").and_then(|p| p.parse().ok()).unwrap_or(3000);
    if env("ECHO_FAIL_START").as_deref() == Some("1") {
        eprintln!("fatal: cannot start (ECHO_FAIL_START)");
        std::process::exit(3);
    }
    if let Some(ms) = env("ECHO_START_DELAY_MS").and_then(|v| v.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("fatal: cannot listen on {addr}: {err}");
            std::process::exit(1);
        }
    };
    eprintln!("{NAME} listening on {port}");

    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                eprintln!("{NAME} accept error: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle));
            if let Err(err) = conn.await {
                eprintln!("{NAME} connection error: {err}");
            }
        });
    }
}

async fn handle(req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    // Always read the whole body first so the connection stays usable.
    let resp = match body.collect().await {
        Ok(collected) => route(&parts, collected.to_bytes()).await,
        Err(err) => plain(StatusCode::BAD_REQUEST, format!("bad body: {err}")),
    };
    println!(
        "{NAME} {} {} {}",
        parts.method,
        parts.uri.path(),
        resp.status().as_u16()
    );
    Ok(resp)
}

async fn route(parts: &Parts, body: Bytes) -> Resp {
    let path = parts.uri.path();
    let mut segments = path.split('/').skip(1);
    let first = segments.next().unwrap_or("");
    let arg = segments.next();

    match (first, arg) {
        ("status", Some(arg)) => match arg.parse::<u16>().ok().filter(|c| *c >= 200) {
            Some(code) => match StatusCode::from_u16(code) {
                Ok(status) => plain(status, format!("status {code}")),
                Err(_) => plain(StatusCode::BAD_REQUEST, format!("bad status {arg}")),
            },
            None => plain(StatusCode::BAD_REQUEST, format!("bad status {arg}")),
        },
        ("cookies", None) => {
            let mut resp = plain(StatusCode::OK, "cookies");
            let headers = resp.headers_mut();
            headers.append("set-cookie", HeaderValue::from_static("a=1; Path=/"));
            headers.append(
                "set-cookie",
                HeaderValue::from_static(
                    "b=2; Path=/; HttpOnly; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
                ),
            );
            headers.append("x-multi", HeaderValue::from_static("one"));
            headers.append("x-multi", HeaderValue::from_static("two"));
            resp
        }
        ("bytes", Some(arg)) => match arg.parse::<usize>() {
            // Byte i is i % 256: the truncation is the point.
            #[allow(clippy::cast_possible_truncation)]
            Ok(n) => respond(
                StatusCode::OK,
                "application/octet-stream",
                (0..n).map(|i| i as u8).collect::<Vec<u8>>(),
            ),
            Err(_) => plain(StatusCode::BAD_REQUEST, format!("bad length {arg}")),
        },
        ("mirror", None) => {
            let ctype = parts
                .headers
                .get(CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
            let mut resp = respond(StatusCode::OK, "application/octet-stream", body);
            resp.headers_mut().insert(CONTENT_TYPE, ctype);
            resp
        }
        ("text", Some(charset)) => {
            let data: &'static [u8] = match charset.to_ascii_lowercase().as_str() {
                "utf-8" | "utf8" => "café".as_bytes(),
                "latin-1" | "latin1" | "iso-8859-1" => b"caf\xe9",
                _ => {
                    return plain(
                        StatusCode::BAD_REQUEST,
                        format!("unknown charset {charset}"),
                    );
                }
            };
            match HeaderValue::from_str(&format!("text/plain; charset={charset}")) {
                Ok(ctype) => {
                    let mut resp = respond(StatusCode::OK, "text/plain", data);
                    resp.headers_mut().insert(CONTENT_TYPE, ctype);
                    resp
                }
                Err(_) => plain(StatusCode::BAD_REQUEST, format!("bad charset {charset}")),
            }
        }
        ("sleep", Some(arg)) => match arg.parse::<u64>() {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                echo(parts, &body)
            }
            Err(_) => plain(StatusCode::BAD_REQUEST, format!("bad duration {arg}")),
        },
        ("exit", Some(arg)) => std::process::exit(arg.parse().unwrap_or(1)),
        ("log", None) => {
            println!("plain line from app");
            println!(r#"{{"level":"warn","msg":"json line from app","user":"alice"}}"#);
            eprintln!("error line from app");
            echo(parts, &body)
        }
        _ => echo(parts, &body),
    }
}

/// The echo document: what this server saw of the request.
fn echo(parts: &Parts, body: &Bytes) -> Resp {
    // Header values are bytes; show them as Latin-1 like most servers do.
    let headers: Vec<[String; 2]> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
            [name.as_str().to_owned(), value]
        })
        .collect();
    let doc = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(body),
        "pid": std::process::id(),
        "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "env": {
            "PORT": env("PORT"),
            "UP_STAGE": env("UP_STAGE"),
            "UP_RESTARTS": env("UP_RESTARTS"),
        },
    });
    respond(StatusCode::OK, "application/json", doc.to_string())
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    respond(status, "text/plain; charset=utf-8", body)
}

/// A response with an explicit Content-Length (hyper leaves the body out for HEAD,
/// 204 and 304 by itself).
fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let body: Bytes = body.into();
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return resp;
    }
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *resp.body_mut() = Full::new(body);
    resp
}
