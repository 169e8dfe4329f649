//! Compression: gzip and br for responses worth compressing.
//!
//! It matters on Lambda beyond bandwidth: a buffered response is limited to 6 MB, and a body
//! that is not text travels base64-encoded (a third larger), so a 5 MB JSON answer that would be
//! refused fits once compressed. The layer sits inside the response limit, so the limit applies
//! to what is sent.
//!
//! - The encoding follows the request's `Accept-Encoding`, q-values and `*` included (`br` wins
//!   a tie, then gzip); a request without it passes straight through.
//! - Not compressed: bodies under 1 KiB, responses that already have a `Content-Encoding` or a
//!   `Content-Range`, `Cache-Control: no-transform`, event streams (`text/event-stream`), gRPC,
//!   and formats that are compressed already (images but SVG, audio, video, woff fonts, zip,
//!   gzip, PDF, ...).
//! - A compressed response gets `Content-Encoding`, `Vary: Accept-Encoding` and its new
//!   `Content-Length`, and loses `Accept-Ranges` (ranges of the encoded body are not served); a
//!   response that would have been compressed for a client asking for it gets the `Vary` too,
//!   so a cache keeps the variants apart.
//! - gzip is flate2 at level 6; br is [`crate::brotli`], the bootstrap's own small encoder
//!   (about gzip 6's size or smaller, at 60–200 MB/s).
//! - As RFC 9110 §12.5.3 allows (and tower-http does), a client that refuses every encoding we
//!   have, identity included (`Accept-Encoding: identity;q=0`), gets `406`.
//!
//! # Why not tower-http's layer
//! This layer used tower-http's `Compression`, which brings the `brotli` crate: about 1 MB of
//! the bootstrap (its encoder, a 256 KB table and the static dictionary), a third of issue 2's
//! size budget. The body is in memory anyway, so encoding it in one call is all the layer needs;
//! the negotiation below follows tower-http's rules.

use super::{Cause, Request, Response, StackError, text};
use bytes::Bytes;
use http::StatusCode;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, HeaderMap, HeaderValue, VARY,
};
use pin_project_lite::pin_project;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

/// Bodies smaller than this are sent as they are.
pub const MIN_SIZE: u64 = 1024;

/// gzip's level: zlib's default, a good trade of size for time.
const GZIP_LEVEL: u32 = 6;

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
        Compress { inner }
    }
}

/// The service of [`CompressionLayer`].
#[derive(Debug, Clone)]
pub struct Compress<S> {
    inner: S,
}

/// A content coding this layer can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
    Identity,
}

impl Coding {
    /// Preference on equal q-values.
    const ALL: [Coding; 3] = [Coding::Br, Coding::Gzip, Coding::Identity];

    fn parse(token: &str) -> Option<Self> {
        [
            ("br", Self::Br),
            ("gzip", Self::Gzip),
            ("x-gzip", Self::Gzip),
            ("identity", Self::Identity),
        ]
        .into_iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|(_, coding)| coding)
    }
}

/// What `Accept-Encoding` lets us send: `None` when it refuses everything we have, identity
/// included (→ 406). Codings we do not have are ignored; so are entries whose q-value does
/// not parse.
pub fn negotiate(headers: &HeaderMap) -> Option<Coding> {
    let mut explicit: Vec<(Coding, u16)> = Vec::new();
    let mut wildcard = None;
    let entries = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for entry in entries {
        let mut parts = entry.split(';');
        let token = parts.next().unwrap_or("").trim();
        let q = match parts.next() {
            Some(param) => match qvalue(param) {
                Some(q) => q,
                None => continue,
            },
            None => 1000,
        };
        if token == "*" {
            wildcard = Some(q);
        } else if let Some(coding) = Coding::parse(token) {
            explicit.push((coding, q));
        }
    }
    let q_of = |coding: Coding| {
        explicit
            .iter()
            .find(|(c, _)| *c == coding)
            .map(|(_, q)| *q)
            .or(wildcard)
    };
    // The highest q-value above zero; on a tie the earlier coding in `Coding::ALL`.
    let best = Coding::ALL
        .into_iter()
        .filter_map(|c| q_of(c).filter(|q| *q > 0).map(|q| (c, q)))
        .fold(None, |best: Option<(Coding, u16)>, (c, q)| match best {
            Some((_, top)) if top >= q => best,
            _ => Some((c, q)),
        })
        .map(|(c, _)| c);
    match best {
        Some(coding) => Some(coding),
        // Nothing acceptable: identity still is, unless it was refused.
        None if q_of(Coding::Identity) == Some(0) => None,
        None => Some(Coding::Identity),
    }
}

/// `q=0.5` → 500 (thousandths, RFC 9110's three decimals); `None` when malformed.
fn qvalue(param: &str) -> Option<u16> {
    let value = param
        .trim()
        .strip_prefix("q=")
        .or(param.trim().strip_prefix("Q="))?;
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Up to three digits, each worth a tenth of the one before.
    let thousandths = frac
        .bytes()
        .zip([100, 10, 1])
        .map(|(digit, weight)| u16::from(digit - b'0') * weight)
        .sum::<u16>();
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
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
        let coding = if request.headers().contains_key(ACCEPT_ENCODING) {
            negotiate(request.headers())
        } else {
            Some(Coding::Identity)
        };
        CompressFuture {
            inner: self.inner.call(request),
            coding,
        }
    }
}

pin_project! {
    /// The future of [`Compress`].
    #[derive(Debug)]
    pub struct CompressFuture<F> {
        #[pin]
        inner: F,
        // `None`: nothing the client accepts (406).
        coding: Option<Coding>,
    }
}

impl<F, E> Future for CompressFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let Some(coding) = *this.coding else {
            *response.status_mut() = StatusCode::NOT_ACCEPTABLE;
            add_vary(response.headers_mut());
            return Poll::Ready(Ok(response));
        };
        let size = response.body().len() as u64;
        if !worth_compressing(response.headers(), Some(size)) {
            return Poll::Ready(Ok(response));
        }
        add_vary(response.headers_mut());
        let encoded = match coding {
            Coding::Identity => return Poll::Ready(Ok(response)),
            Coding::Br => Ok(("br", Bytes::from(crate::brotli::compress(response.body())))),
            Coding::Gzip => gzip(response.body()).map(|body| ("gzip", body)),
        };
        Poll::Ready(Ok(match encoded {
            Ok((name, body)) => {
                let headers = response.headers_mut();
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(name));
                headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                headers.remove(ACCEPT_RANGES);
                *response.body_mut() = body;
                response
            }
            Err(e) => {
                // Encoding into memory has no I/O to fail; this would be an encoder bug,
                // reported rather than hidden.
                let mut failed = text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
                failed
                    .extensions_mut()
                    .insert(Cause(format!("compressing the response failed: {e}")));
                failed
            }
        }))
    }
}

/// `Vary: Accept-Encoding`, unless the response already varies on it (or on everything).
fn add_vary(headers: &mut HeaderMap) {
    if !mentions_accept_encoding(headers) {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// `body` gzip-encoded.
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    let out = Vec::with_capacity(body.len() / 4 + 64);
    let mut gzip = flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
    gzip.write_all(body)?;
    Ok(Bytes::from(gzip.finish()?))
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
        assert_eq!(crate::brotli::tests::decode(r.body()), body);

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

    fn negotiated(accept: &str) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        negotiate(&headers)
    }

    #[test]
    fn accept_encoding_is_negotiated_as_rfc_9110_says() {
        use Coding::*;
        for (accept, expected) in [
            ("gzip", Some(Gzip)),
            ("x-gzip", Some(Gzip)),
            ("br", Some(Br)),
            ("gzip, br", Some(Br)),
            ("br;q=0.5, gzip;q=1.0", Some(Gzip)),
            ("br;q=0.8, gzip;q=0.8", Some(Br)),
            ("gzip;q=0.5, identity", Some(Identity)),
            ("zstd", Some(Identity)),
            ("gzip;q=0", Some(Identity)),
            ("*", Some(Br)),
            ("*;q=0.2, gzip", Some(Gzip)),
            ("*;q=0", None),
            ("identity;q=0", None),
            ("identity;q=0, gzip", Some(Gzip)),
            ("*;q=0, identity", Some(Identity)),
            ("gzip;q=2, br;q=abc", Some(Identity)),
            ("GZIP;Q=0.9", Some(Gzip)),
        ] {
            assert_eq!(negotiated(accept), expected, "{accept}");
        }
    }

    #[tokio::test]
    async fn refusing_every_coding_is_406_and_ranges_go_with_compression() {
        let body = text_body(20_000);
        let r = send(Some("identity;q=0"), body.clone(), &[JSON]).await;
        assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(r.headers()["vary"], "accept-encoding");

        let r = send(
            Some("gzip"),
            body.clone(),
            &[JSON, ("accept-ranges", "bytes")],
        )
        .await;
        assert_eq!(content_encoding(&r), Some("gzip"));
        assert!(!r.headers().contains_key("accept-ranges"));
        let plain = send(None, body, &[JSON, ("accept-ranges", "bytes")]).await;
        assert_eq!(plain.headers()["accept-ranges"], "bytes");
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
