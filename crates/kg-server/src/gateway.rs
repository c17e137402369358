//! Reverse-proxy mode (`server.upstream`): authorize every request, then forward it to one
//! upstream, bodies streamed both ways, WebSocket upgrades included.
//!
//! # Who gets in
//!
//! In this order, on every request (nothing is cached between requests):
//!
//! 1. **A bearer token** (`Authorization: Bearer ...`), exactly as on `/auth`: a bad one is a
//!    401 even from this host, since credentials that are presented are always judged.
//! 2. **A browser session** ([`crate::signin`]), whose token is judged again by id: revoked,
//!    expired or past its rotation grace, the session ends here and then.
//! 3. **The localhost bypass**: the socket peer is loopback, no header says it relays for
//!    someone else ([`net::has_forwarding_headers`]), no proxy is trusted, and
//!    `server.local_bypass` is on (by default only while every listen address is loopback).
//!    A local request passes without identity headers.
//! 4. Otherwise a browser navigation is sent to the sign-in page (303) and anything else gets
//!    a 401 with `WWW-Authenticate: Bearer`.
//!
//! `server.required_scopes` apply to the request's own path (a 403 when the token lacks
//! one); local requests are not subject to them.
//!
//! # What the upstream sees
//!
//! - Identity: `X-Auth-Request-User` (the token's name), `X-Auth-Request-Token-Id` and
//!   `X-Auth-Request-Scopes`, set by keygate only. Client-sent copies of these and of the
//!   other identity headers upstreams are commonly told to trust (`Remote-User`,
//!   `X-Forwarded-User`, `X-Webauth-User`, ...) are removed from every request, bypassed
//!   ones included.
//! - The client's credentials for keygate are not passed on: the `Authorization` header that
//!   carried the token and keygate's cookies are removed. Other cookies and other
//!   `Authorization` schemes pass.
//! - `X-Forwarded-For` ends with the socket peer (a client's own value is dropped unless the
//!   peer is a trusted proxy), `X-Forwarded-Proto` says how the client connected,
//!   `X-Forwarded-Host` which host it asked for; `Host` is the client's, as with Caddy, so
//!   that the upstream builds links the browser can follow. `X-Request-Id` is keygate's
//!   correlation id.
//! - Hop-by-hop headers (RFC 9110 section 7.6.1, and those named in `Connection`) are
//!   dropped both ways, except `Upgrade` on a WebSocket handshake.
//!
//! # Failures
//!
//! A request body over `server.max_request_body_mib` is refused with 413 (by its
//! `Content-Length`, or cut off mid-stream). An upstream that cannot be reached, fails, or
//! sends an oversized response gets the client a small generic 502 page (504 after
//! `server.upstream_timeout`) naming a correlation id; the details go to the audit log
//! under that id. A request that may have reached the upstream is never sent again: only
//! safe methods (GET, HEAD, OPTIONS, TRACE) may be retried, and only when the pooled
//! connection failed before a byte was written.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{Either, Full, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::http::{self as endpoints, App, Bearer, Ctx, X_SCOPES, X_TOKEN_ID, X_USER};
use crate::metrics::Outcome;
use crate::net;
use crate::session::SessionRef;
use crate::settings::Settings;
use crate::signin::SignIn;
use crate::tokens::Verdict;
use crate::upstream::{self, Target, Upstream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a gateway response: keygate's own (empty or small), or the upstream's.
pub type GatewayBody = Either<Full<Bytes>, Relay>;

/// Request headers a client must never be able to set for the upstream: identity headers
/// that upstreams are commonly configured to trust from an auth proxy.
const IDENTITY_HEADERS: [&str; 14] = [
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
    "x-remote-user",
    "x-remote-email",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-user",
    "x-email",
    "x-request-id",
];
/// Prefixes of the same.
const IDENTITY_PREFIXES: [&str; 3] = ["x-auth-request-", "x-webauth-", "tailscale-user-"];

/// Hop-by-hop headers (RFC 9110 section 7.6.1, plus the legacy ones proxies also drop).
const HOP_BY_HOP: [HeaderName; 9] = [
    HeaderName::from_static("http2-settings"),
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Headers that frameworks read as the real request target (Symfony, IIS, nginx's
/// `auth_request` convention): a client could name a path other than the one authorized.
const REWRITE_HEADERS: [&str; 4] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Who a request was let in as.
enum Who {
    /// A local request, under the bypass.
    Local,
    /// A verified bearer token, or a session whose token is still good.
    Token {
        id: String,
        name: String,
        scopes: String,
        /// The session it came with, if by cookie (then cross-site unsafe requests are
        /// refused, and a WebSocket tunnel ends with the session).
        session: Option<SessionRef>,
    },
}

/// The reverse proxy.
pub struct Gateway {
    app: Arc<App>,
    upstream: Upstream,
    /// For safe methods: a request that failed on a reused connection before a byte was
    /// written is sent again on another.
    safe: Client<Connector, Limited<Incoming>>,
    /// For everything else: never sent twice.
    unsafe_: Client<Connector, Limited<Incoming>>,
    timeout: Duration,
    max_request_body: u64,
    max_response_body: u64,
    local_bypass: bool,
    scheme: &'static str,
    sign_in: SignIn,
    /// Correlation ids: a random per-process prefix and a counter.
    id_prefix: u32,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream.to_string())
            .field("local_bypass", &self.local_bypass)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway for `settings.upstream`, or `None` when there is none.
    pub fn new(settings: &Settings, app: Arc<App>) -> Option<Gateway> {
        let upstream = settings.upstream.clone()?;
        let connector = Connector {
            target: Arc::new(upstream.target.clone()),
        };
        let client = |retry: bool| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(64)
                .retry_canceled_requests(retry)
                .set_host(false)
                .build(connector.clone())
        };
        let mut prefix = [0u8; 4];
        let _ = getrandom::fill(&mut prefix);
        Some(Gateway {
            app,
            safe: client(true),
            unsafe_: client(false),
            upstream,
            timeout: settings.upstream_timeout,
            max_request_body: settings.max_request_body,
            max_response_body: settings.max_response_body,
            local_bypass: settings.local_bypass,
            scheme: if settings.plain_http { "http" } else { "https" },
            sign_in: SignIn::new(settings),
            id_prefix: u32::from_le_bytes(prefix),
            next_id: AtomicU64::new(1),
        })
    }

    /// The upstream, for start-up messages.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Whether local requests skip authentication.
    pub fn local_bypass(&self) -> bool {
        self.local_bypass
    }

    fn correlation_id(&self) -> String {
        format!(
            "{:08x}-{}",
            self.id_prefix,
            self.next_id.fetch_add(1, Relaxed)
        )
    }

    /// Answers one request.
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnState>,
    ) -> Response<GatewayBody> {
        if let Some(resp) = endpoints::too_large(&req) {
            return resp.map(Either::Left);
        }
        let path = req.uri().path();
        if let Some(own) = path.strip_prefix("/.keygate") {
            if own == "/sign-in" || own == "/sign-out" {
                let client = net::client_addr(conn.peer.ip(), req.headers(), &self.app.trusted);
                let app = &self.app;
                return self
                    .sign_in
                    .handle(req, client, app.tokens(), app.metrics(), app.audit())
                    .await
                    .map(Either::Left);
            }
            if matches!(own, "/health" | "/metrics") || own == "/auth" || own.starts_with("/auth/")
            {
                let own = own.to_owned();
                return self.app.route(&req, conn.peer, &own).map(Either::Left);
            }
            return endpoints::empty(StatusCode::NOT_FOUND).map(Either::Left);
        }
        let who = match self.authorize(&req, conn.peer) {
            Ok(who) => who,
            Err(resp) => return resp.map(Either::Left),
        };
        self.forward(req, conn, who).await
    }

    /// Decides who the request is from, or answers it.
    fn authorize(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Who, Box<Response<endpoints::Body>>> {
        let app = &*self.app;
        let headers = req.headers();
        let peer_ip = peer.ip().to_canonical();
        let client = net::client_addr(peer_ip, headers, &app.trusted);
        let path = req.uri().path().as_bytes();
        let ctx = Ctx {
            client,
            method: req.method().as_str(),
            path: Some(path),
        };
        let now = OffsetDateTime::now_utc();
        // A judged token: scopes for this path, then the identity.
        let judge = |info: kg_tokens::TokenInfo<'_>, session: Option<SessionRef>| {
            if let Some(need) = app.scopes.for_path(Some(path))
                && !need.scopes.iter().all(|s| info.has_scope(s))
            {
                let mut resp = endpoints::empty(StatusCode::FORBIDDEN);
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, need.challenge.clone());
                app.finish(
                    &mut resp,
                    Outcome::InsufficientScope,
                    Some(info.id),
                    Some(info.name),
                    &ctx,
                    0,
                );
                return Err(Box::new(resp));
            }
            if session.is_some() && cross_site(req, &self.sign_in) {
                // SameSite=Lax does not stop another port on this host (same site), so a
                // cookie-authenticated state change or WebSocket must come from our origin.
                let mut resp = endpoints::empty(StatusCode::FORBIDDEN);
                app.finish(
                    &mut resp,
                    Outcome::CrossSite,
                    Some(info.id),
                    Some(info.name),
                    &ctx,
                    0,
                );
                return Err(Box::new(resp));
            }
            app.allowed(Outcome::Allow, Some(info.id), Some(info.name), &ctx);
            Ok(Who::Token {
                id: info.id.to_owned(),
                name: info.name.to_owned(),
                scopes: info.scopes.join(" "),
                session,
            })
        };
        match endpoints::bearer(headers) {
            Bearer::Token(token) => {
                let id = endpoints::token_id(token);
                return app
                    .tokens()
                    .verify(token, now, app.metrics(), |verdict| match verdict {
                        Verdict::Valid(info) => judge(info, None),
                        Verdict::Invalid(reason) => {
                            let known = matches!(
                                reason,
                                kg_tokens::Reason::Unknown
                                    | kg_tokens::Reason::Expired
                                    | kg_tokens::Reason::Revoked
                            )
                            .then_some(id)
                            .flatten();
                            let bucket = (reason == kg_tokens::Reason::Unknown)
                                .then_some(id)
                                .flatten();
                            Err(Box::new(app.refuse(
                                reason,
                                bucket,
                                known,
                                crate::limiter::client_key(client),
                                &ctx,
                            )))
                        }
                    });
            }
            Bearer::Malformed => {
                return Err(Box::new(app.refuse(
                    kg_tokens::Reason::Malformed,
                    None,
                    None,
                    crate::limiter::client_key(client),
                    &ctx,
                )));
            }
            Bearer::None => {}
        }
        if let Some(session) = self.sign_in.session(headers) {
            let judged = app
                .tokens()
                .check_id(&session.token_id, now, app.metrics(), |verdict| {
                    match verdict {
                        Verdict::Valid(info) => Some(judge(info, Some(session.clone()))),
                        Verdict::Invalid(_) => {
                            // Revoked, expired or past its grace: the session ends with it.
                            app.session_ended(&session.token_id, &ctx);
                            None
                        }
                    }
                });
            match judged {
                Some(result) => return result,
                None => self.sign_in.end_session(&session),
            }
        }
        if self.local_bypass
            && net::is_loopback(peer_ip)
            && app.trusted.is_empty()
            && !net::has_forwarding_headers(headers)
            && local_host(req)
        {
            // A page on any site can make the local browser send requests here: without
            // credentials to check, where it came from is all there is (a state change or a
            // WebSocket from another origin would otherwise act as the local user; and the
            // Host check above stops DNS rebinding from reading the answers).
            if cross_site(req, &self.sign_in) {
                let mut resp = endpoints::empty(StatusCode::FORBIDDEN);
                app.finish(&mut resp, Outcome::CrossSite, None, None, &ctx, 0);
                return Err(Box::new(resp));
            }
            app.allowed(Outcome::Local, None, None, &ctx);
            return Ok(Who::Local);
        }
        let mut resp = if is_navigation(req) {
            self.sign_in.redirect(req.uri())
        } else {
            let mut resp = endpoints::empty(StatusCode::UNAUTHORIZED);
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, app.challenge.clone());
            resp
        };
        app.finish(&mut resp, Outcome::Missing, None, None, &ctx, 0);
        Err(Box::new(resp))
    }

    /// Sends an authorized request upstream and relays the answer.
    async fn forward(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        conn: Arc<ConnState>,
        who: Who,
    ) -> Response<GatewayBody> {
        let id = self.correlation_id();
        if let Some(len) = content_length(req.headers())
            && len > self.max_request_body
        {
            return endpoints::closing(StatusCode::PAYLOAD_TOO_LARGE).map(Either::Left);
        }
        let upgrade = upgrade_protocol(&req);
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let peer_ip = conn.peer.ip().to_canonical();
        let trusted = net::is_trusted(peer_ip, &self.app.trusted);

        let mut headers = HeaderMap::with_capacity(parts.headers.len() + 8);
        let named_by_connection = connection_tokens(&parts.headers);
        let mut client_xff: Option<String> = None;
        for (name, value) in &parts.headers {
            let n = name.as_str();
            // Many servers (WSGI and CGI, Puma, uWSGI) read `X_Auth_Request_User` as
            // `X-Auth-Request-User`: a name with an underscore could smuggle any identity
            // header past the checks below, so none passes (nginx's default, too).
            if n.contains('_') {
                continue;
            }
            if HOP_BY_HOP.contains(name)
                || name == header::UPGRADE
                || named_by_connection.iter().any(|c| c.eq_ignore_ascii_case(n))
                || is_identity_header(n)
                || name == header::HOST
                // keygate answered any `100-continue` itself when it read the body.
                || name == header::EXPECT
            {
                continue;
            }
            if name == X_FORWARDED_FOR {
                if trusted && let Ok(v) = value.to_str() {
                    client_xff = Some(match client_xff {
                        Some(prev) => format!("{prev}, {v}"),
                        None => v.to_owned(),
                    });
                }
                continue;
            }
            if n.starts_with("x-forwarded-")
                || n == "forwarded"
                || n == "x-real-ip"
                || net::CLIENT_ADDRESS_HEADERS.contains(&n)
                || REWRITE_HEADERS.contains(&n)
            {
                // Believed only from a trusted proxy.
                if !trusted {
                    continue;
                }
            }
            if name == header::AUTHORIZATION && matches!(who, Who::Token { session: None, .. }) {
                // It carried keygate's token; the upstream gets the identity instead.
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        self.sign_in.strip_cookies(&mut headers);
        let host = parts
            .headers
            .get(header::HOST)
            .cloned()
            .or_else(|| {
                parts
                    .uri
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            })
            .unwrap_or_else(|| HeaderValue::from_str(&self.upstream.authority).expect("checked"));
        let xff = match client_xff {
            Some(prev) => format!("{prev}, {peer_ip}"),
            None => peer_ip.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert(X_FORWARDED_FOR, v);
        }
        if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(self.scheme));
        }
        if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
        headers.insert(header::HOST, host);
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert(X_REQUEST_ID, v);
        }
        if let Who::Token {
            id: token_id,
            name,
            scopes,
            ..
        } = &who
        {
            for (h, v) in [(X_USER, name), (X_TOKEN_ID, token_id), (X_SCOPES, scopes)] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    headers.insert(h, v);
                }
            }
        }
        if let Some(proto) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, proto.clone());
        }

        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if !self.upstream.base_path.is_empty() && climbs(parts.uri.path()) {
            // Under a base path, `..` would reach beyond it on an upstream that normalises.
            return endpoints::closing(StatusCode::BAD_REQUEST).map(Either::Left);
        }
        let uri = match format!(
            "http://{}{}{}",
            self.upstream.authority, self.upstream.base_path, path_and_query
        )
        .parse::<Uri>()
        {
            Ok(u) => u,
            Err(_) => return endpoints::empty(StatusCode::BAD_REQUEST).map(Either::Left),
        };
        let mut up = Request::new(Limited::new(
            body,
            usize::try_from(self.max_request_body).unwrap_or(usize::MAX),
        ));
        *up.method_mut() = parts.method.clone();
        *up.uri_mut() = uri;
        *up.version_mut() = Version::HTTP_11;
        *up.headers_mut() = headers;

        let busy = conn.busy();
        let client = if is_safe(&parts.method) {
            &self.safe
        } else {
            &self.unsafe_
        };
        let sent = tokio::time::timeout(self.timeout, client.request(up)).await;
        let resp = match sent {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                let detail = error_chain(&e);
                let status = if detail.contains("length limit exceeded") {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_GATEWAY
                };
                return self.failed(status, &id, &detail, &parts, peer_ip);
            }
            Err(_) => {
                let detail = format!(
                    "no response headers within server.upstream_timeout ({}s)",
                    self.timeout.as_secs()
                );
                return self.failed(StatusCode::GATEWAY_TIMEOUT, &id, &detail, &parts, peer_ip);
            }
        };
        if let Some(len) = content_length(resp.headers())
            && len > self.max_response_body
        {
            let detail =
                format!("response body of {len} bytes is over server.max_response_body_mib");
            return self.failed(StatusCode::BAD_GATEWAY, &id, &detail, &parts, peer_ip);
        }
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                let detail = "the upstream switched protocols without being asked".to_owned();
                return self.failed(StatusCode::BAD_GATEWAY, &id, &detail, &parts, peer_ip);
            };
            let ws = resp
                .headers()
                .get(header::UPGRADE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
            if !ws {
                let detail = "the upstream switched to a protocol other than WebSocket".to_owned();
                return self.failed(StatusCode::BAD_GATEWAY, &id, &detail, &parts, peer_ip);
            }
            return self.tunnel(resp, client_upgrade, busy, conn, who);
        }
        let (mut rparts, rbody) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        // The client's protocol, not the upstream's (an HTTP/1.0 upstream must not turn the
        // client's keep-alive connection into a closing one).
        rparts.version = parts.version;
        Response::from_parts(
            rparts,
            Either::Right(Relay {
                inner: rbody,
                left: self.max_response_body,
                _busy: busy,
            }),
        )
    }

    /// Answers a WebSocket (or other) upgrade the upstream accepted, and joins the two
    /// upgraded connections once both sides have switched.
    ///
    /// A tunnel makes no requests of its own, so the credentials it was opened with are
    /// judged again every [`TUNNEL_RECHECK`]: a revoked or retired token, or a session that
    /// was signed out or expired, closes it.
    fn tunnel(
        self: &Arc<Self>,
        mut resp: Response<Incoming>,
        client_upgrade: hyper::upgrade::OnUpgrade,
        busy: Busy,
        conn: Arc<ConnState>,
        who: Who,
    ) -> Response<GatewayBody> {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        let mut shutdown = conn.shutdown.clone();
        let gateway = Arc::clone(self);
        tokio::spawn(async move {
            let _busy = busy;
            let _conn = conn;
            let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) else {
                return;
            };
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            let still_valid = || match &who {
                Who::Local => true,
                Who::Token { id, session, .. } => {
                    let app = &gateway.app;
                    session
                        .as_ref()
                        .is_none_or(|s| gateway.sign_in.sessions().alive(s))
                        && app.tokens().check_id(
                            id,
                            OffsetDateTime::now_utc(),
                            app.metrics(),
                            |v| matches!(v, Verdict::Valid(_)),
                        )
                }
            };
            let mut recheck = tokio::time::interval(TUNNEL_RECHECK);
            recheck.tick().await;
            let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
            tokio::pin!(copy);
            loop {
                tokio::select! {
                    _ = &mut copy => break,
                    _ = shutdown.wait_for(|s| *s) => break,
                    _ = recheck.tick() => {
                        if !still_valid() {
                            break;
                        }
                    }
                }
            }
        });
        let (mut parts, _) = resp.into_parts();
        parts.version = Version::HTTP_11;
        let mut out = Response::from_parts(parts, Either::Left(Full::new(Bytes::new())));
        let h = out.headers_mut();
        let upgrade = h.get(header::UPGRADE).cloned();
        strip_hop_by_hop(h);
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(u) = upgrade {
            h.insert(header::UPGRADE, u);
        }
        out
    }

    /// The generic error page, and the details in the audit log under its id.
    fn failed(
        &self,
        status: StatusCode,
        id: &str,
        detail: &str,
        parts: &hyper::http::request::Parts,
        client: std::net::IpAddr,
    ) -> Response<GatewayBody> {
        self.app.audit().log_upstream_error(
            id,
            status.as_u16(),
            client,
            parts.method.as_str(),
            parts.uri.path().as_bytes(),
            detail,
        );
        self.app.metrics().upstream_error();
        let page = format!(
            "<!doctype html><meta charset=utf-8><title>{code} {reason}</title>\
             <h1>{code} {reason}</h1><p>The application behind this gateway did not answer \
             properly.</p><p>Correlation id: <code>{id}</code></p>\n",
            code = status.as_u16(),
            reason = status.canonical_reason().unwrap_or(""),
        );
        let mut resp = Response::new(Either::Left(Full::new(Bytes::from(page))));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(id) {
            h.insert(X_REQUEST_ID, v);
        }
        resp
    }
}

/// How often an open WebSocket tunnel's credentials are judged again.
const TUNNEL_RECHECK: Duration = Duration::from_secs(15);

/// A connection's state shared with its requests: the peer, how many requests are
/// streaming (the connection's deadline waits while any is), and the shutdown signal.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub peer: SocketAddr,
    pub active: Arc<AtomicUsize>,
    pub shutdown: watch::Receiver<bool>,
    /// Held for as long as the connection or any tunnel it became is open.
    pub _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl ConnState {
    fn busy(&self) -> Busy {
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

/// The upstream's response body, cut off past `server.max_response_body_mib`; the
/// connection counts as busy until it is done.
#[derive(Debug)]
pub struct Relay {
    inner: Incoming,
    left: u64,
    _busy: Busy,
}

impl hyper::body::Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > self.left {
                        return Poll::Ready(Some(Err(
                            "the upstream's response is over server.max_response_body_mib".into(),
                        )));
                    }
                    self.left -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The hyper service of one connection in proxy mode.
#[derive(Debug, Clone)]
pub(crate) struct GatewayService {
    pub gateway: Arc<Gateway>,
    pub conn: Arc<ConnState>,
    pub served: Arc<AtomicU64>,
}

impl hyper::service::Service<Request<Incoming>> for GatewayService {
    type Response = Response<GatewayBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let gateway = Arc::clone(&self.gateway);
        let conn = Arc::clone(&self.conn);
        let served = Arc::clone(&self.served);
        Box::pin(async move {
            let resp = gateway.handle(req, conn).await;
            served.fetch_add(1, Relaxed);
            Ok(resp)
        })
    }
}

/// Connects to the upstream: TCP to an address, TCP to a name whose every resolved address
/// is checked again (a `.internal` name must not lead to a public address), or a unix socket.
#[derive(Debug, Clone)]
pub struct Connector {
    target: Arc<Target>,
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
        Box::pin(async move {
            let stream = match &*target {
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
                                io::Error::new(
                                    io::ErrorKind::NotFound,
                                    format!("{host} has no address"),
                                )
                            }));
                        }
                    }
                }
            };
            if let Stream::Tcp(s) = &stream {
                let _ = s.set_nodelay(true);
            }
            Ok(TokioIo::new(stream))
        })
    }
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

/// Whether the `Host` a request names is this host's loopback (`localhost`, `*.localhost`,
/// 127.0.0.0/8, `::1`), as a browser talking to keygate directly sends. A page whose own
/// name was rebound to 127.0.0.1 (DNS rebinding) sends its own name instead.
fn local_host(req: &Request<Incoming>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether a path has a `.` or `..` segment, also percent-encoded or after a backslash.
fn climbs(path: &str) -> bool {
    let lower = path
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace('\\', "/");
    lower
        .replace("%2f", "/")
        .split('/')
        .any(|seg| seg == "." || seg == "..")
}

fn is_identity_header(name: &str) -> bool {
    IDENTITY_HEADERS.contains(&name) || IDENTITY_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn is_safe(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A top-level browser navigation: it should see the sign-in page rather than a bare 401.
fn is_navigation(req: &Request<Incoming>) -> bool {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return false;
    }
    let h = req.headers();
    if let Some(mode) = h.get("sec-fetch-mode") {
        return mode.as_bytes() == b"navigate";
    }
    h.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.to_ascii_lowercase().contains("text/html"))
    })
}

/// Whether a cookie-authenticated request comes from another origin: an unsafe method or
/// an upgrade that the browser's fetch metadata marks `cross-site` or `same-site` (another
/// port on this host is the same site, so `SameSite=Lax` does not stop it), or, from a
/// browser without fetch metadata, whose `Origin` is not this server's.
fn cross_site(req: &Request<Incoming>, sign_in: &SignIn) -> bool {
    if upgrade_protocol(req).is_none() && is_safe(req.method()) {
        return false;
    }
    match req
        .headers()
        .get("sec-fetch-site")
        .map(HeaderValue::as_bytes)
    {
        // Set by the browser, out of reach of page scripts; an app's `no-referrer` policy
        // makes its own POSTs carry `Origin: null`, so this is the better witness.
        Some(b"same-origin" | b"none") => false,
        Some(_) => true,
        None => sign_in.cross_site(req.headers(), req.uri()),
    }
}

/// The protocol an HTTP/1.1 request asks to upgrade to (`Connection: upgrade`): only a
/// WebSocket handshake (`GET`, `Upgrade: websocket`). Any other upgrade, `h2c` above all,
/// would open a tunnel to the upstream in which requests pass unchecked; its `Upgrade`
/// header is dropped like any other hop-by-hop header.
fn upgrade_protocol(req: &Request<Incoming>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 || req.method() != Method::GET {
        return None;
    }
    if !req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
    {
        return None;
    }
    let asks = connection_tokens(req.headers())
        .iter()
        .any(|t| t.eq_ignore_ascii_case("upgrade"));
    asks.then(|| req.headers().get(header::UPGRADE).cloned())
        .flatten()
}

/// The header names listed in `Connection`.
fn connection_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    for name in connection_tokens(h) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            h.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        h.remove(name);
    }
    h.remove(header::UPGRADE);
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// An error and its causes, for the audit log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_recognised() {
        for h in [
            "x-auth-request-user",
            "x-auth-request-email",
            "remote-user",
            "x-forwarded-user",
            "x-webauth-user",
            "tailscale-user-login",
            "x-request-id",
        ] {
            assert!(is_identity_header(h), "{h}");
        }
        for h in ["x-forwarded-for", "cookie", "accept", "x-requested-with"] {
            assert!(!is_identity_header(h), "{h}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn error_chains_are_one_printable_line() {
        let e = io::Error::other("a\nb");
        assert_eq!(error_chain(&e), "ab");
    }
}
