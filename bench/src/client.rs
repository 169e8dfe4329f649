//! One HTTP/1.1 keep-alive connection, as the bootstrap's forwarder and a Lambda runtime use.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Error;

/// The sending half of a connection.
pub type Sender = SendRequest<Full<Bytes>>;

/// Opens a connection to `addr` (`host:port`) with Nagle off (on loopback it only adds
/// latency) and drives it on a task of the current runtime.
pub async fn connect(addr: &str) -> Result<Sender, Error> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    stream.set_nodelay(true).map_err(|source| Error::Connect {
        addr: addr.to_owned(),
        source,
    })?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it; either
        // way the next exchange reports it.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends `request` on `sender` and reads the whole response body.
pub async fn exchange(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> Result<Response<Bytes>, Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}
