//! Listening, accepting, serving connections, and shutting down.
//!
//! A [`Site`] says what answers: a hyper service per connection and, optionally, a fast
//! lane that HTTP/1 connections start in. This module owns the rest: admission to the
//! connection table ([`crate::slots`]),
//! TLS handshakes within the header timeout, [`Deadline`], HTTP/1 and HTTP/2, and graceful
//! shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::deadline::Deadline;
use crate::fast_lane::{self, Answer};
use crate::log;
use crate::metrics::Metrics;
use crate::peer_owner;
use crate::slots::{Activity, Admission, Shed, Slot, Slots};

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
            Future: Send + Unpin + 'static,
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

/// A connection's state shared with its requests: the peer, its place in the connection
/// table (how many requests are answered and streaming, which the deadline and the table
/// read), and the shutdown signal.
#[derive(Debug)]
pub struct Conn {
    /// The socket peer.
    pub peer: SocketAddr,
    /// The uid owning the peer's socket, when the peer is on this host's loopback, the site
    /// [wants it](Site::wants_peer_owner) and the kernel said ([`crate::peer_owner`]):
    /// looked up once, at accept, never per request.
    pub peer_owner: Option<u32>,
    /// Changes when the server stops.
    pub shutdown: watch::Receiver<bool>,
    /// Held for as long as the connection or anything it became (a tunnel) is open.
    slot: Slot,
}

impl Conn {
    /// Marks a request as streaming until the guard drops: meanwhile no deadline applies
    /// and the connection is never shed.
    pub fn busy(&self) -> Busy {
        let activity = Arc::clone(self.slot.activity());
        activity.active.fetch_add(1, Relaxed);
        Busy(activity)
    }
}

/// One request in progress on a connection.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// A site's service as the server runs it: every request is counted in the connection
/// table from the call (its head was read) until its response is handed to hyper, so that
/// the table never sheds a connection in a request ([`crate::slots`]), and counted as
/// answered then (the HTTP/2 deadline reads it). Here, once, rather than in each site.
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Counted<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Future: Unpin>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = InRequest<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.activity.requests.fetch_add(1, Relaxed);
        InRequest {
            answer: self.inner.call(req),
            activity: Some(Arc::clone(&self.activity)),
        }
    }
}

/// A request's answer being worked out; the request stops counting when it resolves or is
/// dropped (the client went away).
struct InRequest<F> {
    answer: F,
    activity: Option<Arc<Activity>>,
}

impl<F: Future + Unpin> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let out = std::task::ready!(Pin::new(&mut self.answer).poll(cx));
        if let Some(activity) = self.activity.take() {
            activity.served.fetch_add(1, Relaxed);
            activity.requests.fetch_sub(1, Relaxed);
        }
        std::task::Poll::Ready(out)
    }
}

impl<F> Drop for InRequest<F> {
    fn drop(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.requests.fetch_sub(1, Relaxed);
        }
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
    /// For the shedding warning's rate: when serving began, and the minute (in seconds
    /// from then, plus 60) of the last warning.
    started: std::time::Instant,
    warned: AtomicU64,
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
            started: std::time::Instant::now(),
            warned: AtomicU64::new(0),
        }
    }

    /// Accepts on `listener` until `shutdown` changes; `slots` decides which connections
    /// are served and which give way ([`crate::slots`]).
    pub async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        slots: Arc<Slots>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::error("accept_failed", &[("error", (&e.to_string()).into())]);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admitted = tokio::select! {
                a = slots.admit(peer.ip()) => a,
                _ = shutdown.changed() => return,
            };
            let slot = match admitted {
                Admission::In { slot, shed } => {
                    if let Some(why) = shed {
                        self.site.metrics().connection_shed(why);
                        self.say_shedding(why, peer);
                    }
                    slot
                }
                Admission::Refused => {
                    self.site.metrics().connection_refused();
                    self.say_shedding(Shed::Source, peer);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let this = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                this.site.metrics().connection_opened();
                let activity = Arc::clone(slot.activity());
                tokio::select! {
                    _ = this.serve(stream, peer, shutdown, slot) => {}
                    // Shed: dropping the connection closes it.
                    _ = activity.shed() => {}
                }
                this.site.metrics().connection_closed();
            });
        }
    }

    /// One warning a minute at most while connections are shed or refused: an attack must
    /// not fill the log, and the metrics count every one.
    fn say_shedding(&self, why: Shed, peer: SocketAddr) {
        let now = self.started.elapsed().as_secs() + 60;
        let last = self.warned.load(Relaxed);
        if now < last + 60
            || self
                .warned
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        let (event, note) = match why {
            Shed::Full => (
                "connections_full",
                "server.max_connections are open: the connections waiting longest for a \
                 request give way to new ones",
            ),
            Shed::Source => (
                "connections_per_source_full",
                "one source (an address, or an IPv6 /64) holds \
                 server.max_connections_per_source connections: its own waiting connections \
                 give way, or it is refused; see keygate_connections_shed_total",
            ),
        };
        // `client`, as the audit line names the same address (docs/json.md).
        log::warn(
            event,
            &[
                ("client", (&peer.ip().to_string()).into()),
                ("note", note.into()),
            ],
        );
    }

    /// Serves one connection. The slot is held until it closes, or until what it became
    /// (a WebSocket tunnel) has closed too.
    async fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
        slot: Slot,
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
            None => self.serve_io(stream, false, peer, shutdown, slot).await,
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
                self.serve_io(tls, h2, peer, shutdown, slot).await;
            }
        }
    }

    async fn serve_io<IO>(
        &self,
        io: IO,
        h2: bool,
        (peer, peer_owner): (SocketAddr, Option<u32>),
        shutdown: watch::Receiver<bool>,
        slot: Slot,
    ) where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = Deadline::new(
            io,
            self.header_timeout,
            self.idle_timeout,
            h2,
            Arc::clone(slot.activity()),
        );
        let activity = Arc::clone(slot.activity());
        let conn = Arc::new(Conn {
            peer,
            peer_owner,
            shutdown: shutdown.clone(),
            slot,
        });
        let svc = Counted {
            inner: self.site.service(conn),
            activity,
        };
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

/// Installs the SIGTERM and SIGINT handlers now, on the current runtime; the future waits
/// for one and says which came. Installed before anything slow at start-up (the first
/// signing keys, RSA among them, can take a second): a signal then is a shutdown once the
/// server is up, never the default action that ends the process mid-start.
pub fn signals() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
