//! Lambda refuses a buffered response payload over 6 MB, and the client would get a bare
//! error. This layer turns such a response into a clear `502` ("response of N bytes exceeds
//! Lambda's 6 MB limit") carrying its [`Cause`], so the access log records it once.
//!
//! The size is what the response will take once serialised as the event's Lambda response:
//! headers plus the body as text, or base64 (a third larger) when it goes out as binary.

use super::{Cause, Request, Response, text};
use http::StatusCode;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

/// Refuses responses over `max` serialised bytes.
#[derive(Debug, Clone, Copy)]
pub struct LimitLayer {
    max: usize,
}

impl LimitLayer {
    /// A limit of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;
    fn layer(&self, inner: S) -> Limit<S> {
        Limit {
            inner,
            max: self.max,
        }
    }
}

/// The service of [`LimitLayer`].
#[derive(Debug, Clone)]
pub struct Limit<S> {
    inner: S,
    max: usize,
}

impl<S: Service<Request, Response = Response>> Service<Request> for Limit<S> {
    type Response = Response;
    type Error = S::Error;
    type Future = LimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        LimitFuture {
            inner: self.inner.call(request),
            max: self.max,
        }
    }
}

pin_project! {
    /// The future of [`Limit`].
    #[derive(Debug)]
    pub struct LimitFuture<F> {
        #[pin]
        inner: F,
        max: usize,
    }
}

impl<F, E> Future for LimitFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        Poll::Ready(result.map(|response| {
            let size = encoded_size(&response);
            if size <= *this.max {
                return response;
            }
            let message = format!("response of {size} bytes exceeds Lambda's 6 MB limit");
            let mut refused = text(StatusCode::BAD_GATEWAY, &message);
            refused.extensions_mut().insert(Cause(message));
            refused
        }))
    }
}

/// About how many bytes `response` takes as a Lambda response.
pub fn encoded_size(response: &Response) -> usize {
    let headers: usize = response
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 6)
        .sum();
    let body = response.body();
    let as_text = crate::response::textual(response.headers()) && std::str::from_utf8(body).is_ok();
    let body = if as_text {
        body.len()
    } else {
        body.len().div_ceil(3) * 4
    };
    100 + headers + body
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::convert::Infallible;
    use tower::ServiceExt;

    async fn through(limit: usize, response: Response) -> Response {
        let inner = tower::service_fn(move |_req: Request| {
            let response = response.clone();
            async move { Ok::<_, Infallible>(response) }
        });
        LimitLayer::new(limit)
            .layer(inner)
            .oneshot(Request::new(Bytes::new()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn binary_bodies_count_as_base64() {
        let body = Bytes::from(vec![0u8; 3000]);
        let small = through(5000, http::Response::new(body.clone())).await;
        assert_eq!(small.status(), 200);
        // 3000 bytes are 4000 in base64: over a 4000-byte limit once headers count.
        let big = through(4000, http::Response::new(body)).await;
        assert_eq!(big.status(), 502);
        let message = String::from_utf8(big.body().to_vec()).unwrap();
        assert!(message.contains("exceeds Lambda's 6 MB limit"), "{message}");
        assert!(big.extensions().get::<Cause>().is_some());
    }

    #[tokio::test]
    async fn text_bodies_count_as_they_are() {
        let mut response = http::Response::new(Bytes::from(vec![b'a'; 3000]));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        assert_eq!(through(4000, response).await.status(), 200);
    }
}
