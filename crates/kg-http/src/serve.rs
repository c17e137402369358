//! Listening, accepting, serving connections, and shutting down.
//!
//! A [`Site`] says what answers: a hyper service per connection and, optionally, a fast
//! lane that HTTP/1 connections start in. This module owns the rest: the connection cap,
//! TLS handshakes within the header timeout, [`Deadline`], HTTP/1 and HTTP/2, and graceful
//! shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::deadline::Deadline;
use crate::fast_lane::{self, Answer};
use crate::log;
use crate::metrics::Metrics;
use crate::peer_owner;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a server answers with.
pub trait Site: Send + Sync + Sized + 'static {
    /// The response body.
    type Body: hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
    /// The service of one connection.
    type Service: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Self::Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + Send
        + 'static;
    /// The fast lane's answerer ([`NoLane`] for none).
    type Lane: Answer + Send + 'static;

    /// The service for a connection.
    fn service(self: &Arc<Self>, conn: Arc<Conn>) -> Self::Service;
    /// The lane HTTP/1 connections start in, if any.
    fn lane(&self) -> Option<&Self::Lane>;
    /// Where connections are counted.
    fn metrics(&self) -> &Metrics;
    /// Whether a loopback peer's socket owner is looked up at accept
    /// ([`Conn::peer_owner`]); off by default, since it costs a netlink round trip.
    fn wants_peer_owner(&self) -> bool {
        false
    }
}

/// A lane that takes nothing.
#[derive(Debug)]
pub struct NoLane;

impl Answer for NoLane {
    fn takes(&self, _: &str) -> bool {
        false
    }

    fn answer(
        &self,
        _: &fast_lane::LaneRequest<'_>,
        _: &mut Vec<u8>,
        _: &mut fast_lane::Date,
    ) -> bool {
        true
    }
}

/// A connection's state shared with its requests: the peer, how many requests are
/// answered and streaming (the connection's deadline reads both), and the shutdown signal.
#[derive(Debug)]
pub struct Conn {
    /// The socket peer.
    pub peer: SocketAddr,
    /// The uid owning the peer's socket, when the peer is on this host's loopback, the site
    /// [wants it](Site::wants_peer_owner) and the kernel said ([`crate::peer_owner`]):
    /// looked up once, at accept, never per request.
    pub peer_owner: Option<u32>,
    /// Requests answered on this connection; the deadline reads it (HTTP/2 bytes that
    /// complete no request must not keep a connection alive).
    served: Arc<AtomicU64>,
    /// Requests whose bodies are still streaming; the deadline waits while any is.
    active: Arc<AtomicUsize>,
    /// Changes when the server stops.
    pub shutdown: watch::Receiver<bool>,
    /// Held for as long as the connection or anything it became (a tunnel) is open.
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    /// Counts a request answered.
    pub fn answered(&self) {
        self.served.fetch_add(1, Relaxed);
    }

    /// Marks a request as streaming until the guard drops.
    pub fn busy(&self) -> Busy {
        self.active.fetch_add(1, Relaxed);
        Busy(Arc::clone(&self.active))
    }
}

/// One request in progress on a connection.
#[derive(Debug)]
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// How connections are served: the HTTP builders, built once.
pub struct Serving<S> {
    site: Arc<S>,
    tls: Option<TlsAcceptor>,
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl<S> std::fmt::Debug for Serving<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Site> Serving<S> {
    /// Serves `site`, over TLS when `tls` is given, with the header timeout (from a request
    /// head's first byte, or from connecting) and the keep-alive idle timeout.
    pub fn new(
        site: Arc<S>,
        tls: Option<TlsAcceptor>,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Serving<S> {
        let h1 = h1_builder();
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(crate::MAX_HEADER_BYTES as u32)
            .max_concurrent_streams(128);
        Serving {
            site,
            tls,
            h1,
            h2,
            header_timeout,
            idle_timeout,
        }
    }

    /// Accepts on `listener` until `shutdown` changes, within the connection cap.
    pub async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        permits: Arc<Semaphore>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = shutdown.changed() => return,
            };
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::error("accept_failed", &[("error", &e.to_string())]);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let this = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                this.site.metrics().connection_opened();
                this.serve(stream, peer, shutdown, permit).await;
                this.site.metrics().connection_closed();
            });
        }
    }

    /// Serves one connection. The permit is held until it closes, or until what it became
    /// (a WebSocket tunnel) has closed too.
    async fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
        permit: OwnedSemaphorePermit,
    ) {
        // Before the TLS handshake: the peer's socket is surely still open.
        let owner = if self.site.wants_peer_owner() && crate::net::is_loopback(peer.ip()) {
            stream
                .local_addr()
                .ok()
                .and_then(|local| peer_owner::owner(peer, local))
        } else {
            None
        };
        let peer = (peer, owner);
        match &self.tls {
            None => self.serve_io(stream, false, peer, shutdown, permit).await,
            Some(acceptor) => {
                // The handshake must finish within the header timeout too, and a handshake
                // still pending when the server stops is dropped: no request was sent on it,
                // and waiting for it held shutdown up by the whole header timeout.
                let mut stop = shutdown.clone();
                let handshake = tokio::time::timeout(self.header_timeout, acceptor.accept(stream));
                let tls = tokio::select! {
                    r = handshake => match r {
                        Ok(Ok(tls)) => tls,
                        _ => return,
                    },
                    _ = stop.changed() => return,
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                self.serve_io(tls, h2, peer, shutdown, permit).await;
            }
        }
    }

    async fn serve_io<IO>(
        &self,
        io: IO,
        h2: bool,
        (peer, peer_owner): (SocketAddr, Option<u32>),
        shutdown: watch::Receiver<bool>,
        permit: OwnedSemaphorePermit,
    ) where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let served = Arc::new(AtomicU64::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let io = Deadline::new(
            io,
            self.header_timeout,
            self.idle_timeout,
            h2,
            Arc::clone(&served),
            Arc::clone(&active),
        );
        let conn = Arc::new(Conn {
            peer,
            peer_owner,
            served,
            active,
            shutdown: shutdown.clone(),
            _permit: permit,
        });
        let svc = self.site.service(conn);
        if h2 {
            serve_until(self.h2.serve_connection(TokioIo::new(io), svc), shutdown).await;
            return;
        }
        match self.site.lane() {
            // HTTP/1 starts in the fast lane; hyper takes over at the first request the
            // lane leaves to it.
            Some(lane) => {
                let mut shutdown = shutdown;
                if let Some(rest) = fast_lane::serve(lane, io, peer, &mut shutdown).await {
                    let conn = self.h1.serve_connection(TokioIo::new(rest), svc);
                    serve_until(conn.with_upgrades(), shutdown).await;
                }
            }
            None => {
                let conn = self.h1.serve_connection(TokioIo::new(io), svc);
                serve_until(conn.with_upgrades(), shutdown).await;
            }
        }
    }
}

/// The HTTP/1 connection settings (the fast lane's tests build hyper the same way).
pub fn h1_builder() -> hyper::server::conn::http1::Builder {
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.timer(TokioTimer::new())
        // No header read timer of hyper's: `Deadline` enforces the header and idle
        // timeouts. hyper's would be a second timer per request (a boxed sleep created,
        // registered in the timer wheel and removed for every request head), and could
        // never fire first: it is polled only when a read returned `Pending`, and that
        // same read armed `Deadline`'s own deadline, which is never later (see deadline.rs).
        .header_read_timeout(None)
        // Room for an 8 KiB request line and 16 KiB of headers; [`crate::too_large`] answers
        // 414 and 431 for each limit, hyper answers 431 for anything beyond. (While a
        // connection is in the fast lane, the lane reads the heads and tells the two apart
        // however long they get.)
        .max_buf_size(fast_lane::MAX_HEAD)
        .keep_alive(true);
    h1
}

/// A connection that can be asked to finish what it is doing and close.
trait Graceful: Future {
    fn graceful(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Drives a connection to its end; on shutdown, lets it finish in-flight requests first.
async fn serve_until<C: Graceful>(conn: C, mut shutdown: watch::Receiver<bool>) {
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful();
            let _ = conn.await;
        }
    }
}

/// Waits for SIGTERM or SIGINT, and says which came.
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
