//! Listening, accepting, serving connections, and shutting down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use tokio::net::{TcpListener, TcpStream};

use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::conn::Deadline;
use crate::fast;
use crate::gateway::{ConnState, Gateway, GatewayService};
use crate::http::{App, Service};
use crate::log;
use crate::settings::Settings;

/// How connections are served: the HTTP builders, built once.
pub(crate) struct Serving {
    pub app: Arc<App>,
    /// The reverse proxy, in proxy mode.
    pub gateway: Option<Arc<Gateway>>,
    pub tls: Option<TlsAcceptor>,
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Serving {
    pub fn new(
        settings: &Settings,
        app: Arc<App>,
        gateway: Option<Arc<Gateway>>,
        tls: Option<TlsAcceptor>,
    ) -> Serving {
        let h1 = h1_builder();
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(crate::http::MAX_HEADER_BYTES as u32)
            .max_concurrent_streams(128);
        Serving {
            app,
            gateway,
            tls,
            h1,
            h2,
            header_timeout: settings.header_timeout,
            idle_timeout: settings.idle_timeout,
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
                this.app.metrics().connection_opened();
                this.serve(stream, peer, shutdown, permit).await;
                this.app.metrics().connection_closed();
            });
        }
    }

    /// Serves one connection. The permit is held until it closes, or in proxy mode until
    /// the WebSocket tunnels it became have closed too.
    async fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
        permit: OwnedSemaphorePermit,
    ) {
        match &self.tls {
            None => self.serve_io(stream, false, peer, shutdown, permit).await,
            Some(acceptor) => {
                // The handshake must finish within the header timeout too.
                let tls = match tokio::time::timeout(self.header_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    _ => return,
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
        peer: SocketAddr,
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
        match &self.gateway {
            None => {
                let svc = Service {
                    app: Arc::clone(&self.app),
                    peer,
                    served,
                };
                if h2 {
                    serve_until(self.h2.serve_connection(TokioIo::new(io), svc), shutdown).await;
                } else {
                    // HTTP/1 starts in the fast lane; hyper takes over at the first request
                    // the lane leaves to it.
                    let mut shutdown = shutdown;
                    if let Some(rest) = fast::serve(&self.app, io, peer, &mut shutdown).await {
                        let conn = self.h1.serve_connection(TokioIo::new(rest), svc);
                        serve_until(conn, shutdown).await;
                    }
                }
                drop(permit);
            }
            Some(gateway) => {
                let io = TokioIo::new(io);
                let svc = GatewayService {
                    gateway: Arc::clone(gateway),
                    conn: Arc::new(ConnState {
                        peer,
                        active,
                        shutdown: shutdown.clone(),
                        _permit: Some(permit),
                    }),
                    served,
                };
                if h2 {
                    serve_until(self.h2.serve_connection(io, svc), shutdown).await;
                } else {
                    let conn = self.h1.serve_connection(io, svc).with_upgrades();
                    serve_until(conn, shutdown).await;
                }
            }
        }
    }
}

/// The HTTP/1 connection settings (the fast lane's tests build hyper the same way).
pub(crate) fn h1_builder() -> hyper::server::conn::http1::Builder {
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.timer(TokioTimer::new())
        // No header read timer of hyper's: `Deadline` enforces the header and idle
        // timeouts. hyper's would be a second timer per request (a boxed sleep created,
        // registered in the timer wheel and removed for every request head), and could
        // never fire first: it is polled only when a read returned `Pending`, and that
        // same read armed `Deadline`'s own deadline, which is never later (see conn.rs).
        .header_read_timeout(None)
        // Room for an 8 KiB request line and 16 KiB of headers; `App::handle` answers
        // 414 and 431 for each limit, hyper answers 431 for anything beyond. (While a
        // connection is in the fast lane, the lane reads the heads and tells the two apart
        // however long they get.)
        .max_buf_size(fast::MAX_HEAD)
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

/// Waits for SIGTERM or SIGINT.
pub(crate) async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
