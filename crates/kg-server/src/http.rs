//! The endpoints: `/auth`, `/health` and `/metrics`.
//!
//! Every handler is synchronous: verification is a hash lookup and one HMAC, so a request
//! is answered in the poll that parsed it, with no task, no boxing and no await point.
//! The `/auth` path allocates nothing that grows with the request, the store or the number
//! of clients. Its decision ([`App::auth_reply`]) reads the request through [`Headers`] and
//! answers with a [`Reply`], so that hyper and the HTTP/1 fast lane (`fast.rs`, which
//! answers nginx's subrequests without building a hyper request) judge alike.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use time::OffsetDateTime;

use crate::audit::{Audit, Entry};
use crate::limiter::{Check, Limiter, client_key};
use crate::metrics::{Metrics, Outcome};
use crate::net::{self, Cidr};
use crate::scopes::ScopeRules;
use crate::settings::Settings;
use crate::tokens::{Tokens, Verdict};

/// Longest request target (414 beyond).
pub const MAX_TARGET: usize = 8 * 1024;
/// Most header bytes, names, values and separators (431 beyond).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The scope that opens `/metrics` to a token.
pub const METRICS_SCOPE: &str = "metrics";

/// The response body type: empty, or a small fixed text.
pub type Body = Full<Bytes>;

pub(crate) const X_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
pub(crate) const X_TOKEN_ID: HeaderName = HeaderName::from_static("x-auth-request-token-id");
pub(crate) const X_SCOPES: HeaderName = HeaderName::from_static("x-auth-request-scopes");

// Request headers `/auth` reads, as names built at compile time: looking a header up by
// `&str` parses and validates the name on every call.
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// Everything a request needs, shared by all connections.
pub struct App {
    tokens: Tokens,
    metrics: Arc<Metrics>,
    audit: Audit,
    by_client: Option<Limiter>,
    by_id: Option<Limiter>,
    pub(crate) trusted: Vec<Cidr>,
    pub(crate) scopes: ScopeRules,
    /// `Bearer realm="..."`.
    pub(crate) challenge: HeaderValue,
    /// `Bearer realm="...", error="invalid_token"`.
    challenge_invalid: HeaderValue,
}

impl App {
    /// Assembles the application state.
    pub fn new(settings: &Settings, tokens: Tokens, metrics: Arc<Metrics>, audit: Audit) -> App {
        let realm = &settings.realm;
        App {
            tokens,
            metrics,
            audit,
            by_client: Limiter::new(settings.rate_limit_burst, settings.rate_limit_refill),
            by_id: Limiter::new(settings.rate_limit_burst, settings.rate_limit_refill),
            trusted: settings.trusted_proxies.clone(),
            scopes: settings.scopes.clone(),
            // The realm was checked to be printable ASCII without quotes or backslashes.
            challenge: HeaderValue::from_str(&format!("Bearer realm=\"{realm}\""))
                .expect("checked realm"),
            challenge_invalid: HeaderValue::from_str(&format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\""
            ))
            .expect("checked realm"),
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The token store.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The audit log.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Answers one request from `peer`.
    pub fn handle(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if let Some(resp) = too_large(req) {
            return resp;
        }
        self.route(req, peer, req.uri().path())
    }

    /// Answers a request for one of the verifying endpoints, `path` being the endpoint's
    /// path (in proxy mode they live under `/.keygate/`).
    pub(crate) fn route(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
        path: &str,
    ) -> Response<Body> {
        if path == "/auth" || path.starts_with("/auth/") {
            self.auth(req, peer)
        } else if path == "/health" {
            health(req.method())
        } else if path == "/metrics" {
            self.metrics_endpoint(req, peer)
        } else {
            empty(StatusCode::NOT_FOUND)
        }
    }

    /// `/auth` through hyper.
    fn auth(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let input = AuthRequest {
            method: req.method().as_str(),
            path: req.uri().path(),
            has_body: !req.body().is_end_stream(),
            headers: req.headers(),
        };
        self.auth_reply(&input, peer, |reply| reply.response())
    }

    /// `/auth`: any method (Envoy forwards the original one), no body. Counts and logs the
    /// decision, then hands it to `respond` (the identity it carries borrows the store,
    /// which stays read-locked meanwhile).
    pub(crate) fn auth_reply<H: Headers + ?Sized, R>(
        &self,
        req: &AuthRequest<'_, H>,
        peer: SocketAddr,
        respond: impl FnOnce(Reply<'_>) -> R,
    ) -> R {
        let headers = req.headers;
        let peer_ip = peer.ip().to_canonical();
        let trusted = net::is_trusted(peer_ip, &self.trusted);
        let client = net::client_addr(peer_ip, headers, &self.trusted);
        let original = if trusted {
            original_uri(headers, req.path)
        } else {
            None
        };
        let method = if trusted {
            header_str(headers, &X_FORWARDED_METHOD)
                .or_else(|| header_str(headers, &X_ORIGINAL_METHOD))
                .unwrap_or(req.method)
        } else {
            req.method
        };
        let ctx = Ctx {
            client,
            method,
            path: original,
        };

        if req.has_body {
            // A body means this is not a proxy's auth subrequest; never read it.
            self.note(
                StatusCode::BAD_REQUEST,
                Outcome::BadRequest,
                None,
                None,
                &ctx,
                0,
            );
            return respond(Reply {
                status: StatusCode::BAD_REQUEST,
                challenge: None,
                identity: None,
                close: true,
            });
        }
        let ckey = client_key(client);
        let token = match bearer(headers) {
            Bearer::None => {
                self.note(
                    StatusCode::UNAUTHORIZED,
                    Outcome::Missing,
                    None,
                    None,
                    &ctx,
                    0,
                );
                return respond(Reply::unauthorized(&self.challenge));
            }
            Bearer::Malformed => {
                self.charge_refusal(kg_tokens::Reason::Malformed, None, None, ckey, &ctx);
                return respond(Reply::unauthorized(&self.challenge_invalid));
            }
            Bearer::Token(t) => t,
        };
        let id = token_id(token);
        let now = OffsetDateTime::now_utc();
        self.tokens
            .verify(token, now, &self.metrics, |verdict| match verdict {
                Verdict::Valid(info) => {
                    if let Some(need) = self.scopes.for_path(original)
                        && !need.scopes.iter().all(|s| info.has_scope(s))
                    {
                        self.note(
                            StatusCode::FORBIDDEN,
                            Outcome::InsufficientScope,
                            Some(info.id),
                            Some(info.name),
                            &ctx,
                            0,
                        );
                        return respond(Reply {
                            status: StatusCode::FORBIDDEN,
                            challenge: Some(&need.challenge),
                            identity: None,
                            close: false,
                        });
                    }
                    self.metrics.decision(Outcome::Allow);
                    if self.audit.wants_allow() {
                        self.audit.log(&entry(
                            Outcome::Allow,
                            200,
                            Some(info.id),
                            Some(info.name),
                            &ctx,
                            0,
                        ));
                    }
                    respond(Reply {
                        status: StatusCode::OK,
                        challenge: None,
                        identity: Some(Identity {
                            name: info.name,
                            id: info.id,
                            scopes: info.scopes,
                        }),
                        close: false,
                    })
                }
                Verdict::Invalid(reason) => {
                    let known_id = match reason {
                        kg_tokens::Reason::Unknown
                        | kg_tokens::Reason::Expired
                        | kg_tokens::Reason::Revoked => id,
                        _ => None,
                    };
                    // A well-formed token with a wrong secret spends from its id's bucket too.
                    let bucket = if reason == kg_tokens::Reason::Unknown {
                        id
                    } else {
                        None
                    };
                    self.charge_refusal(reason, bucket, known_id, ckey, &ctx);
                    respond(Reply::unauthorized(&self.challenge_invalid))
                }
            })
    }

    /// Answers a refused credential (401 with `error="invalid_token"`), after charging the
    /// failure buckets (see [`App::charge_refusal`]).
    pub(crate) fn refuse(
        &self,
        reason: kg_tokens::Reason,
        bucket_id: Option<&str>,
        known_id: Option<&str>,
        ckey: impl std::hash::Hash + Copy,
        ctx: &Ctx<'_>,
    ) -> Response<Body> {
        self.charge_refusal(reason, bucket_id, known_id, ckey, ctx);
        Reply::unauthorized(&self.challenge_invalid).response()
    }

    /// Counts and logs a refused credential, after charging the failure buckets. The answer
    /// is the same 401 whether or not the source is throttled (a 429 would become a 500 in
    /// nginx); throttling only rate-limits the audit lines.
    ///
    /// The limiter is consulted only once verification has failed: a correct secret is never
    /// refused because of it. Token ids are public (listings, logs, the identity header), so
    /// a bucket checked before verification let anyone lock a token out by sending forged
    /// tokens with its id (security review).
    fn charge_refusal(
        &self,
        reason: kg_tokens::Reason,
        bucket_id: Option<&str>,
        known_id: Option<&str>,
        ckey: impl std::hash::Hash + Copy,
        ctx: &Ctx<'_>,
    ) {
        // Check, then charge: a burst of N allows N failures before throttling begins.
        if let Some(l) = &self.by_client
            && let Check::Throttled {
                log, suppressed, ..
            } = l.check_and_fail(ckey)
        {
            return self.throttled(ctx, known_id, log, suppressed);
        }
        if let (Some(l), Some(id)) = (&self.by_id, bucket_id)
            && let Check::Throttled {
                log, suppressed, ..
            } = l.check_and_fail(id)
        {
            return self.throttled(ctx, Some(id), log, suppressed);
        }
        self.note(
            StatusCode::UNAUTHORIZED,
            Outcome::Invalid(reason),
            known_id,
            None,
            ctx,
            0,
        );
    }

    fn throttled(&self, ctx: &Ctx<'_>, id: Option<&str>, log: bool, suppressed: u32) {
        self.metrics.decision(Outcome::Throttled);
        if log {
            self.audit
                .log(&entry(Outcome::Throttled, 401, id, None, ctx, suppressed));
        }
    }

    /// Counts an allowed request, and logs it as `server.audit_allows` says.
    pub(crate) fn allowed(
        &self,
        outcome: Outcome,
        id: Option<&str>,
        name: Option<&str>,
        ctx: &Ctx<'_>,
    ) {
        self.metrics.decision(outcome);
        if self.audit.wants_allow() {
            self.audit.log(&entry(outcome, 200, id, name, ctx, 0));
        }
    }

    /// Logs a browser session ended because its token no longer stands (revoked, expired,
    /// past its rotation grace). The request then goes on without it.
    pub(crate) fn session_ended(&self, id: &str, ctx: &Ctx<'_>) {
        self.metrics.decision(Outcome::SessionEnded);
        self.audit
            .log(&entry(Outcome::SessionEnded, 0, Some(id), None, ctx, 0));
    }

    /// Counts and logs a denial.
    pub(crate) fn finish(
        &self,
        resp: &mut Response<Body>,
        outcome: Outcome,
        id: Option<&str>,
        name: Option<&str>,
        ctx: &Ctx<'_>,
        suppressed: u32,
    ) {
        self.note(resp.status(), outcome, id, name, ctx, suppressed);
    }

    /// Counts and logs a denial answered with `status`.
    fn note(
        &self,
        status: StatusCode,
        outcome: Outcome,
        id: Option<&str>,
        name: Option<&str>,
        ctx: &Ctx<'_>,
        suppressed: u32,
    ) {
        self.metrics.decision(outcome);
        self.audit
            .log(&entry(outcome, status.as_u16(), id, name, ctx, suppressed));
    }

    /// `/metrics`: to loopback peers that are not relaying anyone (no forwarding headers, no
    /// trusted proxies configured), or to a token with the `metrics` scope.
    fn metrics_endpoint(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return method_not_allowed();
        }
        let headers = req.headers();
        let peer_ip = peer.ip().to_canonical();
        let local = net::is_loopback(peer_ip)
            && self.trusted.is_empty()
            && !net::has_forwarding_headers(headers);
        if !local {
            let client = net::client_addr(peer_ip, headers, &self.trusted);
            let ckey = client_key(client);
            let ctx = Ctx {
                client,
                method: req.method().as_str(),
                path: Some(b"/metrics"),
            };
            if let Some(l) = &self.by_client
                && let Check::Throttled { retry_after, .. } = l.check(ckey)
            {
                let mut resp = empty(StatusCode::TOO_MANY_REQUESTS);
                if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
            let Bearer::Token(token) = bearer(headers) else {
                let mut resp = empty(StatusCode::UNAUTHORIZED);
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, self.challenge.clone());
                return resp;
            };
            let now = OffsetDateTime::now_utc();
            let denied = self.tokens.verify(token, now, &self.metrics, |v| match v {
                Verdict::Valid(info) if info.has_scope(METRICS_SCOPE) => None,
                Verdict::Valid(info) => {
                    let mut resp = empty(StatusCode::FORBIDDEN);
                    if let Ok(v) = HeaderValue::from_str(&format!(
                        "{}, error=\"insufficient_scope\", scope=\"{METRICS_SCOPE}\"",
                        self.challenge.to_str().unwrap_or("Bearer")
                    )) {
                        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                    self.audit.log(&entry(
                        Outcome::InsufficientScope,
                        403,
                        Some(info.id),
                        Some(info.name),
                        &ctx,
                        0,
                    ));
                    Some(resp)
                }
                Verdict::Invalid(reason) => {
                    if let Some(l) = &self.by_client {
                        l.fail(ckey);
                    }
                    let mut resp = empty(StatusCode::UNAUTHORIZED);
                    resp.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, self.challenge_invalid.clone());
                    self.audit
                        .log(&entry(Outcome::Invalid(reason), 401, None, None, &ctx, 0));
                    Some(resp)
                }
            });
            if let Some(resp) = denied {
                return resp;
            }
        }
        let mut resp = Response::new(Full::new(Bytes::from(self.metrics.render())));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        resp
    }
}

/// 414 or 431 for a request beyond [`MAX_TARGET`] or [`MAX_HEADER_BYTES`].
pub(crate) fn too_large<B>(req: &Request<B>) -> Option<Response<Body>> {
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + req.uri().authority().map_or(0, |a| a.as_str().len());
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    over_limits(target_len, header_bytes).map(closing)
}

/// The limits on a request head, for hyper's path and the fast lane alike: 414 for a target
/// over [`MAX_TARGET`], else 431 for header lines (names, values, separators) over
/// [`MAX_HEADER_BYTES`].
pub(crate) fn over_limits(target_len: usize, header_bytes: usize) -> Option<StatusCode> {
    if target_len > MAX_TARGET {
        Some(StatusCode::URI_TOO_LONG)
    } else if header_bytes > MAX_HEADER_BYTES {
        Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    } else {
        None
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// What the audit log says about the request besides the decision.
pub(crate) struct Ctx<'a> {
    pub client: IpAddr,
    pub method: &'a str,
    pub path: Option<&'a [u8]>,
}

pub(crate) fn entry<'a>(
    outcome: Outcome,
    status: u16,
    id: Option<&'a str>,
    name: Option<&'a str>,
    ctx: &Ctx<'a>,
    suppressed: u32,
) -> Entry<'a> {
    Entry {
        outcome,
        status,
        token_id: id,
        token_name: name,
        client: ctx.client,
        method: ctx.method,
        path: ctx.path,
        suppressed,
    }
}

/// The original request target, as a trusted proxy reports it: `X-Original-URI` (nginx),
/// `X-Forwarded-Uri` (Traefik, Caddy), or the part of `path` after `/auth` (Envoy's
/// `path_prefix`). When both headers are present and disagree, one was passed through from
/// the client: the path is then unknown, and the strictest scope rule applies.
fn original_uri<'a, H: Headers + ?Sized>(h: &'a H, path: &'a str) -> Option<&'a [u8]> {
    let (Some(a), Some(b)) = (only(h, &X_ORIGINAL_URI), only(h, &X_FORWARDED_URI)) else {
        return None;
    };
    match (a, b) {
        (Some(a), Some(b)) if a != b => None,
        (Some(a), _) => Some(a),
        (None, Some(b)) => Some(b),
        (None, None) => path
            .strip_prefix("/auth")
            .filter(|rest| rest.starts_with('/'))
            .map(str::as_bytes),
    }
}

/// The value of header `name`: `Some(None)` when absent, `None` when repeated. One lookup.
fn only<'a, H: Headers + ?Sized>(h: &'a H, name: &HeaderName) -> Option<Option<&'a [u8]>> {
    let mut all = h.values(name);
    let first = all.next();
    all.next().is_none().then_some(first)
}

/// `X-Auth-Request-Scopes`: the scopes joined by spaces, built in one buffer of the exact
/// size, which becomes the header value without a copy.
fn scopes_value(scopes: &[String]) -> Result<HeaderValue, hyper::header::InvalidHeaderValue> {
    let len = scopes
        .iter()
        .map(|s| s.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    let mut buf = Vec::with_capacity(len);
    for (i, s) in scopes.iter().enumerate() {
        if i > 0 {
            buf.push(b' ');
        }
        buf.extend_from_slice(s.as_bytes());
    }
    HeaderValue::from_maybe_shared(Bytes::from(buf))
}

fn header_str<'a, H: Headers + ?Sized>(h: &'a H, name: &HeaderName) -> Option<&'a str> {
    h.values(name)
        .next()
        .filter(|v| !v.is_empty() && v.len() <= 32 && v.iter().all(u8::is_ascii_alphabetic))
        .and_then(|v| std::str::from_utf8(v).ok())
}

pub(crate) enum Bearer<'a> {
    /// No bearer credentials at all (none, or another scheme).
    None,
    /// More than one `Authorization` header, or `Bearer` without a usable token.
    Malformed,
    Token(&'a str),
}

/// The bearer token of the `Authorization` header (RFC 6750 section 2.1: header only).
pub(crate) fn bearer<H: Headers + ?Sized>(h: &H) -> Bearer<'_> {
    let mut all = h.values(&header::AUTHORIZATION);
    let Some(v) = all.next() else {
        return Bearer::None;
    };
    if all.next().is_some() {
        return Bearer::Malformed;
    }
    if v.len() < 7 || !v[..6].eq_ignore_ascii_case(b"bearer") || v[6] != b' ' {
        return Bearer::None;
    }
    match std::str::from_utf8(&v[7..]).map(str::trim) {
        Ok(t) if !t.is_empty() && !t.contains(' ') => Bearer::Token(t),
        _ => Bearer::Malformed,
    }
}

/// Read access to a request's header lines, so that one piece of code judges requests
/// whether hyper parsed them (a [`HeaderMap`]) or the fast lane did (httparse's lines).
pub trait Headers {
    /// Every value of the header `name` (a lowercase name), in the order received.
    fn values<'a>(&'a self, name: &HeaderName) -> impl DoubleEndedIterator<Item = &'a [u8]>;
}

impl Headers for HeaderMap {
    fn values<'a>(&'a self, name: &HeaderName) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

impl Headers for [httparse::Header<'_>] {
    fn values<'a>(&'a self, name: &HeaderName) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value)
    }
}

/// A header value as text when it is visible ASCII (tabs allowed): the rule of
/// [`HeaderValue::to_str`], for header values that did not come through hyper.
pub(crate) fn visible(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}

/// What `/auth` needs from a request, whichever code parsed it.
pub(crate) struct AuthRequest<'a, H: ?Sized> {
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// Whether a body follows the head.
    pub has_body: bool,
    pub headers: &'a H,
}

/// `/auth`'s answer, before it becomes a hyper response or the fast lane's bytes. Every
/// answer has an empty body and `Content-Length: 0`.
pub(crate) struct Reply<'a> {
    pub status: StatusCode,
    /// `WWW-Authenticate`.
    pub challenge: Option<&'a HeaderValue>,
    /// The identity headers, on allow.
    pub identity: Option<Identity<'a>>,
    /// `Connection: close`, and the connection is closed.
    pub close: bool,
}

/// The accepted token's identity, for `X-Auth-Request-User`, `-Token-Id` and `-Scopes`.
/// A value that is not a valid header value (never the case for what tokenctl writes) is
/// left out.
pub(crate) struct Identity<'a> {
    pub name: &'a str,
    pub id: &'a str,
    pub scopes: &'a [String],
}

impl Reply<'_> {
    fn unauthorized(challenge: &HeaderValue) -> Reply<'_> {
        Reply {
            status: StatusCode::UNAUTHORIZED,
            challenge: Some(challenge),
            identity: None,
            close: false,
        }
    }

    /// As a hyper response.
    pub(crate) fn response(&self) -> Response<Body> {
        let mut resp = if self.close {
            closing(self.status)
        } else {
            empty(self.status)
        };
        let h = resp.headers_mut();
        if let Some(c) = self.challenge {
            h.insert(header::WWW_AUTHENTICATE, c.clone());
        }
        if let Some(i) = &self.identity {
            if let Ok(v) = HeaderValue::from_str(i.name) {
                h.insert(X_USER, v);
            }
            if let Ok(v) = HeaderValue::from_str(i.id) {
                h.insert(X_TOKEN_ID, v);
            }
            if let Ok(v) = scopes_value(i.scopes) {
                h.insert(X_SCOPES, v);
            }
        }
        resp
    }
}

/// The id part of something shaped like a token (`prefix_ID_...`), without checking it.
pub(crate) fn token_id(token: &str) -> Option<&str> {
    let mut parts = token.splitn(3, '_');
    parts.next()?;
    let id = parts.next()?;
    (id.len() == kg_tokens::ID_LEN && parts.next().is_some()).then_some(id)
}

fn health(method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed();
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(b"healthy")));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn method_not_allowed() -> Response<Body> {
    let mut resp = empty(StatusCode::METHOD_NOT_ALLOWED);
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    resp
}

/// An empty response with an explicit `Content-Length: 0` (hyper leaves it out on HEAD),
/// so that every proxy knows the response is complete and keeps the connection.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

/// An empty response after which the connection is closed.
pub(crate) fn closing(status: StatusCode) -> Response<Body> {
    let mut resp = empty(status);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The hyper service of one connection.
#[derive(Debug, Clone)]
pub struct Service {
    /// Shared state.
    pub app: Arc<App>,
    /// The socket peer.
    pub peer: SocketAddr,
    /// Requests answered on this connection; the connection's deadline reads it (HTTP/2
    /// bytes that complete no request must not keep a connection alive).
    pub served: Arc<std::sync::atomic::AtomicU64>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let resp = self.app.handle(&req, self.peer);
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ready(Ok(resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials_come_from_one_authorization_header() {
        let h = |values: &[&str]| {
            let mut m = HeaderMap::new();
            for v in values {
                m.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            m
        };
        assert!(matches!(bearer(&h(&[])), Bearer::None));
        assert!(matches!(bearer(&h(&["Basic dXNlcjpwdw=="])), Bearer::None));
        assert!(matches!(bearer(&h(&["Bearer"])), Bearer::None));
        assert!(matches!(bearer(&h(&["Bearer  "])), Bearer::Malformed));
        assert!(matches!(bearer(&h(&["Bearer a b"])), Bearer::Malformed));
        assert!(matches!(
            bearer(&h(&["Bearer a", "Bearer b"])),
            Bearer::Malformed
        ));
        assert!(matches!(bearer(&h(&["bearer abc"])), Bearer::Token("abc")));
        assert!(matches!(
            bearer(&h(&["Bearer  abc "])),
            Bearer::Token("abc")
        ));
    }

    #[test]
    fn token_ids_are_cut_without_parsing() {
        assert_eq!(token_id("kg_0123456789AB_rest"), Some("0123456789AB"));
        assert_eq!(token_id("kg_short_rest"), None);
        assert_eq!(token_id("kg_0123456789AB"), None);
        assert_eq!(token_id("nounderscore"), None);
    }
}
