//! The HTTP/1 fast lane: nginx's `auth_request` subrequests answered without hyper.
//!
//! A proxy in front sends keygate one short `GET /auth` after another on a few kept
//! connections, and every microsecond spent on each is a microsecond added to every request
//! the proxy serves. Through hyper, most of a request's user-space time went to building and
//! tearing down what a two-line answer never needs (a `Request` with its `Uri` and header
//! map, a `Response`, the dispatcher's state machine); nginx answering `/auth` itself from a
//! `map` took less CPU per request than keygate did (BENCHMARKS.md).
//!
//! So an HTTP/1 connection starts here. Each request head is parsed with httparse (the
//! parser hyper itself uses) into lines on the stack, and a request in the plain form a
//! proxy sends is answered directly: HTTP/1.1, an origin-form target under `/auth` made of
//! ordinary URI characters, a common method, no body (no `Transfer-Encoding`, any
//! `Content-Length` is 0), no `Upgrade` or `Expect`, `Connection` at most `keep-alive` or
//! `close`. Which requests the lane answers, and what it answers, is an [`Answer`]'s
//! business (kg-verifier's `/auth`, the very code hyper's path runs, so both judge, count
//! and log alike); this module only parses, frames and hands over. Anything else, from the first such request on, is handed to
//! hyper with the bytes read so far: other endpoints, bodies (hyper answers 400), HTTP/1.0,
//! malformed heads, upgrades. The lane never has to get an unusual request right; it only
//! has to recognise the usual one.
//!
//! The limits are enforced here for every head the lane reads, complete or not: a request
//! line over [`MAX_TARGET`] gets 414 and more than [`MAX_HEAD`] bytes without the end of the
//! head gets 431, each with `Connection: close` (hyper, given a head that never ends, can only
//! answer 431). Timeouts are the connection's [`Deadline`](crate::deadline::Deadline) underneath,
//! as for hyper. On shutdown a connection waiting for its next request is closed; a response
//! being written is finished first.

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use crate::{MAX_HEADER_BYTES, MAX_TARGET, over_limits};

/// What answers the requests the lane takes.
pub trait Answer: Sync {
    /// Whether the lane takes a request for `path` (the target without its query); any
    /// other request goes to hyper, with the rest of the connection.
    fn takes(&self, path: &str) -> bool;

    /// Answers `req` into `out` (a whole HTTP/1.1 response: [`status_line`], [`header`],
    /// `date` last, the blank line), and says whether the connection must close after it.
    fn answer(&self, req: &LaneRequest<'_>, out: &mut Vec<u8>, date: &mut Date) -> bool;
}

/// A request the lane took: plain HTTP/1.1, no body. Its `Debug` leaves out the header
/// lines, which may carry a credential.
pub struct LaneRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The header lines.
    pub headers: &'a [httparse::Header<'a>],
    /// The socket peer.
    pub peer: SocketAddr,
    /// Whether the client asked to close (`Connection: close`).
    pub close: bool,
}

impl std::fmt::Debug for LaneRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("peer", &self.peer)
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}

/// The most bytes of a request head, as hyper's buffer is configured (serve.rs).
pub const MAX_HEAD: usize = MAX_TARGET + MAX_HEADER_BYTES + 1024;
/// The most header lines (hyper's limit too; beyond it, hyper answers 431).
const MAX_HEADERS: usize = 100;
/// The read buffer's first size: a proxy's subrequest head is a few hundred bytes.
const FIRST_READ: usize = 4096;

/// Serves `io` while its requests take the fast lane. Returns the connection and the bytes
/// read but not answered when a request must go to hyper; `None` once it is closed.
pub async fn serve<IO, A: Answer + ?Sized>(
    app: &A,
    mut io: IO,
    peer: SocketAddr,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Prefixed<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(FIRST_READ);
    let mut out: Vec<u8> = Vec::with_capacity(512);
    let mut date = Date::default();
    let mut stop = std::pin::pin!(shutdown.changed());
    loop {
        // Answer every complete request already read (a client may pipeline), then write
        // the answers at once.
        let mut used = 0;
        let mut next = Next::Read;
        while used < buf.len() {
            match step(app, &buf[used..], peer, &mut out, &mut date) {
                Step::Answered { len, close } => {
                    used += len;
                    if close {
                        next = Next::Close;
                        break;
                    }
                }
                Step::Partial => break,
                Step::HandOver => {
                    next = Next::HandOver;
                    break;
                }
            }
        }
        if !out.is_empty() {
            if io.write_all(&out).await.is_err() || io.flush().await.is_err() {
                return None;
            }
            out.clear();
        }
        buf.drain(..used);
        match next {
            Next::Close => {
                let _ = io.shutdown().await;
                return None;
            }
            Next::HandOver => {
                return Some(Prefixed {
                    prefix: buf,
                    at: 0,
                    io,
                });
            }
            Next::Read => {}
        }
        if let Some(status) = over_limit(&buf) {
            write_closing(&mut out, status, &mut date);
            let _ = io.write_all(&out).await;
            let _ = io.shutdown().await;
            return None;
        }
        let mut limited = (&mut io).take((MAX_HEAD - buf.len()) as u64);
        tokio::select! {
            biased;
            r = limited.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            },
            // Waiting for a request (or the rest of one) when the server stops: close,
            // as hyper closes a connection that is not answering a request.
            _ = &mut stop => return None,
        }
    }
}

enum Next {
    Read,
    Close,
    HandOver,
}

enum Step {
    /// A request of `len` bytes was answered; `close` after the answer.
    Answered { len: usize, close: bool },
    /// The head is not complete yet.
    Partial,
    /// Not a request for the fast lane.
    HandOver,
}

/// Parses one request head at the start of `bytes` and answers it into `out`, if it is one
/// the lane takes.
fn step<A: Answer + ?Sized>(
    app: &A,
    bytes: &[u8],
    peer: SocketAddr,
    out: &mut Vec<u8>,
    date: &mut Date,
) -> Step {
    let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(bytes, &mut lines) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Step::Partial,
        // Malformed, or more lines than hyper allows: hyper answers those its way.
        Err(_) => return Step::HandOver,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Step::HandOver;
    };
    let headers: &[httparse::Header<'_>] = req.headers;
    let Some(close) = plain_form(method, target, headers) else {
        return Step::HandOver;
    };
    // The limits of `crate::too_large`; on an origin-form target, its length is all that
    // measures.
    let header_bytes: usize = headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 4)
        .sum();
    if let Some(status) = over_limits(target.len(), header_bytes) {
        write_closing(out, status, date);
        return Step::Answered { len, close: true };
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if !app.takes(path) {
        return Step::HandOver;
    }
    let input = LaneRequest {
        method,
        path,
        headers,
        peer,
        close,
    };
    let close = app.answer(&input, out, date) || close;
    Step::Answered { len, close }
}

/// Whether a parsed head is in the plain form the lane answers; if so, whether the client
/// asked to close (`Connection: close`).
fn plain_form(method: &str, target: &str, headers: &[httparse::Header<'_>]) -> Option<bool> {
    if !matches!(
        method,
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
    ) {
        return None;
    }
    // Origin form, and only characters every URI parser reads the same way.
    if !target.starts_with('/')
        || !target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
    {
        return None;
    }
    let mut close = false;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if h.value.trim_ascii() != b"0" {
                return None;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in h.value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                if option.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !option.eq_ignore_ascii_case(b"keep-alive") {
                    return None;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return None;
        }
    }
    Some(close)
}

/// 414 or 431 for a head that is not complete yet but already too long: a request line
/// longer than [`MAX_TARGET`] allows, or [`MAX_HEAD`] bytes without the end of the head.
fn over_limit(buf: &[u8]) -> Option<StatusCode> {
    // A request line is the target and at most a few dozen bytes of method and version.
    const LINE: usize = MAX_TARGET + 64;
    if buf.len() <= MAX_TARGET {
        return None;
    }
    if buf.len() > LINE && !buf[..LINE].contains(&b'\n') {
        return Some(StatusCode::URI_TOO_LONG);
    }
    (buf.len() >= MAX_HEAD).then_some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
}

/// An empty answer after which the connection closes.
fn write_closing(out: &mut Vec<u8>, status: StatusCode, date: &mut Date) {
    status_line(out, status);
    out.extend_from_slice(b"connection: close\r\n");
    header(out, b"date", date.now());
    out.extend_from_slice(b"\r\n");
}

/// The status line and `content-length: 0`: every answer of the lane is empty.
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: 0\r\n");
}

/// One header line.
pub fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` header's value, formatted once a second.
#[derive(Debug, Default)]
pub struct Date {
    second: u64,
    text: String,
}

impl Date {
    /// Now, as an HTTP date.
    pub fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        self.text.as_bytes()
    }
}

/// A connection handed to hyper: the bytes the lane read but did not answer come first.
pub struct Prefixed<IO> {
    prefix: Vec<u8>,
    at: usize,
    io: IO,
}

impl<IO> std::fmt::Debug for Prefixed<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The unread bytes are request heads, credentials included: only their count.
        f.debug_struct("Prefixed")
            .field("unread", &(self.prefix.len() - self.at))
            .finish_non_exhaustive()
    }
}

impl<IO> Prefixed<IO> {
    /// The bytes read but not yet passed on.
    pub fn unread(&self) -> &[u8] {
        &self.prefix[self.at..]
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
