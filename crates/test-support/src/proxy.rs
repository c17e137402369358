//! Peers of the reverse-proxy scenarios (`proxy.rs`, `browser.rs`): an in-process upstream
//! that answers with what reached it, a WebSocket echo and client, and nginx in front. It
//! builds on [`crate::server`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};

use crate::{Env, Proc};

/// What reached the upstream: one JSON object per request, in order.
type Seen = Arc<Mutex<Vec<Value>>>;

/// An HTTP upstream on a background thread, stopped when dropped.
///
/// Every request is answered with a JSON echo of its method, path and query, and headers
/// (`{"method", "uri", "headers": {name: value}}`; repeated headers joined with ", "), as an
/// HTML page (`<h1 id="upstream">` + `<pre id="echo">`) when the client accepts `text/html`.
/// `POST /echo` streams the request body back instead, and `/ws` is a WebSocket echo.
#[derive(Debug)]
pub struct Upstream {
    /// `http://127.0.0.1:PORT` or `unix:/PATH`: the value for `server.upstream`.
    pub url: String,
    seen: Seen,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Upstream {
    /// An upstream on a free loopback TCP port.
    pub fn tcp() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        Upstream::spawn(url, move |seen, stop| async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            accept_loop(
                || async { listener.accept().await.map(|(s, _)| s) },
                seen,
                stop,
            )
            .await;
        })
    }

    /// An upstream on a Unix socket at `path`.
    pub fn unix(path: &Path) -> Upstream {
        let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("unix:{}", path.display());
        Upstream::spawn(url, move |seen, stop| async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            accept_loop(
                || async { listener.accept().await.map(|(s, _)| s) },
                seen,
                stop,
            )
            .await;
        })
    }

    fn spawn<F, Fut>(url: String, serve: F) -> Upstream
    where
        F: FnOnce(Seen, tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let seen = Seen::default();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s = seen.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(serve(s, rx));
        });
        Upstream {
            url,
            seen,
            stop: Some(tx),
        }
    }

    /// The `host:port` of a TCP upstream.
    pub fn addr(&self) -> SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    /// Every request that reached the upstream so far.
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// The last request that reached the upstream; panics when none did.
    #[track_caller]
    pub fn last(&self) -> Value {
        self.seen().pop().expect("no request reached the upstream")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn accept_loop<S, A, AF>(accept: A, seen: Seen, mut stop: tokio::sync::oneshot::Receiver<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Fn() -> AF,
    AF: Future<Output = std::io::Result<S>>,
{
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            s = accept() => match s {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, seen.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

async fn handle(req: Request<Incoming>, seen: Seen) -> Result<Response<Body>, Infallible> {
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let uri = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let echo = json!({ "method": req.method().as_str(), "uri": uri, "headers": headers });
    seen.lock().unwrap().push(echo.clone());

    let upgrade = headers
        .get("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if req.uri().path() == "/ws" && upgrade {
        return Ok(websocket(req));
    }
    if req.uri().path() == "/drip" {
        return Ok(Response::new(drip()));
    }
    if req.method() == hyper::Method::POST && req.uri().path() == "/echo" {
        // Streamed back as it arrives: the proxy must stream both ways for this to finish.
        return Ok(Response::new(req.into_body().boxed()));
    }
    let html = headers
        .get("accept")
        .is_some_and(|a| a.contains("text/html"));
    let pretty = serde_json::to_string_pretty(&echo).unwrap();
    let response = if html {
        let escaped = pretty
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .body(full(format!(
                "<!doctype html><html><head><title>upstream</title></head><body>\
                 <h1 id=\"upstream\">Upstream page</h1><pre id=\"echo\">{escaped}</pre>\
                 </body></html>"
            )))
    } else {
        Response::builder()
            .header("content-type", "application/json")
            .body(full(pretty))
    };
    Ok(response.unwrap())
}

/// `first\n`, then two seconds later `last\n`: a proxy that buffers responses shows both
/// at once.
fn drip() -> Body {
    let chunks = futures_util::stream::unfold(0u8, |n| async move {
        match n {
            0 => Some((
                Ok::<_, hyper::Error>(Frame::data(Bytes::from_static(b"first\n"))),
                1,
            )),
            1 => {
                tokio::time::sleep(DRIP_PAUSE).await;
                Some((Ok(Frame::data(Bytes::from_static(b"last\n"))), 2))
            }
            _ => None,
        }
    });
    BodyExt::boxed(StreamBody::new(chunks))
}

/// How long `/drip` waits between its two chunks.
pub const DRIP_PAUSE: Duration = Duration::from_secs(2);

/// Answers an upgrade with 101 and echoes every text and binary frame on the upgraded stream.
fn websocket(req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key") else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(full("no Sec-WebSocket-Key"))
            .unwrap();
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                return;
            }
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .body(full(""))
        .unwrap()
}

/// A TCP "upstream" that accepts connections and closes them at once, counting them: a
/// backend that is up at the socket level but fails every request.
#[derive(Debug)]
pub struct Slammer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Slammer {
    pub fn start() -> Slammer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        // The thread ends with the test process; nothing else holds the port.
        std::thread::spawn(move || {
            for s in listener.incoming() {
                count.fetch_add(1, Ordering::SeqCst);
                drop(s);
            }
        });
        Slammer { addr, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// How a WebSocket attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ws {
    /// 101, and a text and a binary frame came back unchanged.
    Echoed,
    /// The handshake was answered with this status instead of 101.
    Refused(u16),
    /// Anything else (connection error, wrong echo), with its description.
    Failed(String),
}

/// A WebSocket handshake request for `url` with `headers`, and a runtime to send it on.
fn ws_request(
    url: &str,
    headers: &[(&str, &str)],
) -> (
    tokio_tungstenite::tungstenite::handshake::client::Request,
    tokio::runtime::Runtime,
) {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (req, rt)
}

/// Opens a WebSocket to `url` (`ws://...`) with `headers`, sends a text and a binary frame and
/// checks that both come back.
pub fn ws_echo(url: &str, headers: &[(&str, &str)]) -> Ws {
    let (req, rt) = ws_request(url, headers);
    rt.block_on(async move {
        let connect = tokio_tungstenite::connect_async(req);
        let (mut ws, resp) = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Err(_) => return Ws::Failed("handshake timed out".into()),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                return Ws::Refused(resp.status().as_u16());
            }
            Ok(Err(e)) => return Ws::Failed(e.to_string()),
            Ok(Ok(ok)) => ok,
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Ws::Failed(format!("status {}", resp.status()));
        }
        let frames = [
            Message::text("hello through keygate"),
            Message::binary(vec![0u8, 1, 2, 254, 255]),
        ];
        for frame in frames {
            if let Err(e) = ws.send(frame.clone()).await {
                return Ws::Failed(format!("send: {e}"));
            }
            let back = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
            match back {
                Ok(Some(Ok(m))) if m == frame => {}
                other => return Ws::Failed(format!("sent {frame:?}, got {other:?}")),
            }
        }
        let _ = ws.close(None).await;
        Ws::Echoed
    })
}

/// Opens a WebSocket through `url` with `headers`, checks one echo, runs `meanwhile`, then
/// waits up to `within` for the far side to close the tunnel. `Some(elapsed)` when it was
/// closed, `None` when it stayed open (or never opened: then it panics).
pub fn ws_closed_after(
    url: &str,
    headers: &[(&str, &str)],
    meanwhile: impl FnOnce(),
    within: Duration,
) -> Option<Duration> {
    let (req, rt) = ws_request(url, headers);
    rt.block_on(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("the WebSocket opens");
        ws.send(Message::text("ping")).await.unwrap();
        let back = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        assert!(matches!(back, Ok(Some(Ok(_)))), "no echo: {back:?}");
        meanwhile();
        let start = std::time::Instant::now();
        loop {
            match tokio::time::timeout_at(tokio::time::Instant::from_std(start + within), ws.next())
                .await
            {
                Err(_) => return None,
                Ok(None | Some(Err(_))) => return Some(start.elapsed()),
                Ok(Some(Ok(Message::Close(_)))) => return Some(start.elapsed()),
                Ok(Some(Ok(_))) => {}
            }
        }
    })
}

/// nginx on `listen` proxying everything to keygate at `keygate` the usual way: HTTP/1.1,
/// the client's Host, `$proxy_add_x_forwarded_for`, and WebSocket upgrades passed on.
pub fn nginx_in_front(env: &Env, listen: SocketAddr, keygate: SocketAddr) -> Proc {
    let http = format!(
        "  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n  \
         server {{\n    listen {listen};\n    client_max_body_size 64m;\n    location / {{\n      \
         proxy_pass http://{keygate};\n      proxy_http_version 1.1;\n      \
         proxy_set_header Host $http_host;\n      \
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n      \
         proxy_set_header Upgrade $http_upgrade;\n      \
         proxy_set_header Connection $connection_upgrade;\n    }}\n  }}\n"
    );
    crate::server::nginx(env, &http, listen)
}

/// Starts `keygate serve` in proxy mode in front of `upstream`, on plain HTTP unless `tls`.
pub fn keygate_proxy(
    env: &Env,
    addr: SocketAddr,
    upstream: &str,
    tls: bool,
    extra: &[&str],
) -> Proc {
    let setting = format!("server.upstream={upstream}");
    let mut args = vec!["--set", setting.as_str()];
    if !tls {
        args.push("--plain-http");
    }
    args.extend(extra);
    let mut kg = crate::server::keygate(env, addr, &args);
    assert!(kg.running(), "{}", kg.output());
    kg
}

/// keygate over plain HTTP on `addr` in front of `upstream`, the localhost bypass on or off.
///
/// The scenarios run as root, and the bypass grants root's processes nothing unless
/// `server.danger_local_bypass_as_root` says so; with the bypass on, this sets it too, for
/// scenarios about what the bypass lets through rather than whose processes it trusts
/// (that is `tests/it/local_bypass.rs`, where keygate runs as another uid).
pub fn plain_proxy(env: &Env, addr: SocketAddr, upstream: &str, bypass: bool) -> Proc {
    let setting = format!("server.local_bypass={bypass}");
    let mut args = vec!["--set", setting.as_str()];
    if bypass {
        args.extend(["--set", "server.danger_local_bypass_as_root=true"]);
    }
    keygate_proxy(env, addr, upstream, false, &args)
}

/// The value of the `<input>` named `name` in `html` (attribute order free; `&amp;`-style
/// escapes of the common five undone).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let value = &tag[v..v + tag[v..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Percent-decodes a query component (`+` as space).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `next` a sign-in redirect carries, decoded: `/.keygate/sign-in?next=%2Fnotes` -> `/notes`.
#[track_caller]
pub fn sign_in_next(location: &str) -> String {
    let path = location.split_once("://").map_or(location, |(_, rest)| {
        &rest[rest.find('/').unwrap_or(rest.len())..]
    });
    let query = path
        .strip_prefix("/.keygate/sign-in?")
        .unwrap_or_else(|| panic!("not a sign-in redirect: {location}"));
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("next="))
        .map(percent_decode)
        .unwrap_or_else(|| panic!("no next= in {location}"))
}

/// Reads `/drip` through `addr` on a raw connection: how long until `first` arrived, and
/// until `last` did.
pub fn drip_timing(addr: SocketAddr, path: &str) -> (Duration, Duration) {
    use std::io::{Read, Write};
    let start = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (mut got, mut first) = (Vec::new(), None);
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            panic!("connection ended: {}", String::from_utf8_lossy(&got));
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if first.is_none() && text.contains("first\n") {
            first = Some(start.elapsed());
        }
        if text.contains("last\n") {
            return (first.unwrap(), start.elapsed());
        }
    }
}

/// The SHA-256 of a file, as hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file of `len` pseudo-random bytes (deterministic, so failures reproduce).
pub fn payload(path: &Path, len: usize) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).unwrap();
}

/// Headers as the upstream saw them in one echo.
pub fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"][name].as_str()
}

/// Polls `f` for up to 2 s; for state that settles after a response went out.
pub fn soon(f: impl FnMut() -> bool) -> bool {
    crate::server::eventually(Duration::from_secs(2), f)
}

/// Asserts what an app behind a proxy example saw of a request with forged headers: none
/// of `absent`, keygate's identity for `user`, and `client` (the socket peer) as the only
/// `X-Forwarded-For`.
#[track_caller]
pub fn assert_only_keygates_identity(seen: &Value, absent: &[&str], user: &str, client: &str) {
    for h in absent {
        assert!(header(seen, h).is_none(), "{h} reached the app: {seen:#}");
    }
    assert_eq!(header(seen, "x-auth-request-user"), Some(user), "{seen:#}");
    assert_eq!(header(seen, "x-forwarded-for"), Some(client), "{seen:#}");
}

/// Sends `forged` headers without a token from `client` to `url` (a path ending in
/// `/forged-client`) and asserts the 401, that keygate's audit log names `client`, and that
/// the forged address `6.6.6.6` appears nowhere in what keygate wrote.
#[track_caller]
pub fn assert_audited_as_the_socket_client(
    keygate: &crate::Proc,
    url: &str,
    forged: &[&str],
    client: &str,
) {
    let mut args = vec!["--interface", client];
    for h in forged {
        args.extend(["-H", h]);
    }
    args.push(url);
    assert_eq!(crate::server::curl(&args).status, 401);
    assert!(
        crate::server::eventually(Duration::from_secs(2), || {
            crate::server::audit_lines(&keygate.output())
                .iter()
                .any(|l| l["path"] == "/forged-client" && l["client"] == client)
        }),
        "{}",
        keygate.output()
    );
    assert!(
        !keygate.output().contains("6.6.6.6"),
        "{}",
        keygate.output()
    );
}

/// A uid that is not root's, for processes that must not be keygate's own user:
/// `nobody` (65534) and a second one that has no passwd entry.
pub const NOBODY: u32 = 65534;
pub const STRANGER: u32 = 65533;

/// A place another uid can run our binaries from and keep a `KEYGATE_HOME` in: the test
/// process's own homes are under root's 0700 directories. `bin/` holds copies of the
/// binaries (0755), `home/` belongs to `uid` (0700).
#[derive(Debug)]
pub struct OtherUser {
    pub uid: u32,
    dir: tempfile::TempDir,
}

impl OtherUser {
    /// Sets up the directories for `uid`.
    pub fn new(uid: u32) -> OtherUser {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(dir.path(), 0o755).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        mode(&bin, 0o755).unwrap();
        for name in ["keygate", "tokenctl"] {
            let to = bin.join(name);
            std::fs::copy(crate::bin(name), &to).unwrap();
            mode(&to, 0o755).unwrap();
        }
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        mode(&home, 0o700).unwrap();
        OtherUser { uid, dir }
    }

    /// This user's `KEYGATE_HOME` (and `HOME`).
    pub fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("home")
    }

    /// The path of this user's copy of one of our binaries.
    pub fn bin(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("bin").join(name)
    }

    /// `setpriv` that runs `program` as this user, without root's groups.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        as_uid(self.uid, program)
    }

    /// One of our binaries run as this user, in its home, with a scrubbed environment.
    pub fn cmd(&self, name: &str) -> std::process::Command {
        let mut cmd = self.command(self.bin(name));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("KEYGATE_HOME", self.home())
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// `keygate serve` as this user, plain HTTP on `addr` in front of `upstream`, the log
    /// in `log_dir` (a directory of the test's own).
    pub fn keygate_proxy(
        &self,
        log_dir: &Path,
        addr: SocketAddr,
        upstream: &str,
        extra: &[&str],
    ) -> Proc {
        let mut cmd = self.cmd("keygate");
        cmd.args(["serve", "--plain-http", "--listen", &addr.to_string()])
            .args(["--set", &format!("server.upstream={upstream}")])
            .args(extra);
        let mut p = Proc::spawn(
            "keygate",
            cmd,
            &log_dir.join(format!("keygate-{}.log", self.uid)),
        );
        p.wait_port(addr);
        p
    }
}

/// `setpriv` that runs `program` as `uid` (and gid `uid`), without root's groups.
pub fn as_uid(uid: u32, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(program);
    cmd
}

/// curl as `uid` (root's [`crate::server::curl`] otherwise).
pub fn curl_as(uid: u32, args: &[&str]) -> crate::server::Resp {
    let out = as_uid(uid, "curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?} as uid {uid} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::server::parse_response(&String::from_utf8_lossy(&out.stdout))
}

/// A plain TCP forwarder, the kind of same-host relay (socat, `ssh -R`, `tailscale serve
/// --tcp`, HAProxy in TCP mode) that adds no header: python3 as `uid`, from `listen` to `to`.
pub fn tcp_relay(uid: u32, log_dir: &Path, listen: SocketAddr, to: SocketAddr) -> Proc {
    let mut cmd = as_uid(uid, system_python());
    cmd.args(["-c", TCP_RELAY, &listen.to_string(), &to.to_string()]);
    let mut p = Proc::spawn("relay", cmd, &log_dir.join(format!("relay-{uid}.log")));
    p.wait_port(listen);
    p
}

/// The system's python3: a shim under root's home (pyenv) is out of another uid's reach.
pub fn system_python() -> &'static str {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3")
}

/// [`tcp_relay`]'s forwarder, for `python3 -c TCP_RELAY LISTEN TO`.
pub const TCP_RELAY: &str = "import socket, sys, threading\n\
        listen, to = sys.argv[1], sys.argv[2]\n\
        def addr(s):\n    h, p = s.rsplit(':', 1)\n    return (h.strip('[]'), int(p))\n\
        def pipe(a, b):\n    \
            try:\n        \
                while True:\n            \
                    d = a.recv(65536)\n            \
                    if not d: break\n            \
                    b.sendall(d)\n    \
            except OSError: pass\n    \
            finally:\n        \
                try: b.shutdown(socket.SHUT_WR)\n        \
                except OSError: pass\n\
        server = socket.create_server(addr(listen))\n\
        while True:\n    \
            c, _ = server.accept()\n    \
            u = socket.create_connection(addr(to))\n    \
            threading.Thread(target=pipe, args=(c, u), daemon=True).start()\n    \
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()\n";
