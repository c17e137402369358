//! Reverse-proxy mode (`server.upstream`): authorize every request, then forward it to one
//! upstream, bodies streamed both ways, WebSocket upgrades included.
//!
//! # Who gets in
//!
//! In this order, on every request (nothing is cached between requests):
//!
//! Every credential is judged by the verifier (`kg_verifier::Verifier::judge`), exactly as
//! on `/auth`; this crate decides only what the verifier cannot know (the bypass, where a
//! cookie-authenticated request came from, what the upstream sees).
//!
//! 0. **A path every parser reads alike** ([`kg_verifier::paths`]): one with dot segments,
//!    encoded `/` or `\`, `;` parameters, NUL or control bytes, double encoding or bytes
//!    that are not UTF-8 is refused with 400, since the upstream might route it elsewhere
//!    than where it was judged. Every other path is forwarded byte for byte as judged.
//! 1. **A bearer token** (`Authorization: Bearer ...`), exactly as on `/auth`: a bad one is a
//!    401 even from this host, since credentials that are presented are always judged.
//! 2. **A browser session** (kg-login), whose token is judged again by id: revoked,
//!    expired or past its rotation grace, the session ends here and then.
//! 3. **The localhost bypass**, for keygate's own user only. "Local" is a fact the kernel
//!    states about the connecting process, not about an address: the socket peer is
//!    loopback *and its socket is owned by keygate's own uid* ([`Conn::peer_owner`], looked
//!    up once per connection), never root's unless `server.danger_local_bypass_as_root`
//!    says so, no header says it relays for someone else ([`net::has_forwarding_headers`]),
//!    no proxy is trusted, the `Host` is this host's loopback name, and
//!    `server.local_bypass` is on (by default only while every listen address is loopback).
//!    So a relay on this host run by another uid (a TCP forwarder, `ssh -R` for another
//!    user, tailscaled, nginx, HAProxy, cloudflared) never passes for local, whatever it
//!    forwards; an owner that cannot be found grants nothing. A browser's
//!    `Sec-Fetch-Site: cross-site` request is refused (403) whatever its method: a page on
//!    any site could otherwise read the app through a permissive CORS policy. The upstream
//!    is told who is there: `X-Auth-Request-User` is the user's login name and
//!    `X-Auth-Request-Session: local`.
//! 4. Otherwise a browser navigation is sent to the sign-in page (303) and anything else gets
//!    a 401 with `WWW-Authenticate: Bearer`.
//!
//! `server.required_scopes` apply to the request's own path (a 403 when the token lacks
//! one); local requests are not subject to them.
//!
//! # What the upstream sees
//!
//! - Identity: `X-Auth-Request-User` (the token's name), `X-Auth-Request-Token-Id` and
//!   `X-Auth-Request-Scopes`, set by keygate only. Client-sent copies of these and of every
//!   identity header family other auth proxies use (`Remote-*`, `X-Forwarded-User`,
//!   `X-Webauth-*`, `Cf-Access-*`, `X-Ssl-Client-*`, ...: the table in `header_policy.rs`),
//!   and the names in `server.strip_headers`, are removed from every request, bypassed ones
//!   included. So are the URL-rewrite headers (`X-Original-URL`, `X-Rewrite-URL`,
//!   `X-Forwarded-Uri`, ...), even from a trusted proxy: the upstream routes the path that
//!   was judged.
//! - The client's credentials for keygate are not passed on: the `Authorization` header that
//!   carried the token and keygate's cookies are removed. Other cookies and other
//!   `Authorization` schemes pass.
//! - `X-Forwarded-For` ends with the socket peer (a client's own value is dropped unless the
//!   peer is a trusted proxy), `X-Forwarded-Proto` says how the client connected,
//!   `X-Forwarded-Host` which host it asked for; `Host` is the client's, as with Caddy, so
//!   that the upstream builds links the browser can follow. `X-Request-Id` is keygate's
//!   correlation id, the request's one id: its audit line (written once the status the
//!   client got is known) and a 502 page carry the same.
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

pub mod connect;
mod header_policy;
mod routes;
pub mod upstream;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{Either, Full, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use kg_http::error_chain;
use kg_http::net;
use kg_http::response::{closing, empty};
use kg_http::serve::{Busy, Conn};
use kg_login::{SessionRef, SignIn};
use kg_verifier::{Allowed, Ask, Credential, Ctx, Decision, Need, Outcome, Throttle, Verifier};

use crate::header_policy::{Forwarding, X_REQUEST_ID, connection_tokens, strip_hop_by_hop};
use crate::routes::Routes;
use crate::upstream::Upstream;

pub use crate::header_policy::StripHeaders;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a gateway response: keygate's own (empty or small), or the upstream's.
pub type GatewayBody = Either<Full<Bytes>, Relay>;

/// Who a request was let in as. One per request, moved along it and never kept in bulk,
/// so the size of the token variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Who {
    /// A local request, under the bypass: the identity headers naming keygate's user.
    Local(Vec<(HeaderName, HeaderValue)>),
    /// A verified bearer token, or a session whose token is still good.
    Token {
        id: String,
        /// The token's name, for the audit line.
        name: String,
        /// The identity headers for the upstream.
        identity: Vec<(HeaderName, HeaderValue)>,
        /// Its scopes, for the identity assertion.
        scopes: Vec<String>,
        /// The session it came with, if by cookie (then cross-site unsafe requests are
        /// refused, and a WebSocket tunnel ends with the session).
        session: Option<SessionRef>,
        /// A person's session: their id (and `id` is empty: no token).
        person: Option<String>,
        /// The groups the service admits (for a person's WebSocket, judged again).
        admits: Vec<String>,
    },
}

/// A service behind the portal (`[service.NAME]`), on a host of its own.
#[derive(Debug, Clone)]
pub struct ServiceRoute {
    /// Its name.
    pub name: String,
    /// The host it answers for, lower case.
    pub host: String,
    /// Where its requests go.
    pub upstream: Upstream,
    /// Whose sessions it admits (anyone's when empty).
    pub groups: Vec<String>,
    /// What a token needs there (`None`: the path's rules).
    pub scopes: Option<kg_verifier::Requirement>,
}

/// What the gateway is told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The upstream for every host no service names (`server.upstream`).
    pub upstream: Option<Upstream>,
    /// The services on hosts of their own.
    pub services: Vec<ServiceRoute>,
    /// The portal's host: keygate's pages only, never an upstream (an app there would share
    /// the portal's origin, and could read its launch tickets).
    pub portal_host: Option<String>,
    /// Time for the upstream to connect and answer with response headers.
    pub upstream_timeout: Duration,
    /// Largest request body forwarded, in bytes.
    pub max_request_body: u64,
    /// Largest response body relayed, in bytes.
    pub max_response_body: u64,
    /// Whether requests from this host pass without credentials, and whose.
    pub local_bypass: Option<LocalBypass>,
    /// Whether clients connect over HTTPS (for `X-Forwarded-Proto`).
    pub https: bool,
    /// More request headers to remove (`server.strip_headers`).
    pub strip_headers: StripHeaders,
}

/// The localhost bypass: the one user whose processes on this host pass without
/// credentials.
#[derive(Debug, Clone)]
pub struct LocalBypass {
    /// keygate's own effective uid: a loopback peer's socket must be owned by it.
    pub uid: u32,
    /// Its login name, for the upstream and the audit log.
    pub name: String,
    /// `server.danger_local_bypass_as_root`: whether the bypass applies when keygate runs
    /// as root, so that every process of root's (relays included) passes.
    pub as_root: bool,
}

impl LocalBypass {
    /// Whether anyone gets the bypass: never while keygate runs as root, unless the
    /// danger setting says so.
    pub fn grants(&self) -> bool {
        self.uid != 0 || self.as_root
    }
}

/// The body of the 403 under the bypass for a request another site started (a link
/// followed from another site lands here too: opening the address directly works).
const CROSS_SITE_REFUSED: &str =
    "cross-site request refused: another site started it; open this address directly\n";

/// The upstream's `X-Auth-Request-Session` for a request under the bypass.
const X_SESSION: HeaderName = HeaderName::from_static("x-auth-request-session");
/// The upstream's `X-Auth-Request-User` for a request under the bypass (the verifier
/// names a token's holder in the same header).
const X_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
/// The signed identity assertion (a JWT the upstream verifies from keygate's JWKS). In the
/// `X-Auth-Request-*` family, so a client's own is always removed.
pub const X_ASSERTION: HeaderName = HeaderName::from_static("x-auth-request-assertion");

/// Signs the identity assertion the upstream gets beside the plain identity headers (the
/// authorization server does, with its keys; kg-server connects the two).
pub trait Asserter: Send + Sync {
    /// A short-lived signed JWT saying that `subject` (token `token_id`, with `scopes`) is
    /// let in, for `audience` (the upstream's origin); `None` when none can be signed.
    fn assertion(
        &self,
        subject: &str,
        token_id: &str,
        scopes: &[String],
        audience: &str,
    ) -> Option<String>;
}

/// The reverse proxy.
pub struct Gateway {
    verifier: Arc<Verifier>,
    routes: Routes,
    portal_host: Option<String>,
    timeout: Duration,
    max_request_body: u64,
    max_response_body: u64,
    /// The bypass, when it grants anyone, and the identity headers it sends.
    local_bypass: Option<(LocalBypass, Vec<(HeaderName, HeaderValue)>)>,
    scheme: &'static str,
    sign_in: Arc<SignIn>,
    strip_headers: StripHeaders,
    /// Who signs identity assertions, once the authorization server is up.
    asserter: std::sync::OnceLock<Arc<dyn Asserter>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let upstreams: Vec<String> = self
            .routes
            .services()
            .map(|s| s.upstream.to_string())
            .collect();
        f.debug_struct("Gateway")
            .field("upstreams", &upstreams)
            .field("local_bypass", &self.local_bypass.as_ref().map(|b| &b.0))
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway to `settings.upstream`, judging with `verifier` and sending browsers to
    /// `sign_in`.
    pub fn new(settings: &Settings, verifier: Arc<Verifier>, sign_in: Arc<SignIn>) -> Gateway {
        Gateway {
            verifier,
            routes: Routes::new(settings.upstream.clone(), &settings.services),
            portal_host: settings.portal_host.clone(),
            timeout: settings.upstream_timeout,
            max_request_body: settings.max_request_body,
            max_response_body: settings.max_response_body,
            local_bypass: settings
                .local_bypass
                .clone()
                .filter(LocalBypass::grants)
                .map(|b| {
                    // A login name is printable ASCII on every system we know; a name that
                    // is not a header value is sent as the uid.
                    let user =
                        HeaderValue::from_str(&b.name).unwrap_or_else(|_| HeaderValue::from(b.uid));
                    let identity = vec![
                        (X_USER, user),
                        (X_SESSION, HeaderValue::from_static("local")),
                    ];
                    (b, identity)
                }),
            scheme: if settings.https { "https" } else { "http" },
            sign_in,
            strip_headers: settings.strip_headers.clone(),
            asserter: std::sync::OnceLock::new(),
        }
    }

    /// Sends a signed identity assertion ([`X_ASSERTION`]) with every request let in.
    pub fn set_asserter(&self, asserter: Arc<dyn Asserter>) {
        let _ = self.asserter.set(asserter);
    }

    /// Whether local requests (of keygate's own user) skip authentication.
    pub fn local_bypass(&self) -> bool {
        self.local_bypass.is_some()
    }

    /// Authorizes a request for the upstream and forwards it, or answers it.
    pub async fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<Conn>,
    ) -> Response<GatewayBody> {
        // One id for the request: its audit line, `X-Request-Id` upstream, a 502 page.
        let id = self.verifier.audit().ids().next();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        if let (Some(portal), Some(host)) = (&self.portal_host, host)
            && kg_http::net::host_name(host).eq_ignore_ascii_case(portal)
        {
            // The portal's own host: its landing page for a browser, nothing else.
            let resp = if is_navigation(&req) {
                self.sign_in.see_other(kg_login::PORTAL)
            } else {
                empty(StatusCode::NOT_FOUND)
            };
            return resp.map(Either::Left);
        }
        let Some(service) = self.routes.route(host) else {
            return empty(StatusCode::NOT_FOUND).map(Either::Left);
        };
        let who = match self.authorize(&req, &conn, &id, service) {
            Ok(who) => who,
            Err(resp) => return resp.map(Either::Left),
        };
        // The allow's audit line is written once the client's status is known: the upstream
        // may still fail (502, 504), and the line says what the client got.
        let v = &*self.verifier;
        let client = v.client(conn.peer.ip().to_canonical(), req.headers());
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let (outcome, token_id, token_name, user) = match &who {
            Who::Token {
                name,
                person: Some(_),
                ..
            } => (Outcome::Allow, None, None, Some(name.clone())),
            Who::Token { id, name, .. } => {
                (Outcome::Allow, Some(id.clone()), Some(name.clone()), None)
            }
            Who::Local(_) => (Outcome::Local, None, None, None),
        };
        let resp = self.forward(req, conn, who, &id, service).await;
        let allowed = Allowed {
            token_id: token_id.as_deref(),
            token_name: token_name.as_deref(),
            local_user: match outcome {
                Outcome::Local => self.local_bypass.as_ref().map(|(me, _)| me.name.as_str()),
                _ => None,
            },
            user: user.as_deref(),
        };
        let ctx = Ctx {
            client,
            method: method.as_str(),
            path: Some(path.as_bytes()),
            request_id: Some(&id),
        };
        v.log_allowed(outcome, resp.status().as_u16(), allowed, &ctx);
        resp
    }

    /// Decides who the request is from, or answers it.
    fn authorize(
        &self,
        req: &Request<Incoming>,
        conn: &Conn,
        request_id: &str,
        service: &routes::Service,
    ) -> Result<Who, Box<Response<kg_http::Body>>> {
        let v = &*self.verifier;
        let headers = req.headers();
        let peer_ip = conn.peer.ip().to_canonical();
        let path = req.uri().path().as_bytes();
        let ctx = Ctx {
            client: v.client(peer_ip, headers),
            method: req.method().as_str(),
            path: Some(path),
            request_id: Some(request_id),
        };
        let need = match &service.name {
            None => Need::Path(ctx.path),
            Some(_) => Need::Service {
                path: ctx.path,
                scopes: service.scopes.as_ref(),
                groups: &service.groups,
            },
        };
        fn ask<'a>(credential: Credential<'a>, ctx: Ctx<'a>, need: Need<'a>) -> Ask<'a> {
            Ask {
                credential,
                need,
                ctx,
                throttle: Throttle::AfterFailure,
                allow_as: Outcome::Allow,
                // Written by `serve` with the status the client got.
                allow_logged_later: true,
            }
        }
        // A judged credential: the identity, or the answer.
        let answer = |decision: Decision<'_>, session: Option<&SessionRef>| {
            let (status, challenge) = match decision {
                Decision::Allow(identity) => {
                    let who = Who::Token {
                        id: identity.id.to_owned(),
                        name: identity.name.to_owned(),
                        identity: identity
                            .headers()
                            .into_iter()
                            .filter_map(|(n, v)| Some((n, v?)))
                            .collect(),
                        scopes: identity.scopes.to_vec(),
                        session: session.cloned(),
                        person: session.and_then(|s| s.user_id.clone()),
                        admits: service.groups.clone(),
                    };
                    return (Some(Ok(who)), 200);
                }
                Decision::NotInGroup => {
                    let name = service.name.as_deref().unwrap_or("this service");
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .or_else(|| req.uri().authority().map(|a| a.as_str()));
                    let back = self
                        .sign_in
                        .portal_landing(self.sign_in.https(peer_ip, headers), host)
                        .map(|u| {
                            format!(
                                "<p><a class=\"button\" id=\"services\" href=\"{}\">Your services</a></p>\n",
                                kg_login::escape(&u)
                            )
                        })
                        .unwrap_or_default();
                    let resp = self.sign_in.page(
                        StatusCode::FORBIDDEN,
                        "No access",
                        &format!(
                            "<h1>No access to {}</h1>\n<p id=\"error\" role=\"alert\">You are \
                             signed in, but not in a group this service admits.</p>\n<p \
                             class=\"sub\">Ask an administrator: <code>keygate access \
                             explain</code> says which group would.</p>\n{back}",
                            kg_login::escape(name)
                        ),
                    );
                    return (Some(Err(Box::new(resp))), 403);
                }
                Decision::SessionEnded => return (None, 0),
                Decision::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
                Decision::InsufficientScope(c) => (StatusCode::FORBIDDEN, Some(c)),
                Decision::CrossSite => (StatusCode::FORBIDDEN, None),
                Decision::Missing => (StatusCode::UNAUTHORIZED, Some(v.challenge())),
                Decision::Invalid | Decision::Throttled { .. } => {
                    (StatusCode::UNAUTHORIZED, Some(v.challenge_invalid()))
                }
            };
            let mut resp = empty(status);
            if let Some(c) = challenge {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, c.clone());
            }
            (Some(Err(Box::new(resp))), status.as_u16())
        };
        // 0. The upstream routes the very bytes judged here, so they must mean one thing to
        // every parser: a path that does not is refused, whoever asks (`kg_verifier::paths`).
        if let Some(why) = kg_verifier::paths::ambiguity(path) {
            v.record(Outcome::AmbiguousPath, 400, None, &ctx);
            return Err(Box::new(ambiguous_path(why)));
        }
        // 1. Credentials that are presented are always judged.
        let bearer = Credential::from_headers(headers);
        if bearer != Credential::None {
            // A bearer token is allowed or refused, never a session that ended.
            return v
                .judge(&ask(bearer, ctx, need), |d| answer(d, None))
                .unwrap_or_else(|| Err(Box::new(empty(StatusCode::UNAUTHORIZED))));
        }
        // 2. A browser session, judged by its token's id, or its person. A person's session
        // is good only for the service it was opened for (the portal's own, or the upstream's
        // for every host, have none).
        if let Some(session) = self
            .sign_in
            .session(headers, peer_ip)
            .filter(|s| s.user_id.is_none() || s.service == service.name)
        {
            let foreign = cross_site(req, &self.sign_in);
            let credential = match &session.user_id {
                Some(user_id) => Credential::Person {
                    user_id,
                    foreign,
                    at: session.at,
                },
                None => Credential::Session {
                    token_id: &session.token_id,
                    foreign,
                },
            };
            match v.judge(&ask(credential, ctx, need), |d| answer(d, Some(&session))) {
                Some(result) => return result,
                // Revoked, expired or past its grace: the session ends with it.
                None => self.sign_in.end_session(&session),
            }
        }
        // 3. The localhost bypass: the kernel says the peer's socket is our own user's.
        if let Some((me, identity)) = &self.local_bypass
            && net::is_loopback(peer_ip)
            && conn.peer_owner == Some(me.uid)
            && v.trusted().is_empty()
            && !net::has_forwarding_headers(headers)
            && local_host(req)
        {
            // A page on any site can make the local browser send requests here: without
            // credentials to check, where it came from is all there is. A cross-site request
            // of any method could read the app (through its CORS policy) or act as the local
            // user; a same-site state change or WebSocket could act too. The Host check
            // above stops DNS rebinding from reading the answers.
            if fetched_cross_site(req) || cross_site(req, &self.sign_in) {
                v.record_local(Outcome::CrossSite, 403, &me.name, &ctx);
                let mut resp = kg_http::response::text(CROSS_SITE_REFUSED);
                *resp.status_mut() = StatusCode::FORBIDDEN;
                return Err(Box::new(resp));
            }
            // Counted now; `serve` writes the line with the status the client got.
            v.count(Outcome::Local);
            return Ok(Who::Local(identity.clone()));
        }
        // 4. Nobody: a browser goes to the sign-in page.
        v.judge(&ask(Credential::None, ctx, need), |_| {
            let portal = service.name.as_ref().and_then(|_| {
                // HTTP/2 names the host in the target's authority, not a `Host` header.
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| req.uri().authority().map(|a| a.as_str()));
                self.sign_in
                    .portal_landing(self.sign_in.https(peer_ip, headers), host)
            });
            let resp = if is_navigation(req) {
                match portal {
                    // A service host has no sign-in of its own: the portal's landing page
                    // (signing in first), then back in with a launch ticket.
                    Some(location) => self.sign_in.see_other(&location),
                    None => self.sign_in.redirect(req.uri()),
                }
            } else {
                let mut resp = empty(StatusCode::UNAUTHORIZED);
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, v.challenge().clone());
                resp
            };
            let status = resp.status().as_u16();
            (Err(Box::new(resp)), status)
        })
    }

    /// Sends an authorized request upstream and relays the answer.
    async fn forward(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        conn: Arc<Conn>,
        who: Who,
        id: &str,
        service: &routes::Service,
    ) -> Response<GatewayBody> {
        if let Some(len) = content_length(req.headers())
            && len > self.max_request_body
        {
            return closing(StatusCode::PAYLOAD_TOO_LARGE).map(Either::Left);
        }
        let upgrade = upgrade_protocol(&req);
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let peer_ip = conn.peer.ip().to_canonical();
        let trusted = net::is_trusted(peer_ip, self.verifier.trusted());

        // The plain identity headers, and a signed assertion of them for the upstream to
        // verify from the JWKS (audience: this upstream) when the authorization server is on.
        let mut identity = match &who {
            Who::Token { identity, .. } | Who::Local(identity) => identity.clone(),
        };
        if let Some(asserter) = self.asserter.get() {
            let (subject, token_id, scopes): (&str, &str, &[String]) = match &who {
                Who::Token {
                    id, name, scopes, ..
                } => (name, id, scopes),
                Who::Local(_) => (
                    self.local_bypass.as_ref().map_or("", |b| b.0.name.as_str()),
                    "local",
                    &[],
                ),
            };
            // The upstream URL as configured (`http://HOST:PORT[/PATH]`, `unix:/PATH`).
            let audience = service.upstream.to_string();
            if let Some(jwt) = asserter
                .assertion(subject, token_id, scopes, &audience)
                .and_then(|j| HeaderValue::from_str(&j).ok())
            {
                identity.push((X_ASSERTION, jwt));
            }
        }
        let identity = Some(identity.as_slice());
        let forwarding = Forwarding {
            peer: peer_ip,
            trusted,
            scheme: self.scheme,
            request_id: id,
            upstream_authority: &service.upstream.authority,
            identity,
            // A bearer token carried keygate's credential: the upstream gets the identity
            // instead. A session's request may carry the app's own Authorization.
            drop_authorization: matches!(who, Who::Token { session: None, .. }),
            upgrade: upgrade.as_ref(),
            strip: &self.strip_headers,
        };
        let mut headers = header_policy::upstream_headers(&parts, &forwarding);
        self.sign_in.strip_cookies(&mut headers);

        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = match format!(
            "http://{}{}{}",
            service.upstream.authority, service.upstream.base_path, path_and_query
        )
        .parse::<Uri>()
        {
            Ok(u) => u,
            Err(_) => return empty(StatusCode::BAD_REQUEST).map(Either::Left),
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
            &service.safe
        } else {
            &service.once
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
                return self.failed(status, id, &detail, &parts, peer_ip);
            }
            Err(_) => {
                let detail = format!(
                    "no response headers within server.upstream_timeout ({}s)",
                    self.timeout.as_secs()
                );
                return self.failed(StatusCode::GATEWAY_TIMEOUT, id, &detail, &parts, peer_ip);
            }
        };
        if let Some(len) = content_length(resp.headers())
            && len > self.max_response_body
        {
            let detail =
                format!("response body of {len} bytes is over server.max_response_body_mib");
            return self.failed(StatusCode::BAD_GATEWAY, id, &detail, &parts, peer_ip);
        }
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                let detail = "the upstream switched protocols without being asked".to_owned();
                return self.failed(StatusCode::BAD_GATEWAY, id, &detail, &parts, peer_ip);
            };
            let ws = resp
                .headers()
                .get(header::UPGRADE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
            if !ws {
                let detail = "the upstream switched to a protocol other than WebSocket".to_owned();
                return self.failed(StatusCode::BAD_GATEWAY, id, &detail, &parts, peer_ip);
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
        conn: Arc<Conn>,
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
                Who::Local(_) => true,
                Who::Token {
                    id,
                    session,
                    person,
                    admits,
                    ..
                } => {
                    session
                        .as_ref()
                        .is_none_or(|s| gateway.sign_in.sessions().alive(s))
                        && match person {
                            // Removed, disabled or out of the service's groups: it closes.
                            Some(user_id) => gateway
                                .verifier
                                .person(user_id)
                                .is_some_and(|p| kg_verifier::people::may_enter(&p, admits)),
                            None => gateway.verifier.still_valid(id),
                        }
                }
            };
            // A person's tunnel is judged more often: a group change or disabling is an
            // admin's act that should end their live connections at once, and the check is
            // one version read while nothing changed.
            let every = match &who {
                Who::Token {
                    person: Some(_), ..
                } => PERSON_TUNNEL_RECHECK,
                _ => TUNNEL_RECHECK,
            };
            let mut recheck = tokio::time::interval(every);
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
        self.verifier.audit().log_upstream_error(
            id,
            status.as_u16(),
            client,
            parts.method.as_str(),
            parts.uri.path().as_bytes(),
            detail,
        );
        self.verifier.metrics().upstream_error();
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
/// How often a WebSocket tunnel opened with a person's session is judged again.
const PERSON_TUNNEL_RECHECK: Duration = Duration::from_secs(2);

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

/// 400 for a path whose meaning depends on who parses it, saying what in it is.
fn ambiguous_path(why: kg_verifier::paths::Ambiguity) -> Response<kg_http::Body> {
    let mut resp = Response::new(kg_http::Body::from(format!(
        "400 Bad Request: the path has {}, which servers read differently; \
         request the path it stands for\n",
        why.describe()
    )));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
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

/// Whether the browser's fetch metadata says the request comes from another site
/// (`Sec-Fetch-Site: cross-site`), whatever its method.
fn fetched_cross_site(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all("sec-fetch-site")
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
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

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
