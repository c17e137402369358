//! Connecting to the upstream, for the proxy and for `keygate check`'s probe alike.
//!
//! Every address a name resolves to is judged by [`upstream::check_addr`], the rule that
//! judged `server.upstream` at start-up, before anything connects to it: a refused address
//! is skipped with a `PermissionDenied` error naming it, and is never connected to.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::upstream::{self, Target};

/// Connects to the upstream: TCP to an address, TCP to a name whose every resolved address
/// is checked again (a `.internal` name must not lead to a public address), or a unix socket.
#[derive(Debug, Clone)]
pub struct Connector {
    target: Arc<Target>,
}

impl Connector {
    /// A connector to `target`.
    pub fn new(target: Target) -> Connector {
        Connector {
            target: Arc::new(target),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let target = Arc::clone(&self.target);
        Box::pin(async move { connect(&target).await.map(TokioIo::new) })
    }
}

/// Connects to `target`: TCP to an address, TCP to a name whose every resolved address is
/// checked again (a `.internal` name must not lead to a public address), or a unix socket.
pub async fn connect(target: &Target) -> io::Result<Stream> {
    let stream = match target {
        Target::Addr(addr) => Stream::Tcp(tokio::net::TcpStream::connect(addr).await?),
        Target::Unix(path) => Stream::Unix(tokio::net::UnixStream::connect(path).await?),
        Target::Name { host, port } => {
            let mut last = None;
            let mut found = None;
            for addr in tokio::net::lookup_host((host.as_str(), *port)).await? {
                if let Err(e) = upstream::check_addr(addr.ip()) {
                    last = Some(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("{host} resolved to {}: {e}", addr.ip()),
                    ));
                    continue;
                }
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(s) => {
                        found = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match found {
                Some(s) => Stream::Tcp(s),
                None => {
                    return Err(last.unwrap_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
                    }));
                }
            }
        }
    };
    if let Stream::Tcp(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    Ok(stream)
}

/// Whether `target` accepts a connection now, within `timeout`: the proxy's own connect,
/// for `keygate check` (outside any runtime). The connection is closed without sending
/// anything; the answer is the address that accepted it.
pub fn probe(target: &Target, timeout: Duration) -> io::Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match tokio::time::timeout(timeout, connect(target)).await {
            Ok(r) => r.map(|stream| match stream {
                Stream::Tcp(s) => s
                    .peer_addr()
                    .map_or_else(|_| "the upstream".to_owned(), |a| a.to_string()),
                Stream::Unix(_) => match target {
                    Target::Unix(p) => format!("unix:{}", p.display()),
                    _ => "the upstream".to_owned(),
                },
            }),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection timed out",
            )),
        }
    })
}

/// A connection to the upstream.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(tokio::net::TcpStream),
    /// A unix socket.
    Unix(tokio::net::UnixStream),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, data),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
