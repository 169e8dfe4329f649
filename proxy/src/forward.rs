//! Sending a request to the app over loopback, on a small keep-alive pool.
//!
//! Lambda freezes the environment between invocations; an app's idle timeout may close a pooled
//! connection meanwhile, and the next request written to it fails. Such a failure on a *reused*
//! connection, before any response arrived, is retried once on a fresh connection. The body is
//! already in memory (Lambda events are buffered), so the retry resends it exactly.

use crate::error::ForwardError;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::net::TcpStream;

/// Idle connections kept: Lambda sends one request at a time per environment, so a few suffice.
const MAX_IDLE: usize = 4;

/// The app's address and the idle connections to it.
#[derive(Debug)]
pub struct Forwarder {
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Forwarder {
    /// A forwarder to `addr` with an empty pool.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&self, request: &Request<Bytes>) -> Result<Response<Bytes>, ForwardError> {
        let mut pooled_failure = None;
        if let Some(sender) = self.take_idle() {
            match self.exchange(sender, request).await {
                Err(ForwardError::Unreachable(e)) => {
                    tracing::debug!(cause = %e, "pooled connection failed; retrying on a fresh one");
                    pooled_failure = Some(e);
                }
                other => return other,
            }
        }
        let sender = match self.connect().await {
            Ok(sender) => sender,
            // The pooled attempt may have delivered the request before failing: report that,
            // not the refusal, so nobody takes the request for one the app never saw.
            Err(refused) => return Err(pooled_failure.map_or(refused, ForwardError::Unreachable)),
        };
        self.exchange(sender, request).await
    }

    async fn exchange(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        request: &Request<Bytes>,
    ) -> Result<Response<Bytes>, ForwardError> {
        let mut outgoing = Request::new(Full::new(request.body().clone()));
        *outgoing.method_mut() = request.method().clone();
        *outgoing.uri_mut() = request.uri().clone();
        *outgoing.headers_mut() = request.headers().clone();
        sender.ready().await.map_err(ForwardError::Unreachable)?;
        let response = sender
            .send_request(outgoing)
            .await
            .map_err(ForwardError::Unreachable)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(ForwardError::Body)?.to_bytes();
        self.put_idle(sender);
        Ok(Response::from_parts(parts, body))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ForwardError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(ForwardError::Connect)?;
        // Nagle would hold small writes back waiting for ACKs: on loopback that is pure latency.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ForwardError::Unreachable)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(cause = %e, "app connection closed");
            }
        });
        Ok(sender)
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.lock();
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SendRequest<Full<Bytes>>>> {
        // The lock is never held across an await or a panic point, so it cannot be poisoned;
        // recover the data anyway rather than panic.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
