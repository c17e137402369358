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
//! `close`. The decision is [`App::auth_reply`], the very code hyper's path runs, so both
//! judge, count and log alike. Anything else, from the first such request on, is handed to
//! hyper with the bytes read so far: other endpoints, bodies (hyper answers 400), HTTP/1.0,
//! malformed heads, upgrades. The lane never has to get an unusual request right; it only
//! has to recognise the usual one.
//!
//! The limits are enforced here for every head the lane reads, complete or not: a request
//! line over [`MAX_TARGET`] gets 414 and more than [`MAX_HEAD`] bytes without the end of the
//! head gets 431, each with `Connection: close` (hyper, given a head that never ends, can only
//! answer 431). Timeouts are the connection's [`Deadline`](crate::conn::Deadline) underneath,
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

use crate::http::{App, AuthRequest, MAX_HEADER_BYTES, MAX_TARGET, Reply, over_limits};

/// The most bytes of a request head, as hyper's buffer is configured (server.rs).
pub(crate) const MAX_HEAD: usize = MAX_TARGET + MAX_HEADER_BYTES + 1024;
/// The most header lines (hyper's limit too; beyond it, hyper answers 431).
const MAX_HEADERS: usize = 100;
/// The read buffer's first size: a proxy's subrequest head is a few hundred bytes.
const FIRST_READ: usize = 4096;

/// Serves `io` while its requests take the fast lane. Returns the connection and the bytes
/// read but not answered when a request must go to hyper; `None` once it is closed.
pub(crate) async fn serve<IO>(
    app: &App,
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
fn step(app: &App, bytes: &[u8], peer: SocketAddr, out: &mut Vec<u8>, date: &mut Date) -> Step {
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
    // The limits of `http::too_large`; on an origin-form target, its length is all that
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
    if path != "/auth" && !path.starts_with("/auth/") {
        return Step::HandOver;
    }
    let input = AuthRequest {
        method,
        path,
        has_body: false,
        headers,
    };
    let close = app.auth_reply(&input, peer, |reply| {
        write_reply(out, &reply, close, date);
        close || reply.close
    });
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

/// A header value hyper would accept (`HeaderValue::from_str`): no control characters
/// besides tab. The identity headers are left out otherwise, as hyper's path does.
fn value_ok(s: &str) -> bool {
    s.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// Writes `reply` as hyper would: the same headers (names in lowercase), `Date` last.
fn write_reply(out: &mut Vec<u8>, reply: &Reply<'_>, close: bool, date: &mut Date) {
    status_line(out, reply.status);
    if close || reply.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if let Some(c) = reply.challenge {
        header(out, b"www-authenticate", c.as_bytes());
    }
    if let Some(i) = &reply.identity {
        if value_ok(i.name) {
            header(out, b"x-auth-request-user", i.name.as_bytes());
        }
        if value_ok(i.id) {
            header(out, b"x-auth-request-token-id", i.id.as_bytes());
        }
        if i.scopes.iter().all(|s| value_ok(s)) {
            out.extend_from_slice(b"x-auth-request-scopes: ");
            for (n, s) in i.scopes.iter().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(s.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    header(out, b"date", date.now());
    out.extend_from_slice(b"\r\n");
}

/// An empty answer after which the connection closes.
fn write_closing(out: &mut Vec<u8>, status: StatusCode, date: &mut Date) {
    status_line(out, status);
    out.extend_from_slice(b"connection: close\r\n");
    header(out, b"date", date.now());
    out.extend_from_slice(b"\r\n");
}

fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: 0\r\n");
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` header's value, formatted once a second.
#[derive(Default)]
struct Date {
    second: u64,
    text: String,
}

impl Date {
    fn now(&mut self) -> &[u8] {
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
pub(crate) struct Prefixed<IO> {
    prefix: Vec<u8>,
    at: usize,
    io: IO,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use hyper_util::rt::TokioIo;
    use kg_fs::lock::Wait;
    use time::OffsetDateTime;
    use tokio::io::AsyncReadExt;

    use crate::http::Service;
    use crate::testing::{loaded, settings};

    const PEER: &str = "127.0.0.1:40000";

    struct Fixture {
        app: Arc<App>,
        alice: String,
        bob: String,
        revoked: String,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(
            dir.path(),
            &[
                ("server.trusted_proxies", "127.0.0.1/32"),
                ("server.required_scopes", "/admin=admin"),
                ("server.rate_limit_burst", "0"),
            ],
        );
        let now = OffsetDateTime::now_utc();
        let mut txn = settings.store.begin(Wait::No, &settings.prefix).unwrap();
        let (store, pepper) = txn.parts();
        let scopes = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (_, alice) = store
            .create(pepper, "alice", scopes(&["read", "admin"]), None, now)
            .unwrap();
        let (_, bob) = store
            .create(pepper, "bob", scopes(&["read"]), None, now)
            .unwrap();
        let (carol, revoked) = store.create(pepper, "carol", vec![], None, now).unwrap();
        store.revoke_id(&carol.id, now).unwrap();
        txn.commit().unwrap();
        let (tokens, metrics, audit) = loaded(&settings, dir.path());
        Fixture {
            app: Arc::new(App::new(&settings, tokens, metrics, audit)),
            alice: alice.expose_secret().to_owned(),
            bob: bob.expose_secret().to_owned(),
            revoked: revoked.expose_secret().to_owned(),
            _dir: dir,
        }
    }

    /// What the lane did with `request`, sent by a client that then stops writing: the
    /// bytes it answered, and the bytes it handed over (`None` when it kept the connection).
    async fn through_lane(app: &App, request: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(request).await.unwrap();
        client.shutdown().await.unwrap();
        let (_stop, mut shutdown) = watch::channel(false);
        let rest = serve(app, server, PEER.parse().unwrap(), &mut shutdown).await;
        let handed = rest.map(|p| p.prefix[p.at..].to_vec());
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        (answer, handed)
    }

    /// What hyper answers to `request` through the service `server.rs` gives it.
    async fn through_hyper(app: &Arc<App>, request: &[u8]) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(request).await.unwrap();
        client.shutdown().await.unwrap();
        let svc = Service {
            app: Arc::clone(app),
            peer: PEER.parse().unwrap(),
            served: Arc::default(),
        };
        // As server.rs builds it, and answering a client that stopped writing (the lane
        // answers it too: it stops at end of input after writing what it owes).
        let _ = crate::server::h1_builder()
            .half_close(true)
            .serve_connection(TokioIo::new(server), svc)
            .await;
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        answer
    }

    /// The status line and the header lines (names lowercased, `Date` left out, sorted).
    fn normalised(answer: &[u8]) -> (String, Vec<String>) {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            panic!("not one complete answer: {text:?}");
        };
        assert_eq!(body, "", "no body and nothing after the answer: {text}");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let mut headers: Vec<String> = lines
            .map(|l| {
                let (name, value) = l.split_once(':').unwrap();
                format!("{}:{}", name.to_ascii_lowercase(), value)
            })
            .filter(|l| !l.starts_with("date:"))
            .collect();
        headers.sort();
        (status, headers)
    }

    fn get(target: &str, extra: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: keygate\r\n{extra}\r\n").into_bytes()
    }

    #[tokio::test]
    async fn the_lane_answers_what_hyper_answers() {
        let f = fixture();
        let auth = |t: &str| format!("Authorization: Bearer {t}\r\n");
        let alice = auth(&f.alice);
        let bob = auth(&f.bob);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("valid", get("/auth", &alice)),
            ("missing", get("/auth", "")),
            (
                "another scheme",
                get("/auth", "Authorization: Basic YTpi\r\n"),
            ),
            ("wrong", get("/auth", &auth(&format!("{}x", f.alice)))),
            ("not a token", get("/auth", &auth("nonsense"))),
            ("revoked", get("/auth", &auth(&f.revoked))),
            ("two authorizations", get("/auth", &format!("{alice}{bob}"))),
            (
                "lowercase scheme",
                get("/auth", &format!("authorization: bearer {}\r\n", f.bob)),
            ),
            ("query", get("/auth?rd=%2Fx&y=1", &bob)),
            (
                "connection close",
                get("/auth", &format!("{bob}Connection: close\r\n")),
            ),
            (
                "keep-alive",
                get("/auth", &format!("{bob}Connection: keep-alive\r\n")),
            ),
            (
                "scope allowed",
                get("/auth", &format!("{alice}X-Original-URI: /admin/x\r\n")),
            ),
            (
                "scope missing",
                get("/auth", &format!("{bob}X-Original-URI: /admin/x\r\n")),
            ),
            (
                "original uris disagree",
                get(
                    "/auth",
                    &format!("{alice}X-Original-URI: /a\r\nX-Forwarded-Uri: /admin\r\n"),
                ),
            ),
            ("envoy path prefix", get("/auth/admin/panel", &bob)),
            (
                "forwarded for",
                get(
                    "/auth",
                    &format!("{bob}X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\n"),
                ),
            ),
            (
                "head",
                format!("HEAD /auth HTTP/1.1\r\nHost: k\r\n{alice}\r\n").into_bytes(),
            ),
            (
                "post without a body",
                format!("POST /auth HTTP/1.1\r\nHost: k\r\nContent-Length: 0\r\n{alice}\r\n")
                    .into_bytes(),
            ),
            (
                "long target",
                get(&format!("/auth?{}", "a".repeat(MAX_TARGET)), ""),
            ),
            (
                "many header bytes",
                get(
                    "/auth",
                    &format!("X-Big: {}\r\n", "b".repeat(MAX_HEADER_BYTES)),
                ),
            ),
        ];
        for (name, request) in cases {
            let (lane, handed) = through_lane(&f.app, &request).await;
            assert_eq!(handed, None, "{name}: the lane handed it over");
            let hyper = through_hyper(&f.app, &request).await;
            assert!(
                !lane.is_empty() && !hyper.is_empty(),
                "{name}: {lane:?} {hyper:?}"
            );
            assert_eq!(normalised(&lane), normalised(&hyper), "{name}");
        }
    }

    #[tokio::test]
    async fn unusual_requests_go_to_hyper_with_every_byte() {
        let f = fixture();
        let alice = format!("Authorization: Bearer {}\r\n", f.alice);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("another endpoint", get("/health", "")),
            ("metrics", get("/metrics", "")),
            ("not found", get("/", "")),
            ("auth as a prefix", get("/authx", &alice)),
            (
                "a body",
                format!("POST /auth HTTP/1.1\r\nHost: k\r\nContent-Length: 5\r\n{alice}\r\nhello")
                    .into_bytes(),
            ),
            (
                "chunked",
                format!(
                    "POST /auth HTTP/1.1\r\nHost: k\r\nTransfer-Encoding: chunked\r\n{alice}\r\n0\r\n\r\n"
                )
                .into_bytes(),
            ),
            (
                "HTTP/1.0",
                format!("GET /auth HTTP/1.0\r\n{alice}\r\n").into_bytes(),
            ),
            ("upgrade", get("/auth", &format!("{alice}Connection: upgrade\r\nUpgrade: websocket\r\n"))),
            ("expect", get("/auth", &format!("{alice}Expect: 100-continue\r\n"))),
            ("odd characters", get("/auth?x=\"<>\"", &alice)),
            ("absolute form", get("http://keygate/auth", &alice)),
            (
                // hyper measures the authority and path, not the scheme (review F1).
                "absolute form near the limit",
                get(&format!("http://k/auth?{}", "a".repeat(MAX_TARGET - 8)), &alice),
            ),
            ("odd method", format!("PROPFIND /auth HTTP/1.1\r\n{alice}\r\n").into_bytes()),
            ("malformed", b"GET /auth HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec()),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ];
        for (name, request) in cases {
            let (lane, handed) = through_lane(&f.app, &request).await;
            assert!(lane.is_empty(), "{name}: the lane answered");
            assert_eq!(handed.as_deref(), Some(&request[..]), "{name}");
        }
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_until_one_goes_to_hyper() {
        let f = fixture();
        let alice = format!("Authorization: Bearer {}\r\n", f.alice);
        let mut request = get("/auth", &alice);
        request.extend(get("/auth", ""));
        let health = get("/health", "");
        request.extend(&health);
        let (lane, handed) = through_lane(&f.app, &request).await;
        let text = String::from_utf8(lane).unwrap();
        let statuses: Vec<&str> = text
            .split("\r\n")
            .filter(|l| l.starts_with("HTTP/1.1"))
            .collect();
        assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 401 Unauthorized"]);
        assert_eq!(handed, Some(health));
    }

    #[tokio::test]
    async fn heads_that_never_end_get_414_or_431_and_the_connection_closes() {
        let f = fixture();
        // A request line longer than any buffer: hyper alone could only say 431.
        let line = format!("GET /auth?{} HTTP/1.1\r\n", "a".repeat(64 * 1024)).into_bytes();
        let (lane, handed) = through_lane(&f.app, &line).await;
        assert_eq!(handed, None);
        let (status, headers) = normalised(&lane);
        assert_eq!(status, "HTTP/1.1 414 URI Too Long");
        assert!(
            headers.contains(&"connection: close".to_owned()),
            "{headers:?}"
        );
        let mut head = b"GET /auth HTTP/1.1\r\n".to_vec();
        while head.len() < MAX_HEAD + 100 {
            head.extend_from_slice(format!("X-Filler: {}\r\n", "c".repeat(1000)).as_bytes());
        }
        let (lane, handed) = through_lane(&f.app, &head).await;
        assert_eq!(handed, None);
        assert_eq!(
            normalised(&lane).0,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }

    #[tokio::test]
    async fn a_waiting_connection_closes_on_shutdown() {
        let f = fixture();
        let (mut client, server) = tokio::io::duplex(4096);
        let (stop, mut shutdown) = watch::channel(false);
        let app = Arc::clone(&f.app);
        let lane = tokio::spawn(async move {
            serve(&app, server, PEER.parse().unwrap(), &mut shutdown)
                .await
                .is_none()
        });
        client.write_all(&get("/auth", "")).await.unwrap();
        let mut first = [0u8; 512];
        let n = client.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 401"));
        stop.send(true).unwrap();
        assert!(lane.await.unwrap(), "closed, not handed over");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
