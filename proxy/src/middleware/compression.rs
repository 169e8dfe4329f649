//! Compression: gzip and br for responses worth compressing, by tower-http's compression layer.
//!
//! It matters on Lambda beyond bandwidth: a buffered response is limited to 6 MB, and a body
//! that is not text travels base64-encoded (a third larger), so a 5 MB JSON answer that would be
//! refused fits once compressed. The layer sits inside the response limit, so the limit applies
//! to what is sent.
//!
//! - The encoding follows the request's `Accept-Encoding`, q-values included (`br` wins a tie);
//!   a request without it passes straight through.
//! - Not compressed: bodies under 1 KiB, responses that already have a `Content-Encoding` or a
//!   `Content-Range`, `Cache-Control: no-transform`, event streams (`text/event-stream`), gRPC,
//!   and formats that are compressed already (images but SVG, audio, video, woff fonts, zip,
//!   gzip, PDF, ...).
//! - A compressed response gets `Content-Encoding`, `Vary: Accept-Encoding` and its new
//!   `Content-Length`; a response that would have been compressed for a client asking for it
//!   gets the `Vary` too, so a cache keeps the variants apart.
//! - Levels are tower-http's defaults: gzip 6, br 4 (fast, and smaller than gzip 6).
//! - As tower-http does (RFC 9110), a client that refuses every encoding we have, identity
//!   included (`Accept-Encoding: identity;q=0`), gets `406`.
//!
//! # Why tower-http over the buffered body
//! tower-http's layer wants an `http_body::Body` response, so the buffered body goes in as
//! [`Full`] and the compressed stream is collected back into [`Bytes`]. Nothing in that chain
//! ever waits (the input is in memory), so the collection completes in the same poll; what it
//! adds is a few small allocations, nothing next to the compression itself (a 145 KiB JSON body
//! takes about 2.4 ms with gzip and 1.5 ms with br; the six web layers together cost about 2 µs
//! per request when nothing is configured). Writing it against flate2/brotli directly would
//! repeat tower-http's `Accept-Encoding` negotiation and predicates for no gain; the binary
//! carries the same encoders either way.
//!
//! The br encoder (the `brotli` crate, which tower-http uses) is most of this layer's weight in
//! the bootstrap: about 1.1 MB of the stripped binary, against about 90 KB for gzip.

use super::{Cause, Request, Response, StackError, text};
use bytes::Bytes;
use http::StatusCode;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    HeaderMap, HeaderValue, VARY,
};
use http_body_util::combinators::Collect;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};
use tower_http::compression::{Compression, CompressionBody, CompressionLevel, Predicate};

/// Bodies smaller than this are sent as they are.
pub const MIN_SIZE: u64 = 1024;

/// The compression layer (always in the stack; it acts only when the client asks).
pub fn layer(
    _config: &up_config::Config,
    _env: &crate::Env,
) -> Result<CompressionLayer, StackError> {
    Ok(CompressionLayer)
}

/// gzip and br (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CompressionLayer;

impl<S> Layer<S> for CompressionLayer {
    type Service = Compress<S>;
    fn layer(&self, inner: S) -> Compress<S> {
        Compress {
            inner: Compression::new(Buffered { inner })
                .gzip(true)
                .br(true)
                .quality(CompressionLevel::Default)
                .compress_when(Policy),
        }
    }
}

/// The service of [`CompressionLayer`].
#[derive(Clone)]
pub struct Compress<S> {
    inner: Compression<Buffered<S>, Policy>,
}

impl<S: fmt::Debug> fmt::Debug for Compress<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compress")
            .field("inner", &self.inner.get_ref().inner)
            .finish_non_exhaustive()
    }
}

/// What is worth compressing (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy;

impl Predicate for Policy {
    fn should_compress<B: Body>(&self, response: &http::Response<B>) -> bool {
        worth_compressing(response.headers(), response.body().size_hint().exact())
    }
}

fn worth_compressing(headers: &HeaderMap, size: Option<u64>) -> bool {
    size.is_none_or(|size| size >= MIN_SIZE)
        && !headers.contains_key(CONTENT_ENCODING)
        && !headers.contains_key(CONTENT_RANGE)
        && !headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("no-transform"))
        && compressible_type(headers)
}

/// False for streams and for formats that are compressed already.
fn compressible_type(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    match kind {
        "image" => subtype == "svg+xml",
        "video" | "audio" => false,
        "font" => !subtype.starts_with("woff"),
        "text" => subtype != "event-stream",
        "application" => !matches!(
            subtype,
            "grpc"
                | "grpc+proto"
                | "zip"
                | "gzip"
                | "x-gzip"
                | "zstd"
                | "x-bzip2"
                | "x-xz"
                | "x-7z-compressed"
                | "x-rar-compressed"
                | "vnd.rar"
                | "x-brotli"
                | "pdf"
        ),
        _ => true,
    }
}

fn mentions_accept_encoding(headers: &HeaderMap) -> bool {
    headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let v = v.trim();
            v == "*" || v.eq_ignore_ascii_case("accept-encoding")
        })
}

impl<S> Service<Request> for Compress<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CompressFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !request.headers().contains_key(ACCEPT_ENCODING) {
            // Ready: `poll_ready` went through `Compression` and `Buffered` to this service.
            return CompressFuture::Direct {
                inner: self.inner.get_mut().inner.call(request),
            };
        }
        CompressFuture::Compressing {
            inner: self.inner.call(request),
        }
    }
}

/// The inner service with its response body as [`Full`], as tower-http's layer wants it.
#[derive(Debug, Clone)]
pub struct Buffered<S> {
    inner: S,
}

impl<S> Service<Request> for Buffered<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = S::Error;
    type Future = BufferedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        BufferedFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The future of [`Buffered`].
    #[derive(Debug)]
    pub struct BufferedFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> Future for BufferedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<http::Response<Full<Bytes>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(response.map(Full::new)))
    }
}

type Compressed = CompressionBody<Full<Bytes>>;

pin_project! {
    /// The future of [`Compress`].
    #[project = CompressProj]
    pub enum CompressFuture<F> {
        /// The client accepts no encoding: the response as it is.
        Direct { #[pin] inner: F },
        /// Waiting for the response, which tower-http then wraps in its encoder.
        Compressing {
            #[pin]
            inner: tower_http::compression::ResponseFuture<BufferedFuture<F>, Policy>,
        },
        /// Collecting the (possibly) encoded body back into [`Bytes`].
        Collecting {
            parts: Option<http::response::Parts>,
            #[pin]
            body: Collect<Compressed>,
        },
    }
}

impl<F> fmt::Debug for CompressFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self {
            Self::Direct { .. } => "Direct",
            Self::Compressing { .. } => "Compressing",
            Self::Collecting { .. } => "Collecting",
        };
        f.debug_tuple("CompressFuture").field(&state).finish()
    }
}

impl<F, E> Future for CompressFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                CompressProj::Direct { inner } => {
                    let mut response = ready!(inner.poll(cx))?;
                    let size = response.body().len() as u64;
                    let headers = response.headers_mut();
                    if worth_compressing(headers, Some(size)) && !mentions_accept_encoding(headers)
                    {
                        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
                    }
                    return Poll::Ready(Ok(response));
                }
                CompressProj::Compressing { inner } => {
                    let (parts, body) = ready!(inner.poll(cx))?.into_parts();
                    self.set(CompressFuture::Collecting {
                        parts: Some(parts),
                        body: body.collect(),
                    });
                }
                CompressProj::Collecting { parts, body } => {
                    let collected = ready!(body.poll(cx));
                    let Some(mut parts) = parts.take() else {
                        panic!("CompressFuture polled after completion");
                    };
                    let response = match collected {
                        Ok(collected) => {
                            let body = collected.to_bytes();
                            if !parts.headers.contains_key(CONTENT_LENGTH) && !body.is_empty() {
                                parts
                                    .headers
                                    .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                            }
                            http::Response::from_parts(parts, body)
                        }
                        Err(e) => {
                            // Encoding a body held in memory has no I/O to fail; this would
                            // be an encoder bug, reported rather than hidden.
                            let mut failed =
                                text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
                            failed
                                .extensions_mut()
                                .insert(Cause(format!("compressing the response failed: {e}")));
                            failed
                        }
                    };
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::io::Read;
    use tower::ServiceExt;

    fn text_body(len: usize) -> Bytes {
        let line = "The quick brown fox jumps over the lazy dog. 0123456789\n";
        Bytes::from(line.repeat(len / line.len() + 1)[..len].to_owned())
    }

    async fn send(
        accept_encoding: Option<&str>,
        body: Bytes,
        headers: &[(&'static str, &'static str)],
    ) -> Response {
        let mut response = http::Response::new(body);
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        let app = tower::service_fn(move |_req: Request| {
            let response = response.clone();
            async move { Ok::<_, Infallible>(response) }
        });
        let mut request = http::Request::get("/").body(Bytes::new()).unwrap();
        if let Some(accept) = accept_encoding {
            request
                .headers_mut()
                .insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        }
        CompressionLayer.layer(app).oneshot(request).await.unwrap()
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

    const JSON: (&str, &str) = ("content-type", "application/json");

    fn content_encoding(response: &Response) -> Option<&str> {
        response
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn gzip_and_br_follow_accept_encoding() {
        let body = text_body(20_000);
        let r = send(Some("gzip"), body.clone(), &[JSON]).await;
        assert_eq!(content_encoding(&r), Some("gzip"));
        assert_eq!(r.headers()["vary"], "accept-encoding");
        assert_eq!(
            r.headers()["content-length"],
            r.body().len().to_string().as_str()
        );
        assert!(r.body().len() < body.len() / 5);
        assert_eq!(gunzip(r.body()), body);

        let r = send(Some("gzip, deflate, br"), body.clone(), &[JSON]).await;
        assert_eq!(content_encoding(&r), Some("br"));
        assert_eq!(unbrotli(r.body()), body);

        let r = send(Some("br;q=0.5, gzip;q=1.0"), body.clone(), &[JSON]).await;
        assert_eq!(content_encoding(&r), Some("gzip"));

        let r = send(Some("zstd"), body.clone(), &[JSON]).await;
        assert_eq!(content_encoding(&r), None);
        assert_eq!(r.body(), &body);
    }

    #[tokio::test]
    async fn what_is_not_worth_compressing_passes_as_it_is() {
        let big = text_body(20_000);
        for (body, headers) in [
            (text_body(1000), vec![JSON]),
            (big.clone(), vec![JSON, ("content-encoding", "gzip")]),
            (big.clone(), vec![("content-type", "image/png")]),
            (big.clone(), vec![("content-type", "video/mp4")]),
            (big.clone(), vec![("content-type", "application/zip")]),
            (big.clone(), vec![("content-type", "text/event-stream")]),
            (
                big.clone(),
                vec![JSON, ("cache-control", "public, no-transform")],
            ),
            (
                big.clone(),
                vec![JSON, ("content-range", "bytes 0-19999/40000")],
            ),
        ] {
            let r = send(Some("gzip, br"), body.clone(), &headers).await;
            assert_eq!(r.body(), &body, "{headers:?}");
            let encoding = r
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap());
            let expected = headers
                .iter()
                .find(|(k, _)| *k == "content-encoding")
                .map(|(_, v)| *v);
            assert_eq!(encoding, expected, "{headers:?}");
        }
        let svg = send(Some("gzip"), big, &[("content-type", "image/svg+xml")]).await;
        assert_eq!(content_encoding(&svg), Some("gzip"));
    }

    #[tokio::test]
    async fn without_accept_encoding_only_vary_is_added() {
        let body = text_body(5000);
        let r = send(None, body.clone(), &[JSON]).await;
        assert_eq!(r.body(), &body);
        assert_eq!(content_encoding(&r), None);
        assert_eq!(r.headers()["vary"], "accept-encoding");
        let small = send(None, text_body(10), &[JSON]).await;
        assert!(!small.headers().contains_key("vary"));
    }
}
