//! Browser sign-in for the reverse proxy: a browser trades a token for a session cookie.
//!
//! The pages, CSRF, cookies and sessions live here; whether the token is good is the
//! verifier's decision ([`kg_verifier::Verifier::judge`]), and so is every audit line.
//!
//! | path | methods | answer |
//! |---|---|---|
//! | [`SIGN_IN`] | GET, HEAD | the sign-in form, or "signed in" with a sign-out button when the browser has a live session |
//! | [`SIGN_IN`] | POST `token`, `csrf`, `next` | 303 to `next` with a session cookie; 401, 403 or 429 with the form and an error |
//! | [`SIGN_OUT`] | POST `csrf` | 303 to the sign-in page, the session ended and its cookie expired |
//!
//! # Security properties
//!
//! - **The token is seen once**: read from the form into a buffer wiped on drop, verified,
//!   and never logged, echoed into a page or kept. The session cookie holds a random id and
//!   its HMAC ([`sessions`]), not the token.
//! - **Cookies**: `__Host-` names, `Secure` and `Path=/` whenever the browser reached us
//!   over HTTPS (no other site or path can set or shadow them), `HttpOnly`,
//!   `SameSite=Lax`, never a `Domain`. HTTPS is a fact of the request ([`SignIn::https`]):
//!   keygate's own TLS listener, or a plain listener whose socket peer is one of
//!   `server.trusted_proxies` and says `X-Forwarded-Proto: https` (anyone else's say-so
//!   changes nothing). On HTTPS only the `__Host-` names are read: a plain-named cookie
//!   (set over HTTP, or planted by a sibling host or a network attacker, which `__Host-`
//!   rules out) is ignored there and cleared, so it can neither fix a session nor a CSRF
//!   value. Signing out over HTTPS clears both names. Every name is removed from requests
//!   before they are forwarded ([`SignIn::strip_cookies`]). Sessions ([`sessions`]) and
//!   the CSRF cookie are signed under one process key ([`key`]), each use under its own
//!   label.
//! - **CSRF**: a form is accepted only with the double-submit value of the CSRF cookie (an
//!   HMAC-signed random value) or, for sign-out, the session's own CSRF value; compared in
//!   constant time. A request with an `Origin` other than this server's, or with
//!   `Sec-Fetch-Site: cross-site`, is refused before anything else.
//! - **No open redirect**: `next` is a path on this server or becomes `/` ([`safe_next`]).
//! - **Guessing is rate limited** per client address with the `/auth` limits, in a bucket of
//!   the form's own (a script's bad bearer tokens from the same address cannot lock people
//!   out); a throttled client gets 429 without any verification. Unknown, expired and
//!   revoked tokens get the same message; the audit log has the real reason.
//! - **The page runs no script and loads nothing**: its Content-Security-Policy allows only
//!   its own inline style, by hash; it cannot be framed.

#![forbid(unsafe_code)]

mod account;
pub mod form;
pub mod key;
mod page;
mod people;
pub mod portal;
pub mod reset;
pub mod sessions;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use kg_http::response::{empty as status_only, method_not_allowed};
use kg_verifier::{Ask, Credential, Ctx, Decision, Need, Outcome, Throttle, Verifier};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

pub use account::SESSIONS;
pub use page::escape;
pub use portal::{ENTER, PORTAL, Portal, PortalService};
pub use reset::RESET;
pub use sessions::{SessionRef, Sessions};

use form::{Form, read_form};
use page::{STYLE, human, push_error};

/// Every path keygate keeps for itself in proxy mode starts with this.
pub const PREFIX: &str = "/.keygate/";
/// The sign-in page.
pub const SIGN_IN: &str = "/.keygate/sign-in";
/// Where the sign-out form posts.
pub const SIGN_OUT: &str = "/.keygate/sign-out";
/// keygate's own pages a sign-in may return to (`next`): the authorization server's
/// authorize and device pages in proxy mode. Every other own path becomes `/`.
pub const OAUTH_PAGES: &str = "/.keygate/oauth/";
/// Largest form body read (413 beyond).
pub const MAX_FORM_BYTES: usize = 8 * 1024;
/// Lifetime of the CSRF cookie: how long a sign-in page may stay open before submitting.
pub const CSRF_MAX_AGE: Duration = Duration::from_secs(3600);
/// Time for a form body to arrive once its head has (408 beyond).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `next` kept; a longer one becomes `/`.
pub const MAX_NEXT: usize = 2048;

/// The response body type.
pub type Body = kg_http::Body;

/// What sign-in is told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The listener serves HTTPS itself (then every request is HTTPS; otherwise a trusted
    /// proxy's `X-Forwarded-Proto` says, request by request).
    pub secure: bool,
    /// The realm, named on the pages.
    pub realm: String,
    /// A browser session's absolute lifetime.
    pub session_lifetime: Duration,
    /// A browser session's idle timeout, slid by every request.
    pub session_idle_timeout: Duration,
}

const SESSION_COOKIE_SECURE: &str = "__Host-keygate_session";
const CSRF_COOKIE_SECURE: &str = "__Host-keygate_csrf";
const SESSION_COOKIE_PLAIN: &str = "keygate_session";
const CSRF_COOKIE_PLAIN: &str = "keygate_csrf";
/// Every cookie keygate sets, under either scheme: none of them is the upstream's business.
const OWN_COOKIES: [&str; 6] = [
    SESSION_COOKIE_SECURE,
    CSRF_COOKIE_SECURE,
    SESSION_COOKIE_PLAIN,
    CSRF_COOKIE_PLAIN,
    people::PENDING_COOKIE_SECURE,
    people::PENDING_COOKIE_PLAIN,
];

const CSRF_NONCE_LEN: usize = 16;
const CSRF_TAG_LEN: usize = 16;
const CSRF_LABEL: &[u8] = b"keygate sign-in csrf v1\0";

const MSG_REFUSED: &str = "That token was not accepted.";
const MSG_MISSING: &str = "Enter a token to sign in.";
const MSG_CSRF: &str = "This form has expired or was sent from another site. Please try again.";
const MSG_UNAVAILABLE: &str = "Sign-in is unavailable right now. Please try again shortly.";
const MSG_SIGN_OUT_CSRF: &str = "Sign-out could not be confirmed. Please try again.";

const X_FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The sign-in and sign-out endpoints, and the browser sessions they manage.
pub struct SignIn {
    sessions: Sessions,
    /// The listener serves HTTPS itself.
    secure: bool,
    realm: String,
    verifier: Arc<Verifier>,
    csp: HeaderValue,
    /// The portal and its services, when configured ([`SignIn::set_portal`]).
    portal: std::sync::OnceLock<Portal>,
    /// Where reset links are sent from, when configured ([`SignIn::set_mailer`]).
    mailer: std::sync::OnceLock<Arc<kg_mail::Mailer>>,
    /// When a reset link last went to each person (one per [`reset::RESET_COOLDOWN`]).
    resets_sent: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl SignIn {
    /// The endpoints for `settings`, judging tokens with `verifier`, keeping sessions in
    /// `store` with cookies and forms signed under `key`.
    pub fn new(
        settings: &Settings,
        verifier: Arc<Verifier>,
        store: Arc<dyn kg_store::SessionStore>,
        key: key::ProcessKey,
    ) -> SignIn {
        let sessions = Sessions::open(
            store,
            key,
            verifier.clock().clone(),
            settings.session_lifetime,
            settings.session_idle_timeout,
        );
        SignIn::build(settings.secure, &settings.realm, sessions, verifier)
    }

    fn build(secure: bool, realm: &str, sessions: Sessions, verifier: Arc<Verifier>) -> SignIn {
        let style_hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{style_hash}'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        SignIn {
            sessions,
            secure,
            realm: realm.to_owned(),
            verifier,
            csp: HeaderValue::from_str(&csp).expect("base64 is a valid header value"),
            portal: std::sync::OnceLock::new(),
            mailer: std::sync::OnceLock::new(),
            resets_sent: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Whether the browser reached us over HTTPS: this listener's own TLS, or a socket peer
    /// in `server.trusted_proxies` whose nearest `X-Forwarded-Proto` entry (the last one:
    /// its own word) is `https`. A header from any other peer changes nothing. The one
    /// decision behind cookie names, `Secure` and the origin check.
    pub fn https(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        if self.secure {
            return true;
        }
        if !kg_http::net::is_trusted(peer.to_canonical(), self.verifier.trusted()) {
            return false;
        }
        headers
            .get_all(X_FORWARDED_PROTO)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }

    /// The session cookie's name: `__Host-keygate_session` on HTTPS, `keygate_session` on
    /// plain HTTP (where a `__Host-` cookie cannot be set).
    pub fn session_cookie_name(https: bool) -> &'static str {
        if https {
            SESSION_COOKIE_SECURE
        } else {
            SESSION_COOKIE_PLAIN
        }
    }

    /// The CSRF cookie's name: `__Host-keygate_csrf` or `keygate_csrf`.
    pub fn csrf_cookie_name(https: bool) -> &'static str {
        if https {
            CSRF_COOKIE_SECURE
        } else {
            CSRF_COOKIE_PLAIN
        }
    }

    /// The `Set-Cookie` value that stores a session cookie for the session lifetime.
    pub fn session_cookie(&self, https: bool, value: &str) -> String {
        cookie(
            https,
            SignIn::session_cookie_name(https),
            value,
            self.sessions.lifetime().as_secs(),
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_session_cookie(https: bool) -> String {
        cookie(https, SignIn::session_cookie_name(https), "", 0)
    }

    /// The `Set-Cookie` value that stores a CSRF cookie.
    pub fn csrf_cookie(https: bool, value: &str) -> String {
        cookie(
            https,
            SignIn::csrf_cookie_name(https),
            value,
            CSRF_MAX_AGE.as_secs(),
        )
    }

    /// The `Set-Cookie` value that removes the CSRF cookie.
    pub fn clear_csrf_cookie(https: bool) -> String {
        cookie(https, SignIn::csrf_cookie_name(https), "", 0)
    }

    /// The session the request's cookie names, if any and still live: the `__Host-` cookie
    /// when the request is HTTPS ([`SignIn::https`], from the socket `peer`), the plain one
    /// otherwise. The token is not re-checked: the caller does that, and calls
    /// [`SignIn::end_session`] when it is no longer valid.
    pub fn session(&self, headers: &HeaderMap, peer: IpAddr) -> Option<SessionRef> {
        self.session_of(headers, self.https(peer, headers))
    }

    fn session_of(&self, headers: &HeaderMap, https: bool) -> Option<SessionRef> {
        cookie_values(headers, SignIn::session_cookie_name(https))
            .find_map(|v| self.sessions.get(v))
    }

    /// Ends a session.
    pub fn end_session(&self, s: &SessionRef) {
        self.sessions.end(s);
    }

    /// 303 See Other to the sign-in page, with `next` = the request's path and query: for a
    /// browser navigation without credentials.
    pub fn redirect(&self, uri: &Uri) -> Response<Body> {
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let next = safe_next(pq);
        let mut location = String::from(SIGN_IN);
        if next != "/" {
            location.push_str("?next=");
            push_query_encoded(&mut location, next);
        }
        self.see_other(&location)
    }

    /// Serves GET and HEAD on [`SIGN_IN`], and POST on [`SIGN_IN`] and [`SIGN_OUT`]; 405 with
    /// `Allow` for other methods there, 404 for any other path. A POST body is read here:
    /// at most [`MAX_FORM_BYTES`] (413 beyond), `application/x-www-form-urlencoded` only
    /// (415 otherwise), within [`BODY_TIMEOUT`] (408). `peer` is the socket peer: the
    /// client address and the scheme are derived from it ([`Verifier::client`],
    /// [`SignIn::https`]).
    pub async fn handle(&self, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let client = self.verifier.client(peer, &parts.headers);
        let https = self.https(peer, &parts.headers);
        let path = parts.uri.path();
        let page = if path == SIGN_IN {
            Page::SignIn
        } else if path == SIGN_OUT {
            Page::SignOut
        } else if path == PORTAL {
            Page::Portal
        } else if path == ENTER {
            Page::Enter
        } else if path == RESET {
            Page::Reset
        } else if path == SESSIONS {
            Page::Sessions
        } else {
            return status_only(StatusCode::NOT_FOUND);
        };
        let r = Req {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            client,
            https,
            path: page.path(),
        };
        match (page, &parts.method) {
            (Page::SignIn, &Method::GET | &Method::HEAD) => self.show(&r),
            (Page::Portal, &Method::GET | &Method::HEAD) => self.landing(&r),
            (Page::Reset, &Method::GET | &Method::HEAD) => self.reset_show(&r),
            (Page::Sessions, &Method::GET | &Method::HEAD) => self.sessions_page(&r, None),
            (_, &Method::POST) => {
                let form = match read_form(&parts.headers, body).await {
                    Ok(bytes) => Form::parse(&bytes),
                    Err(status) => {
                        let mut resp = status_only(status);
                        resp.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                        self.record(&r, Outcome::BadRequest, status, None);
                        return resp;
                    }
                };
                match page {
                    Page::SignIn if form.username.is_some() || form.step.is_some() => {
                        self.sign_in_person(&r, &form).await
                    }
                    Page::SignIn => self.sign_in(&r, &form),
                    Page::SignOut => self.sign_out(&r, &form),
                    Page::Enter => self.enter(&r, &form),
                    Page::Sessions => self.end_own_session(&r, &form),
                    Page::Reset => {
                        if self.cross_site(r.headers, r.uri) || !self.csrf_pair_matches(&r, &form) {
                            self.record(&r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
                            return status_only(StatusCode::FORBIDDEN);
                        }
                        self.reset_post(&r, &form).await
                    }
                    Page::Portal => method_not_allowed("GET, HEAD"),
                }
            }
            (Page::SignIn, _) => method_not_allowed("GET, HEAD, POST"),
            (Page::SignOut | Page::Enter, _) => method_not_allowed("POST"),
            (Page::Portal, _) => method_not_allowed("GET, HEAD"),
            (Page::Reset | Page::Sessions, _) => method_not_allowed("GET, HEAD, POST"),
        }
    }

    /// Removes keygate's own cookies from the request's `Cookie` header(s) before it is
    /// forwarded upstream. Other cookies are kept, joined into one `Cookie` field (HTTP/2
    /// sends one field per cookie; RFC 9113 section 8.2.3 asks for one when forwarding to
    /// HTTP/1.1); the field is removed when nothing is left.
    pub fn strip_cookies(&self, headers: &mut HeaderMap) {
        if !headers.contains_key(header::COOKIE) {
            return;
        }
        let mut kept: Vec<u8> = Vec::new();
        for value in headers.get_all(header::COOKIE) {
            for pair in value.as_bytes().split(|&b| b == b';') {
                let pair = pair.trim_ascii();
                if pair.is_empty() {
                    continue;
                }
                let name = pair
                    .iter()
                    .position(|&b| b == b'=')
                    .map_or(&pair[..0], |i| pair[..i].trim_ascii());
                if OWN_COOKIES.iter().any(|own| own.as_bytes() == name) {
                    continue;
                }
                if !kept.is_empty() {
                    kept.extend_from_slice(b"; ");
                }
                kept.extend_from_slice(pair);
            }
        }
        headers.remove(header::COOKIE);
        if !kept.is_empty()
            && let Ok(v) = HeaderValue::from_bytes(&kept)
        {
            headers.insert(header::COOKIE, v);
        }
    }

    /// GET on the sign-in page: the form, or "signed in" when the session is live and its
    /// token still valid.
    fn show(&self, r: &Req<'_>) -> Response<Body> {
        let next = r
            .uri
            .query()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "next")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        let next = safe_next(&next);
        if let Some(s) = self.session_of(r.headers, r.https) {
            if let Some(user_id) = &s.user_id {
                match self.verifier.person(user_id) {
                    Some(p) => {
                        let html = self.signed_in_page(&p.name, s.csrf(), next, None);
                        return self.html(StatusCode::OK, html);
                    }
                    None => self.sessions.end(&s),
                }
                return self.form_response(StatusCode::OK, r, next, None);
            }
            match self.verifier.holder(&s.token_id) {
                Some(holder) => {
                    let html = self.signed_in_page(&holder.name, s.csrf(), next, None);
                    return self.html(StatusCode::OK, html);
                }
                None => self.sessions.end(&s),
            }
        }
        self.form_response(StatusCode::OK, r, next, None)
    }

    /// POST on the sign-in page of a person: a name and password, or a later step.
    async fn sign_in_person(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let next = safe_next(form.next.as_deref().unwrap_or("/"));
        if self.cross_site(r.headers, r.uri) || !self.csrf_pair_matches(r, form) {
            self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
            return self.password_form(r, StatusCode::FORBIDDEN, next, "", Some(MSG_CSRF));
        }
        if !self.has_people() {
            return self.refused(r, next, MSG_MISSING);
        }
        if form.step.is_some() {
            self.sign_in_step(r, form).await
        } else {
            self.sign_in_password(r, form).await
        }
    }

    /// POST on the sign-in page.
    fn sign_in(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let next = safe_next(form.next.as_deref().unwrap_or("/"));
        // 1. The form must come from our own page.
        if self.cross_site(r.headers, r.uri) || !self.csrf_pair_matches(r, form) {
            self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
            return self.form_response(StatusCode::FORBIDDEN, r, next, Some(MSG_CSRF));
        }
        // 2. The token, from a client that has attempts left.
        let ask = Ask {
            credential: Credential::from_form(form.token.as_deref().map(Vec::as_slice)),
            need: Need::Nothing,
            ctx: r.ctx(),
            throttle: Throttle::Form,
            allow_as: Outcome::SignedIn,
            allow_logged_later: false,
        };
        self.verifier.judge(&ask, |decision| {
            let resp = match decision {
                Decision::Allow(who) => {
                    // A browser signing in again leaves no orphan behind.
                    if let Some(old) = self.session_of(r.headers, r.https) {
                        self.sessions.end(&old);
                    }
                    let new = match self.sessions.create(who.id) {
                        Ok(new) => new,
                        Err(_) => {
                            // Logged by `Sessions::create`; the person can retry.
                            return (
                                self.form_response(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    r,
                                    next,
                                    Some(MSG_UNAVAILABLE),
                                ),
                                503,
                            );
                        }
                    };
                    let mut resp = if continues_to_an_application(next) {
                        self.continue_page(next)
                    } else {
                        self.see_other(next)
                    };
                    set_cookie(&mut resp, &self.session_cookie(r.https, &new.cookie_value));
                    set_cookie(&mut resp, &SignIn::clear_csrf_cookie(r.https));
                    clear_plain_leftovers(&mut resp, r);
                    resp
                }
                Decision::Throttled { retry_after } => {
                    let secs = retry_after.as_secs().max(1);
                    let msg = format!("Too many failed attempts. Try again in {secs} seconds.");
                    let mut resp =
                        self.form_response(StatusCode::TOO_MANY_REQUESTS, r, next, Some(&msg));
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                    resp
                }
                Decision::Missing => self.refused(r, next, MSG_MISSING),
                Decision::Unavailable => self.form_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r,
                    next,
                    Some(MSG_UNAVAILABLE),
                ),
                // Unknown, expired, revoked and malformed tokens get the same message; the
                // audit log has the real reason.
                Decision::Invalid
                | Decision::InsufficientScope(_)
                | Decision::CrossSite
                | Decision::NotInGroup
                | Decision::SessionEnded => self.refused(r, next, MSG_REFUSED),
            };
            let status = resp.status().as_u16();
            (resp, status)
        })
    }

    /// POST on the sign-out path.
    fn sign_out(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let session = self.session_of(r.headers, r.https);
        let cross_site = self.cross_site(r.headers, r.uri);
        if let Some(s) = &session {
            let field = form.csrf.as_deref().unwrap_or("");
            let own: bool = field.as_bytes().ct_eq(s.csrf().as_bytes()).into();
            if cross_site || !(own || self.csrf_pair_matches(r, form)) {
                let id = Some(s.token_id.as_str());
                self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, id);
                let html = self.signed_in_page("", s.csrf(), "/", Some(MSG_SIGN_OUT_CSRF));
                return self.html(StatusCode::FORBIDDEN, html);
            }
            self.sessions.end(s);
        } else if cross_site {
            // Nothing to end, but another site may not clear our cookie either.
            self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
            return self.form_response(StatusCode::FORBIDDEN, r, "/", Some(MSG_CSRF));
        }
        let id = session.as_ref().map(|s| s.token_id.as_str());
        self.record(r, Outcome::SignedOut, StatusCode::SEE_OTHER, id);
        let mut resp = self.see_other(SIGN_IN);
        set_cookie(&mut resp, &SignIn::clear_session_cookie(r.https));
        if r.https {
            // A session cookie from plain HTTP goes too (a browser would not let plain
            // HTTP clear the `__Host-` one, so there is nothing more to do there).
            set_cookie(&mut resp, &SignIn::clear_session_cookie(false));
        }
        resp
    }

    /// 401 with the form and `message`.
    fn refused(&self, r: &Req<'_>, next: &str, message: &str) -> Response<Body> {
        let mut resp = self.form_response(StatusCode::UNAUTHORIZED, r, next, Some(message));
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.verifier.challenge().clone());
        resp
    }

    /// The sign-in form, reusing the request's CSRF cookie when it is valid and setting a
    /// new one otherwise.
    fn form_response(
        &self,
        status: StatusCode,
        r: &Req<'_>,
        next: &str,
        error: Option<&str>,
    ) -> Response<Body> {
        self.form_response_with(status, r, next, error, "")
    }

    /// The request's valid CSRF cookie value, or a new one (`true`: set it).
    fn csrf_for(&self, r: &Req<'_>) -> (String, bool) {
        let existing = cookie_values(r.headers, SignIn::csrf_cookie_name(r.https))
            .find(|v| self.csrf_valid(v))
            .map(str::to_owned);
        match existing {
            Some(v) => (v, false),
            None => (self.mint_csrf(), true),
        }
    }

    /// [`SignIn::form_response`] with the name a person typed filled in again.
    fn form_response_with(
        &self,
        status: StatusCode,
        r: &Req<'_>,
        next: &str,
        error: Option<&str>,
        name: &str,
    ) -> Response<Body> {
        let (csrf, fresh) = self.csrf_for(r);
        let mut resp = self.html(status, self.sign_in_page(&csrf, next, error, name));
        if fresh {
            set_cookie(&mut resp, &SignIn::csrf_cookie(r.https, &csrf));
        }
        clear_plain_leftovers(&mut resp, r);
        resp
    }

    /// Whether the form's `csrf` field equals a valid CSRF cookie of the request's scheme.
    fn csrf_pair_matches(&self, r: &Req<'_>, form: &Form) -> bool {
        let Some(field) = form.csrf.as_deref() else {
            return false;
        };
        cookie_values(r.headers, SignIn::csrf_cookie_name(r.https)).any(|v| {
            let same: bool = v.as_bytes().ct_eq(field.as_bytes()).into();
            same & self.csrf_valid(v)
        })
    }

    /// Whether the request says it comes from another site: `Sec-Fetch-Site: cross-site`,
    /// or an `Origin` other than this server's (the `Host` with this listener's scheme).
    /// On plain HTTP an `https` origin is accepted too: that listener is meant for a TLS
    /// proxy on the same host.
    pub fn cross_site(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        if headers
            .get(SEC_FETCH_SITE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
        {
            return true;
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return false;
        };
        if origins.next().is_some() {
            return true;
        }
        let host = headers
            .get(header::HOST)
            .map(HeaderValue::as_bytes)
            .or_else(|| uri.authority().map(|a| a.as_str().as_bytes()));
        let Some(host) = host else {
            return true;
        };
        let origin = origin.as_bytes();
        let https = strip_prefix_ci(origin, b"https://").map(|o| (o, &b":443"[..]));
        let http = (!self.secure)
            .then(|| strip_prefix_ci(origin, b"http://").map(|o| (o, &b":80"[..])))
            .flatten();
        let Some((origin_host, default_port)) = https.or(http) else {
            return true;
        };
        let strip = |h: &[u8]| -> Vec<u8> {
            let h = h.to_ascii_lowercase();
            match h.strip_suffix(default_port) {
                Some(rest) => rest.to_vec(),
                None => h,
            }
        };
        strip(origin_host) != strip(host)
    }

    fn mint_csrf(&self) -> String {
        let mut raw = [0u8; CSRF_NONCE_LEN + CSRF_TAG_LEN];
        getrandom::fill(&mut raw[..CSRF_NONCE_LEN])
            .expect("the operating system's random number generator");
        let tag = self.csrf_tag(&raw[..CSRF_NONCE_LEN]);
        raw[CSRF_NONCE_LEN..].copy_from_slice(&tag[..CSRF_TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether a CSRF cookie value is one this process issued.
    fn csrf_valid(&self, value: &str) -> bool {
        let mut raw = [0u8; CSRF_NONCE_LEN + CSRF_TAG_LEN + 3];
        match URL_SAFE_NO_PAD.decode_slice(value.as_bytes(), &mut raw) {
            Ok(n) if n == CSRF_NONCE_LEN + CSRF_TAG_LEN => {
                let tag = self.csrf_tag(&raw[..CSRF_NONCE_LEN]);
                tag[..CSRF_TAG_LEN]
                    .ct_eq(&raw[CSRF_NONCE_LEN..CSRF_NONCE_LEN + CSRF_TAG_LEN])
                    .into()
            }
            _ => false,
        }
    }

    fn csrf_tag(&self, nonce: &[u8]) -> [u8; 32] {
        self.sessions.key().tag(CSRF_LABEL, nonce)
    }

    /// Has the verifier count and audit one outcome of these pages.
    fn record(&self, r: &Req<'_>, outcome: Outcome, status: StatusCode, token_id: Option<&str>) {
        self.verifier
            .record(outcome, status.as_u16(), token_id, &r.ctx());
    }

    /// 303 See Other to `location` (a local path, or a URL built from configured hosts),
    /// with the pages' protective headers.
    pub fn see_other(&self, location: &str) -> Response<Body> {
        let mut resp = status_only(StatusCode::SEE_OTHER);
        let h = resp.headers_mut();
        // `location` is a checked local path (visible ASCII), or one of ours.
        h.insert(
            header::LOCATION,
            HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/")),
        );
        protect(h);
        resp
    }

    /// A page of another room (the authorization server's device page) in sign-in's shell,
    /// style and Content-Security-Policy. `title` and `content` are HTML, escaped already.
    pub fn page(&self, status: StatusCode, title: &str, content: &str) -> Response<Body> {
        self.html(status, page::shell(title, content))
    }

    /// [`SignIn::page`] whose form may end at `source` too (CSP source expressions, space
    /// separated: an
    /// origin such as `http://127.0.0.1:40000`, or a scheme such as `com.example.app:`):
    /// browsers hold the redirect after a form to `form-action`, and the consent form's
    /// answer is a redirect to the application. A `source` with anything but the
    /// characters of an origin is left out.
    pub fn page_leading_to(
        &self,
        status: StatusCode,
        title: &str,
        content: &str,
        source: &str,
    ) -> Response<Body> {
        self.allow_forms_to(self.page(status, title, content), source)
    }

    /// Adds `source` (space-separated CSP source expressions) to the response's CSP
    /// `form-action`; a source with anything but the characters of an origin is left out.
    fn allow_forms_to(&self, mut resp: Response<Body>, source: &str) -> Response<Body> {
        let plain = !source.is_empty()
            && source.split(' ').all(|src| {
                !src.is_empty()
                    && src
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.:/[]".contains(&b))
            });
        if plain
            && let Ok(csp) = self.csp.to_str()
            && let Ok(v) = HeaderValue::from_str(&csp.replacen(
                "form-action 'self'",
                &format!("form-action 'self' {source}"),
                1,
            ))
        {
            resp.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, v);
        }
        resp
    }

    /// The CSRF value a form of this session must carry.
    pub fn csrf_of(s: &SessionRef) -> &str {
        s.csrf()
    }

    /// "Signed in, continuing": for a sign-in on the way back to an application. A 303
    /// would be followed by the authorization server's own 303 to the application's
    /// redirect URI, and browsers hold every redirect after a form submission to the page's
    /// `form-action 'self'` (Chromium stays on the sign-in page). A refresh is a navigation
    /// of its own, so it is not; the link is there for a browser that does not refresh.
    fn continue_page(&self, next: &str) -> Response<Body> {
        let next = escape(next);
        let mut resp = self.html(
            StatusCode::OK,
            page::shell(
                "Signed in",
                &format!(
                    "<h1>Signed in</h1>\n<p class=\"sub\">Returning to the application\u{2026}</p>\n\
                     <p><a id=\"continue\" href=\"{next}\">Continue</a></p>\n"
                ),
            )
            .replacen(
                "<meta charset=\"utf-8\">\n",
                &format!("<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0;url={next}\">\n"),
                1,
            ),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    fn html(&self, status: StatusCode, text: String) -> Response<Body> {
        let mut resp = Response::new(Full::new(Bytes::from(text)));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        protect(h);
        resp
    }

    fn sign_in_page(&self, csrf: &str, next: &str, error: Option<&str>, name: &str) -> String {
        let realm = escape(&self.realm);
        let mut b = String::with_capacity(4096);
        let people = self.has_people();
        let _ = write!(
            b,
            "<h1>Sign in to {realm}</h1>\n\
             <p class=\"sub\">{}</p>\n",
            if people {
                "Sign in with your name and password."
            } else {
                "Paste your access token to continue."
            }
        );
        push_error(&mut b, error);
        let described = if error.is_some() {
            " aria-describedby=\"error\" aria-invalid=\"true\""
        } else {
            ""
        };
        if people {
            let _ = write!(
                b,
                "<form id=\"password-form\" method=\"post\" action=\"{SIGN_IN}\">\n\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
                 <input type=\"hidden\" name=\"next\" value=\"{next}\">\n\
                 <label for=\"username\">Name</label>\n\
                 <input type=\"text\" id=\"username\" name=\"username\" value=\"{name}\" \
                 autocomplete=\"username\" autocapitalize=\"off\" spellcheck=\"false\" \
                 required{autofocus}{described}>\n\
                 <label for=\"password\">Password</label>\n\
                 <input type=\"password\" id=\"password\" name=\"password\" \
                 autocomplete=\"current-password\" required{focus_password}>\n\
                 <button type=\"submit\">Sign in</button>\n\
                 </form>\n{reset}\
                 <details>\n<summary>Use an access token instead</summary>\n",
                reset = if self.offers_reset() {
                    "<p class=\"hint forgot\"><a id=\"forgot\" href=\"/.keygate/reset\">Forgot your password?</a></p>\n"
                } else {
                    ""
                },
                csrf = escape(csrf),
                next = escape(next),
                name = escape(name),
                autofocus = if name.is_empty() { " autofocus" } else { "" },
                focus_password = if name.is_empty() { "" } else { " autofocus" },
            );
        }
        let token_focus = if people { "" } else { " autofocus" };
        let _ = write!(
            b,
            "<form id=\"sign-in-form\" method=\"post\" action=\"{SIGN_IN}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\n\
             <label for=\"token\">Access token</label>\n\
             <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" \
             autocapitalize=\"off\" spellcheck=\"false\" required{token_focus}{described}>\n\
             <button type=\"submit\"{secondary}>{label}</button>\n\
             </form>\n{close}\
             <p class=\"foot\">{issued}\
             You stay signed in on this browser until you sign out, for {life} at most.</p>\n",
            life = human(self.sessions.lifetime()),
            csrf = escape(csrf),
            next = escape(next),
            described = if people { "" } else { described },
            secondary = if people { " class=\"secondary\"" } else { "" },
            label = if people {
                "Sign in with the token"
            } else {
                "Sign in"
            },
            close = if people { "</details>\n" } else { "" },
            issued = if people {
                ""
            } else {
                "Tokens are issued with <code>tokenctl</code>. "
            },
        );
        page::shell(&format!("Sign in \u{b7} {realm}"), &b)
    }

    fn signed_in_page(&self, name: &str, csrf: &str, next: &str, error: Option<&str>) -> String {
        let realm = escape(&self.realm);
        let mut b = String::with_capacity(4096);
        let _ = writeln!(b, "<h1>Signed in to {realm}</h1>");
        if name.is_empty() {
            b.push_str("<p class=\"sub\">You are signed in.</p>\n");
        } else {
            let _ = writeln!(
                b,
                "<p class=\"sub\">You are signed in as <strong>{}</strong>.</p>",
                escape(name)
            );
        }
        push_error(&mut b, error);
        let _ = write!(
            b,
            "<a class=\"button\" id=\"continue\" href=\"{next}\">Continue</a>\n\
             <form id=\"sign-out-form\" method=\"post\" action=\"{SIGN_OUT}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <button type=\"submit\" id=\"sign-out\" class=\"secondary\">Sign out</button>\n\
             </form>\n",
            next = escape(next),
            csrf = escape(csrf),
        );
        page::shell(&format!("Signed in \u{b7} {realm}"), &b)
    }
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("secure", &self.secure)
            .field("realm", &self.realm)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

/// `next` if it is a path on this server, else `/`: it must start with one `/` (not `//`
/// or `/\`, which browsers read as another host), hold only visible ASCII (browsers drop
/// tabs and newlines, which would turn `/\t/evil` into `//evil`) and no backslash, have no
/// `.` or `..` segment, not lead back into keygate's own pages, and be at most
/// [`MAX_NEXT`] bytes.
pub fn safe_next(next: &str) -> &str {
    let b = next.as_bytes();
    let path_end = b
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .unwrap_or(b.len());
    let ok = b.len() <= MAX_NEXT
        && b.first() == Some(&b'/')
        && b.get(1) != Some(&b'/')
        && b.iter().all(|&c| c.is_ascii_graphic() && c != b'\\')
        && !next[..path_end]
            .split('/')
            .any(|seg| seg == "." || seg == "..")
        && (!(next[..path_end] == PREFIX[..PREFIX.len() - 1] || next.starts_with(PREFIX))
            || next.starts_with(OAUTH_PAGES)
            || next[..path_end] == *PORTAL);
    if ok { next } else { "/" }
}

/// Whether `next` is the authorization server's authorize endpoint, where a sign-in goes on
/// to an application ([`SignIn::continue_page`]).
fn continues_to_an_application(next: &str) -> bool {
    let path = next.split(['?', '#']).next().unwrap_or("");
    path.ends_with("/oauth/authorize")
}

/// The request as the handlers see it.
struct Req<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    client: IpAddr,
    /// Whether the browser reached us over HTTPS ([`SignIn::https`]).
    https: bool,
    /// Our own path, for the audit log.
    path: &'static str,
}

impl<'a> Req<'a> {
    fn ctx(&self) -> Ctx<'a> {
        Ctx {
            client: self.client,
            method: self.method.as_str(),
            path: Some(self.path.as_bytes()),
            request_id: None,
        }
    }
}

#[derive(Clone, Copy)]
enum Page {
    SignIn,
    SignOut,
    Portal,
    Enter,
    Reset,
    Sessions,
}

impl Page {
    fn path(self) -> &'static str {
        match self {
            Page::SignIn => SIGN_IN,
            Page::SignOut => SIGN_OUT,
            Page::Portal => PORTAL,
            Page::Enter => ENTER,
            Page::Reset => RESET,
            Page::Sessions => SESSIONS,
        }
    }
}

/// The values of every cookie named `name` in the request.
fn cookie_values<'h>(headers: &'h HeaderMap, name: &'static str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.split_once('=')?;
            (n.trim() == name).then(|| v.trim())
        })
}

/// A `Set-Cookie` value: `__Host-` names come with `Secure` (and `Path=/`, no `Domain`, as
/// the prefix requires), plain ones without.
fn cookie(https: bool, name: &str, value: &str, max_age: u64) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly{secure}; SameSite=Lax")
}

/// On HTTPS, clears the plain-named cookies the request carried: they were set over plain
/// HTTP, or by someone who could not set a `__Host-` cookie, and are never read here.
fn clear_plain_leftovers(resp: &mut Response<Body>, r: &Req<'_>) {
    if !r.https {
        return;
    }
    for name in [
        SESSION_COOKIE_PLAIN,
        CSRF_COOKIE_PLAIN,
        people::PENDING_COOKIE_PLAIN,
    ] {
        if cookie_values(r.headers, name).next().is_some() {
            set_cookie(resp, &cookie(false, name, "", 0));
        }
    }
}

fn set_cookie(resp: &mut Response<Body>, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Headers every answer of these endpoints carries: nothing cached, framed, sniffed or
/// sent to other origins as a referrer (`same-origin`: with `no-referrer` browsers send
/// `Origin: null` on the form POST, which the origin check must refuse).
fn protect(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Appends `s` as a query value: everything but unreserved characters and the path
/// punctuation that means nothing in a query value is percent-encoded.
fn push_query_encoded(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$'()*,;?".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests;
