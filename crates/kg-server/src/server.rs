//! Listening, accepting, serving connections, and shutting down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::conn::Deadline;
use crate::http::{App, Service};
use crate::log;
use crate::settings::Settings;

/// How connections are served: the HTTP builders, built once.
pub(crate) struct Serving {
    pub app: Arc<App>,
    pub tls: Option<TlsAcceptor>,
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Serving {
    pub fn new(settings: &Settings, app: Arc<App>, tls: Option<TlsAcceptor>) -> Serving {
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.timer(TokioTimer::new())
            // A backstop only: `Deadline` enforces the header and idle timeouts themselves.
            .header_read_timeout(settings.idle_timeout + settings.header_timeout)
            // Room for an 8 KiB request line and 16 KiB of headers; `App::handle` answers
            // 414 and 431 for each limit, hyper answers 431 for anything beyond.
            .max_buf_size(crate::http::MAX_TARGET + crate::http::MAX_HEADER_BYTES + 1024)
            .keep_alive(true);
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(crate::http::MAX_HEADER_BYTES as u32)
            .max_concurrent_streams(128);
        Serving {
            app,
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
                this.serve(stream, peer, shutdown).await;
                this.app.metrics().connection_closed();
                drop(permit);
            });
        }
    }

    async fn serve(&self, stream: TcpStream, peer: SocketAddr, shutdown: watch::Receiver<bool>) {
        let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let svc = Service {
            app: Arc::clone(&self.app),
            peer,
            served: Arc::clone(&served),
        };
        match &self.tls {
            None => {
                let io = Deadline::new(
                    stream,
                    self.header_timeout,
                    self.idle_timeout,
                    false,
                    served,
                );
                self.serve_h1(io, svc, shutdown).await;
            }
            Some(acceptor) => {
                // The handshake must finish within the header timeout too.
                let tls = match tokio::time::timeout(self.header_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    _ => return,
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = Deadline::new(tls, self.header_timeout, self.idle_timeout, h2, served);
                if h2 {
                    self.serve_h2(io, svc, shutdown).await;
                } else {
                    self.serve_h1(io, svc, shutdown).await;
                }
            }
        }
    }

    async fn serve_h1<IO>(&self, io: IO, svc: Service, mut shutdown: watch::Receiver<bool>)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let conn = self.h1.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }

    async fn serve_h2<IO>(&self, io: IO, svc: Service, mut shutdown: watch::Receiver<bool>)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let conn = self.h2.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
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
