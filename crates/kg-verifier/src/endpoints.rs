//! The verifier's endpoints: `/auth`, `/health` and `/metrics`, at whatever prefix the
//! server mounts them (the root, or `/.keygate` in proxy mode).

use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use kg_http::response::{closing, empty, method_not_allowed};
use kg_http::{Body, Headers, net};

use crate::{Ask, Credential, Ctx, Decision, Need, Outcome, Throttle, Verifier};

/// The scope that opens `/metrics` to a token.
pub const METRICS_SCOPE: &str = "metrics";

const X_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
const X_TOKEN_ID: HeaderName = HeaderName::from_static("x-auth-request-token-id");
const X_SCOPES: HeaderName = HeaderName::from_static("x-auth-request-scopes");
const X_GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");

// Request headers `/auth` reads, as names built at compile time: looking a header up by
// `&str` parses and validates the name on every call.
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// What `/auth` needs from a request, whichever code parsed it. Its `Debug` leaves out the
/// headers, which carry the token.
pub struct AuthRequest<'a, H: ?Sized> {
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// Whether a body follows the head.
    pub has_body: bool,
    /// The header lines.
    pub headers: &'a H,
}

impl<H: ?Sized> std::fmt::Debug for AuthRequest<'_, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("has_body", &self.has_body)
            .finish_non_exhaustive()
    }
}

/// `/auth`'s answer, before it becomes a hyper response or the fast lane's bytes. Every
/// answer has an empty body and `Content-Length: 0`.
#[derive(Debug)]
pub struct Reply<'a> {
    /// The status.
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
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The token's name.
    pub name: &'a str,
    /// The token's id.
    pub id: &'a str,
    /// Its scopes.
    pub scopes: &'a [String],
    /// A person's groups (none for a token).
    pub groups: &'a [String],
}

impl Identity<'_> {
    /// The identity headers, for the upstream or a proxy: `X-Auth-Request-User`, the
    /// token id, scopes, and a person's groups (comma-separated, as oauth2-proxy's
    /// `X-Auth-Request-Groups`). A person's session names no token.
    pub fn headers(&self) -> [(HeaderName, Option<HeaderValue>); 4] {
        let groups = self.groups.join(",");
        [
            (X_USER, HeaderValue::from_str(self.name).ok()),
            (
                X_TOKEN_ID,
                (!self.id.is_empty())
                    .then(|| HeaderValue::from_str(self.id).ok())
                    .flatten(),
            ),
            (X_SCOPES, scopes_value(self.scopes).ok()),
            (
                X_GROUPS,
                (!groups.is_empty())
                    .then(|| HeaderValue::from_str(&groups).ok())
                    .flatten(),
            ),
        ]
    }
}

impl Reply<'_> {
    fn new(status: StatusCode, challenge: Option<&HeaderValue>) -> Reply<'_> {
        Reply {
            status,
            challenge,
            identity: None,
            close: false,
        }
    }

    /// As a hyper response.
    pub fn response(&self) -> Response<Body> {
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
            for (name, value) in i.headers() {
                if let Some(v) = value {
                    h.insert(name, v);
                }
            }
        }
        resp
    }
}

impl Verifier {
    /// Answers a request for one of the verifying endpoints from `peer`, `path` being the
    /// endpoint's own path (`/auth`, `/auth/...`, `/health`, `/metrics`).
    pub fn handle(&self, req: &Request<Incoming>, peer: SocketAddr, path: &str) -> Response<Body> {
        if is_auth(path) {
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

    /// `/auth`: any method (Envoy forwards the original one), no body. Judges, then hands
    /// the reply to `respond` (the identity it carries borrows the store, which stays
    /// read-locked meanwhile).
    pub fn auth_reply<H: Headers + ?Sized, R>(
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
            request_id: None,
        };
        if req.has_body {
            // A body means this is not a proxy's auth subrequest; never read it.
            self.record(Outcome::BadRequest, 400, None, &ctx);
            let mut reply = Reply::new(StatusCode::BAD_REQUEST, None);
            reply.close = true;
            return respond(reply);
        }
        // The app routes the path itself: while the answer depends on the path, judge only
        // a path that every parser reads alike (`crate::paths`), whatever the credential.
        if !self.scopes.is_empty()
            && let Some(path) = original
            && crate::paths::ambiguity(path).is_some()
        {
            self.record(Outcome::AmbiguousPath, 403, None, &ctx);
            return respond(Reply::new(StatusCode::FORBIDDEN, None));
        }
        let ask = Ask {
            credential: Credential::from_headers(headers),
            need: Need::Path(original),
            ctx,
            throttle: Throttle::AfterFailure,
            allow_as: Outcome::Allow,
            allow_logged_later: false,
        };
        self.judge(&ask, |decision| {
            let reply = match decision {
                Decision::Allow(identity) => Reply {
                    identity: Some(identity),
                    ..Reply::new(StatusCode::OK, None)
                },
                Decision::Missing => Reply::new(StatusCode::UNAUTHORIZED, Some(&self.challenge)),
                Decision::InsufficientScope(c) => Reply::new(StatusCode::FORBIDDEN, Some(c)),
                Decision::NotInGroup => Reply::new(StatusCode::FORBIDDEN, None),
                // Not asked of bearer tokens and First: not reached; refused alike.
                Decision::Invalid
                | Decision::Throttled { .. }
                | Decision::CrossSite
                | Decision::SessionEnded
                | Decision::Unavailable => {
                    Reply::new(StatusCode::UNAUTHORIZED, Some(&self.challenge_invalid))
                }
            };
            let status = reply.status.as_u16();
            (respond(reply), status)
        })
    }

    /// `/metrics`: to loopback peers that are not relaying anyone (no forwarding headers, no
    /// trusted proxies configured), or to a token with the `metrics` scope.
    fn metrics_endpoint(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return method_not_allowed("GET, HEAD");
        }
        let headers = req.headers();
        let peer_ip = peer.ip().to_canonical();
        let local = net::is_loopback(peer_ip)
            && self.trusted.is_empty()
            && !net::has_forwarding_headers(headers);
        if !local {
            let ask = Ask {
                credential: Credential::from_headers(headers),
                need: Need::Scope(&self.metrics_scope),
                ctx: Ctx {
                    client: net::client_addr(peer_ip, headers, &self.trusted),
                    method: req.method().as_str(),
                    path: Some(b"/metrics"),
                    request_id: None,
                },
                throttle: Throttle::First,
                allow_as: Outcome::Allow,
                allow_logged_later: false,
            };
            let denied = self.judge(&ask, |decision| {
                let (status, challenge) = match decision {
                    Decision::Allow(_) => return (None, 200),
                    Decision::Throttled { retry_after } => {
                        let mut resp = empty(StatusCode::TOO_MANY_REQUESTS);
                        resp.headers_mut().insert(
                            header::RETRY_AFTER,
                            HeaderValue::from(retry_after.as_secs().max(1)),
                        );
                        return (Some(resp), 429);
                    }
                    Decision::Missing => (StatusCode::UNAUTHORIZED, &self.challenge),
                    Decision::InsufficientScope(c) => (StatusCode::FORBIDDEN, c),
                    Decision::NotInGroup => (StatusCode::FORBIDDEN, &self.challenge_invalid),
                    Decision::Invalid
                    | Decision::CrossSite
                    | Decision::SessionEnded
                    | Decision::Unavailable => (StatusCode::UNAUTHORIZED, &self.challenge_invalid),
                };
                let mut resp = empty(status);
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge.clone());
                (Some(resp), status.as_u16())
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

/// Whether `path` is `/auth` or below it (Envoy appends the original path).
pub(crate) fn is_auth(path: &str) -> bool {
    path == "/auth" || path.starts_with("/auth/")
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

fn health(method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    kg_http::response::text("healthy")
}
