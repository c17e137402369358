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
//! - **Cookies**: `__Host-` names, `Secure` and `Path=/` on HTTPS (no other site or path
//!   can set or shadow them), `HttpOnly`, `SameSite=Lax`, never a `Domain`. Both are
//!   removed from requests before they are forwarded ([`SignIn::strip_cookies`]).
//!   Sessions ([`sessions`]) and the CSRF cookie are signed under one process key
//!   ([`key`]), each use under its own label.
//! - **CSRF**: a form is accepted only with the double-submit value of the CSRF cookie (an
//!   HMAC-signed random value) or, for sign-out, the session's own CSRF value; compared in
//!   constant time. A request with an `Origin` other than this server's, or with
//!   `Sec-Fetch-Site: cross-site`, is refused before anything else.
//! - **No open redirect**: `next` is a path on this server or becomes `/` ([`safe_next`]).
//! - **Guessing is rate limited** per client address, in the same bucket as `/auth` and the
//!   proxy's bearer tokens; a throttled client gets 429 without any verification. Unknown,
//!   expired and revoked tokens get the same message; the audit log has the real reason.
//! - **The page runs no script and loads nothing**: its Content-Security-Policy allows only
//!   its own inline style, by hash; it cannot be framed.

#![forbid(unsafe_code)]

pub mod key;
pub mod sessions;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use kg_http::response::{empty as status_only, method_not_allowed};
use kg_verifier::{Ask, Credential, Ctx, Decision, Need, Outcome, Throttle, Verifier};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

pub use sessions::{SessionRef, Sessions};

/// Every path keygate keeps for itself in proxy mode starts with this.
pub const PREFIX: &str = "/.keygate/";
/// The sign-in page.
pub const SIGN_IN: &str = "/.keygate/sign-in";
/// Where the sign-out form posts.
pub const SIGN_OUT: &str = "/.keygate/sign-out";
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
    /// HTTPS: `__Host-` cookie names and `Secure`.
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
const OWN_COOKIES: [&str; 4] = [
    SESSION_COOKIE_SECURE,
    CSRF_COOKIE_SECURE,
    SESSION_COOKIE_PLAIN,
    CSRF_COOKIE_PLAIN,
];

const FORM_TYPE: &str = "application/x-www-form-urlencoded";
const CSRF_NONCE_LEN: usize = 16;
const CSRF_TAG_LEN: usize = 16;
const CSRF_LABEL: &[u8] = b"keygate sign-in csrf v1\0";

const MSG_REFUSED: &str = "That token was not accepted.";
const MSG_MISSING: &str = "Enter a token to sign in.";
const MSG_CSRF: &str = "This form has expired or was sent from another site. Please try again.";
const MSG_SIGN_OUT_CSRF: &str = "Sign-out could not be confirmed. Please try again.";

const X_FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The sign-in and sign-out endpoints, and the browser sessions they manage.
pub struct SignIn {
    sessions: Sessions,
    /// HTTPS: `__Host-` cookie names and `Secure`.
    secure: bool,
    realm: String,
    verifier: Arc<Verifier>,
    csp: HeaderValue,
}

impl SignIn {
    /// The endpoints for `settings`, judging tokens with `verifier`.
    pub fn new(settings: &Settings, verifier: Arc<Verifier>) -> SignIn {
        SignIn::build(
            settings.secure,
            &settings.realm,
            Sessions::new(settings.session_lifetime, settings.session_idle_timeout),
            verifier,
        )
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
        }
    }

    /// The sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The session cookie's name: `__Host-keygate_session` on HTTPS, `keygate_session` on
    /// plain HTTP (where a `__Host-` cookie cannot be set).
    pub fn session_cookie_name(&self) -> &'static str {
        if self.secure {
            SESSION_COOKIE_SECURE
        } else {
            SESSION_COOKIE_PLAIN
        }
    }

    /// The CSRF cookie's name: `__Host-keygate_csrf` or `keygate_csrf`.
    pub fn csrf_cookie_name(&self) -> &'static str {
        if self.secure {
            CSRF_COOKIE_SECURE
        } else {
            CSRF_COOKIE_PLAIN
        }
    }

    /// The `Set-Cookie` value that stores a session cookie for the session lifetime.
    pub fn session_cookie(&self, value: &str) -> String {
        self.cookie(
            self.session_cookie_name(),
            value,
            self.sessions.lifetime().as_secs(),
            "Lax",
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_session_cookie(&self) -> String {
        self.cookie(self.session_cookie_name(), "", 0, "Lax")
    }

    /// The `Set-Cookie` value that stores a CSRF cookie.
    pub fn csrf_cookie(&self, value: &str) -> String {
        self.cookie(
            self.csrf_cookie_name(),
            value,
            CSRF_MAX_AGE.as_secs(),
            "Lax",
        )
    }

    /// The `Set-Cookie` value that removes the CSRF cookie.
    pub fn clear_csrf_cookie(&self) -> String {
        self.cookie(self.csrf_cookie_name(), "", 0, "Lax")
    }

    /// The session the request's cookie names, if any and still live. The token is not
    /// re-checked: the caller does that, and calls [`SignIn::end_session`] when it is no
    /// longer valid.
    pub fn session(&self, headers: &HeaderMap) -> Option<SessionRef> {
        cookie_values(headers, self.session_cookie_name()).find_map(|v| self.sessions.get(v))
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
    /// (415 otherwise), within [`BODY_TIMEOUT`] (408).
    pub async fn handle(&self, req: Request<Incoming>, client: IpAddr) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let page = if path == SIGN_IN {
            Page::SignIn
        } else if path == SIGN_OUT {
            Page::SignOut
        } else {
            return status_only(StatusCode::NOT_FOUND);
        };
        let r = Req {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            client,
            path: page.path(),
        };
        match (page, &parts.method) {
            (Page::SignIn, &Method::GET | &Method::HEAD) => self.show(&r),
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
                    Page::SignIn => self.sign_in(&r, &form),
                    Page::SignOut => self.sign_out(&r, &form),
                }
            }
            (Page::SignIn, _) => method_not_allowed("GET, HEAD, POST"),
            (Page::SignOut, _) => method_not_allowed("POST"),
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
        if let Some(s) = self.session(r.headers) {
            match self.verifier.holder(&s.token_id) {
                Some(name) => {
                    let html = self.signed_in_page(&name, s.csrf(), next, None);
                    return self.html(StatusCode::OK, html);
                }
                None => self.sessions.end(&s),
            }
        }
        self.form_response(StatusCode::OK, r.headers, next, None)
    }

    /// POST on the sign-in page.
    fn sign_in(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let next = safe_next(form.next.as_deref().unwrap_or("/"));
        // 1. The form must come from our own page.
        if self.cross_site(r.headers, r.uri) || !self.csrf_pair_matches(r.headers, form) {
            self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
            return self.form_response(StatusCode::FORBIDDEN, r.headers, next, Some(MSG_CSRF));
        }
        // 2. The token, from a client that has attempts left.
        let ask = Ask {
            credential: Credential::from_form(form.token.as_deref().map(Vec::as_slice)),
            need: Need::Nothing,
            ctx: r.ctx(),
            throttle: Throttle::First,
            allow_as: Outcome::SignedIn,
        };
        self.verifier.judge(&ask, |decision| {
            let resp = match decision {
                Decision::Allow(who) => {
                    // A browser signing in again leaves no orphan behind.
                    if let Some(old) = self.session(r.headers) {
                        self.sessions.end(&old);
                    }
                    let new = self.sessions.create(who.id);
                    let mut resp = self.see_other(next);
                    set_cookie(&mut resp, &self.session_cookie(&new.cookie_value));
                    set_cookie(&mut resp, &self.clear_csrf_cookie());
                    resp
                }
                Decision::Throttled { retry_after } => {
                    let secs = retry_after.as_secs().max(1);
                    let msg = format!("Too many failed attempts. Try again in {secs} seconds.");
                    let mut resp = self.form_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        r.headers,
                        next,
                        Some(&msg),
                    );
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                    resp
                }
                Decision::Missing => self.refused(r.headers, next, MSG_MISSING),
                // Unknown, expired, revoked and malformed tokens get the same message; the
                // audit log has the real reason.
                Decision::Invalid
                | Decision::InsufficientScope(_)
                | Decision::CrossSite
                | Decision::SessionEnded => self.refused(r.headers, next, MSG_REFUSED),
            };
            let status = resp.status().as_u16();
            (resp, status)
        })
    }

    /// POST on the sign-out path.
    fn sign_out(&self, r: &Req<'_>, form: &Form) -> Response<Body> {
        let session = self.session(r.headers);
        let cross_site = self.cross_site(r.headers, r.uri);
        if let Some(s) = &session {
            let field = form.csrf.as_deref().unwrap_or("");
            let own: bool = field.as_bytes().ct_eq(s.csrf().as_bytes()).into();
            if cross_site || !(own || self.csrf_pair_matches(r.headers, form)) {
                let id = Some(s.token_id.as_str());
                self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, id);
                let html = self.signed_in_page("", s.csrf(), "/", Some(MSG_SIGN_OUT_CSRF));
                return self.html(StatusCode::FORBIDDEN, html);
            }
            self.sessions.end(s);
        } else if cross_site {
            // Nothing to end, but another site may not clear our cookie either.
            self.record(r, Outcome::Csrf, StatusCode::FORBIDDEN, None);
            return self.form_response(StatusCode::FORBIDDEN, r.headers, "/", Some(MSG_CSRF));
        }
        let id = session.as_ref().map(|s| s.token_id.as_str());
        self.record(r, Outcome::SignedOut, StatusCode::SEE_OTHER, id);
        let mut resp = self.see_other(SIGN_IN);
        set_cookie(&mut resp, &self.clear_session_cookie());
        resp
    }

    /// 401 with the form and `message`.
    fn refused(&self, headers: &HeaderMap, next: &str, message: &str) -> Response<Body> {
        let mut resp = self.form_response(StatusCode::UNAUTHORIZED, headers, next, Some(message));
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.verifier.challenge().clone());
        resp
    }

    /// The sign-in form, reusing the request's CSRF cookie when it is valid and setting a
    /// new one otherwise.
    fn form_response(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        next: &str,
        error: Option<&str>,
    ) -> Response<Body> {
        let existing = cookie_values(headers, self.csrf_cookie_name())
            .find(|v| self.csrf_valid(v))
            .map(str::to_owned);
        let (csrf, fresh) = match existing {
            Some(v) => (v, false),
            None => (self.mint_csrf(), true),
        };
        let mut resp = self.html(status, self.sign_in_page(&csrf, next, error));
        if fresh {
            set_cookie(&mut resp, &self.csrf_cookie(&csrf));
        }
        resp
    }

    /// Whether the form's `csrf` field equals a valid CSRF cookie of the request.
    fn csrf_pair_matches(&self, headers: &HeaderMap, form: &Form) -> bool {
        let Some(field) = form.csrf.as_deref() else {
            return false;
        };
        cookie_values(headers, self.csrf_cookie_name()).any(|v| {
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

    fn cookie(&self, name: &str, value: &str, max_age: u64, same_site: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly{secure}; SameSite={same_site}")
    }

    /// Has the verifier count and audit one outcome of these pages.
    fn record(&self, r: &Req<'_>, outcome: Outcome, status: StatusCode, token_id: Option<&str>) {
        self.verifier
            .record(outcome, status.as_u16(), token_id, &r.ctx());
    }

    fn see_other(&self, location: &str) -> Response<Body> {
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

    fn sign_in_page(&self, csrf: &str, next: &str, error: Option<&str>) -> String {
        let realm = escape(&self.realm);
        let mut b = String::with_capacity(4096);
        let _ = write!(
            b,
            "<h1>Sign in to {realm}</h1>\n\
             <p class=\"sub\">Paste your access token to continue.</p>\n"
        );
        push_error(&mut b, error);
        let described = if error.is_some() {
            " aria-describedby=\"error\" aria-invalid=\"true\""
        } else {
            ""
        };
        let _ = write!(
            b,
            "<form id=\"sign-in-form\" method=\"post\" action=\"{SIGN_IN}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\n\
             <label for=\"token\">Access token</label>\n\
             <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" \
             autocapitalize=\"off\" spellcheck=\"false\" required autofocus{described}>\n\
             <button type=\"submit\">Sign in</button>\n\
             </form>\n\
             <p class=\"foot\">Tokens are issued with <code>tokenctl</code>. \
             You stay signed in on this browser until you sign out, for {life} at most.</p>\n",
            life = human(self.sessions.lifetime()),
            csrf = escape(csrf),
            next = escape(next),
        );
        self.shell(&format!("Sign in \u{b7} {realm}"), &b)
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
        self.shell(&format!("Signed in \u{b7} {realm}"), &b)
    }

    /// The document around a page's content. `title` is escaped already.
    fn shell(&self, title: &str, content: &str) -> String {
        format!(
            "<!doctype html>\n\
             <html lang=\"en\">\n\
             <head>\n\
             <meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"color-scheme\" content=\"light dark\">\n\
             <meta name=\"referrer\" content=\"same-origin\">\n\
             <title>{title}</title>\n\
             <style>{STYLE}</style>\n\
             </head>\n\
             <body>\n\
             <main>\n\
             <div class=\"mark\" aria-hidden=\"true\">{ICON}</div>\n\
             {content}\
             </main>\n\
             </body>\n\
             </html>\n"
        )
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
        && !(next[..path_end] == PREFIX[..PREFIX.len() - 1] || next.starts_with(PREFIX));
    if ok { next } else { "/" }
}

/// A sign-in form's fields. The token is kept in a buffer wiped on drop; every other
/// value read is wiped too, in case a token was pasted into the wrong field.
#[derive(Default)]
struct Form {
    token: Option<Zeroizing<Vec<u8>>>,
    csrf: Option<String>,
    next: Option<String>,
}

impl Drop for Form {
    fn drop(&mut self) {
        // `token` wipes itself; the others are wiped here, as the type's doc promises.
        use zeroize::Zeroize;
        for field in [&mut self.csrf, &mut self.next].into_iter().flatten() {
            field.zeroize();
        }
    }
}

impl Form {
    /// Parses `application/x-www-form-urlencoded`; the first of repeated fields counts.
    ///
    /// Hand-written rather than `form_urlencoded::parse`: that one decodes `+` and `%` into
    /// intermediate buffers that would be freed without being wiped.
    fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        for pair in body.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let mut n = Zeroizing::new(Vec::with_capacity(name.len()));
            percent_decode_into(name, &mut n);
            let mut v = Zeroizing::new(Vec::with_capacity(value.len()));
            percent_decode_into(value, &mut v);
            match n.as_slice() {
                b"token" if form.token.is_none() => form.token = Some(v),
                b"csrf" if form.csrf.is_none() => {
                    form.csrf = Some(String::from_utf8_lossy(&v).into_owned());
                }
                b"next" if form.next.is_none() => {
                    form.next = Some(String::from_utf8_lossy(&v).into_owned());
                }
                _ => {}
            }
        }
        form
    }
}

/// Decodes `+` and `%XX` into `out`, which has room for all of `input` (so it never
/// reallocates and leaves a copy behind); a `%` without two hex digits stays as it is.
fn percent_decode_into(input: &[u8], out: &mut Vec<u8>) {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    input.get(i + 1).copied().and_then(hex),
                    input.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(c),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
}

/// The request as the handlers see it.
struct Req<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    client: IpAddr,
    /// Our own path, for the audit log.
    path: &'static str,
}

impl<'a> Req<'a> {
    fn ctx(&self) -> Ctx<'a> {
        Ctx {
            client: self.client,
            method: self.method.as_str(),
            path: Some(self.path.as_bytes()),
        }
    }
}

#[derive(Clone, Copy)]
enum Page {
    SignIn,
    SignOut,
}

impl Page {
    fn path(self) -> &'static str {
        match self {
            Page::SignIn => SIGN_IN,
            Page::SignOut => SIGN_OUT,
        }
    }
}

/// Reads a form body: the right type, at most [`MAX_FORM_BYTES`], within
/// [`BODY_TIMEOUT`], into a buffer wiped on drop that never reallocates.
async fn read_form(
    headers: &HeaderMap,
    mut body: Incoming,
) -> Result<Zeroizing<Vec<u8>>, StatusCode> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(FORM_TYPE));
    if !is_form {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_FORM_BYTES));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_FORM_BYTES {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| StatusCode::REQUEST_TIMEOUT)??;
    Ok(buf)
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

fn set_cookie(resp: &mut Response<Body>, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A duration as people say it: `12 hours`, `30 minutes`.
fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 86_400 && s.is_multiple_of(86_400) {
        (s / 86_400, "day")
    } else if s >= 3_600 && s.is_multiple_of(3_600) {
        (s / 3_600, "hour")
    } else if s >= 60 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
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

fn push_error(b: &mut String, error: Option<&str>) {
    if let Some(e) = error {
        let _ = writeln!(b, "<p id=\"error\" role=\"alert\">{}</p>", escape(e));
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by character references.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

/// A padlock (after Feather's `lock`, MIT), drawn in the accent colour.
const ICON: &str = "<svg width=\"22\" height=\"22\" viewBox=\"0 0 24 24\" fill=\"none\" \
stroke=\"currentColor\" stroke-width=\"2\" stroke-linecap=\"round\" stroke-linejoin=\"round\">\
<rect x=\"3\" y=\"11\" width=\"18\" height=\"11\" rx=\"2\"/><path d=\"M7 11V7a5 5 0 0 1 10 0v4\"/></svg>";

/// The pages' only style, allowed by its hash in the Content-Security-Policy.
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--fg:#111827;--muted:#6b7280;\
--line:#d1d5db;--accent:#2563eb;--accent-fg:#fff;--focus:rgba(37,99,235,.35);--tint:rgba(37,99,235,.1);\
--err-bg:#fef2f2;--err-fg:#991b1b;--err-line:#fecaca;--shadow:0 1px 2px rgba(0,0,0,.05),0 8px 24px rgba(0,0,0,.08)}\
@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--card:#181b21;--fg:#e5e7eb;--muted:#9ca3af;\
--line:#2f3540;--accent:#60a5fa;--accent-fg:#0b1220;--focus:rgba(96,165,250,.35);--tint:rgba(96,165,250,.14);\
--err-bg:#2a1416;--err-fg:#fca5a5;--err-line:#5b2226;--shadow:0 1px 2px rgba(0,0,0,.4),0 8px 24px rgba(0,0,0,.35)}}\
*{box-sizing:border-box}\
html,body{height:100%}\
body{margin:0;display:flex;align-items:center;justify-content:center;padding:24px;background:var(--bg);color:var(--fg);\
font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\
main{width:100%;max-width:400px;background:var(--card);border:1px solid var(--line);border-radius:14px;\
padding:36px 32px 28px;box-shadow:var(--shadow)}\
.mark{display:flex;align-items:center;justify-content:center;width:44px;height:44px;margin-bottom:20px;\
border-radius:12px;color:var(--accent);background:var(--tint)}\
h1{margin:0 0 6px;font-size:22px;font-weight:650;letter-spacing:-.01em}\
.sub{margin:0 0 24px;color:var(--muted);font-size:15px}\
.sub strong{color:var(--fg);font-weight:600}\
label{display:block;font-size:14px;font-weight:600;margin-bottom:6px}\
input[type=password]{display:block;width:100%;padding:10px 12px;font:15px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;\
color:var(--fg);background:var(--card);border:1px solid var(--line);border-radius:8px}\
input[type=password]:focus{outline:none;border-color:var(--accent);box-shadow:0 0 0 3px var(--focus)}\
button,.button{display:block;width:100%;margin-top:16px;padding:10px 14px;font:inherit;font-weight:600;text-align:center;\
text-decoration:none;color:var(--accent-fg);background:var(--accent);border:1px solid var(--accent);border-radius:8px;cursor:pointer}\
button:hover,.button:hover{filter:brightness(1.08)}\
button:focus-visible,.button:focus-visible{outline:none;box-shadow:0 0 0 3px var(--focus)}\
button.secondary{color:var(--fg);background:transparent;border-color:var(--line)}\
#error{margin:0 0 20px;padding:10px 12px;font-size:14px;color:var(--err-fg);background:var(--err-bg);\
border:1px solid var(--err-line);border-radius:8px}\
.foot{margin:24px 0 0;color:var(--muted);font-size:13px}\
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}";

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use hyper::body::Frame;
    use hyper_util::rt::TokioIo;
    use kg_fs::lock::Wait;

    use kg_verifier::testing::{loaded, verifier};
    use time::OffsetDateTime;

    use crate::testing::settings;

    const HOUR: Duration = Duration::from_secs(3600);

    fn sign_in(secure: bool) -> SignIn {
        let dir = tempfile::tempdir().unwrap();
        let base = kg_verifier::testing::settings(dir.path(), &[]);
        SignIn::build(
            secure,
            "keygate",
            Sessions::new(12 * HOUR, HOUR),
            verifier(&base, dir.path()),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookies_on_https_are_host_only_and_secure() {
        let s = sign_in(true);
        assert_eq!(
            s.session_cookie("v"),
            "__Host-keygate_session=v; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            s.clear_session_cookie(),
            "__Host-keygate_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            s.csrf_cookie("c"),
            "__Host-keygate_csrf=c; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            s.clear_csrf_cookie(),
            "__Host-keygate_csrf=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn cookies_on_plain_http_have_plain_names_and_no_secure_flag() {
        let s = sign_in(false);
        assert_eq!(
            s.session_cookie("v"),
            "keygate_session=v; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            s.csrf_cookie("c"),
            "keygate_csrf=c; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
        );
        for c in [s.session_cookie("v"), s.clear_csrf_cookie()] {
            assert!(!c.contains("Domain") && !c.contains("Secure"), "{c}");
        }
    }

    #[test]
    fn settings_decide_the_scheme_and_the_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let new = |flags: &[(&str, &str)]| {
            let s = settings(dir.path(), flags);
            SignIn::new(&s.login, verifier(&s.base, dir.path()))
        };
        let https = new(&[("server.session_lifetime", "2h")]);
        assert_eq!(https.session_cookie_name(), "__Host-keygate_session");
        assert!(https.session_cookie("v").contains("Max-Age=7200;"));
        let plain = new(&[("server.plain_http", "true")]);
        assert_eq!(plain.session_cookie_name(), "keygate_session");
        assert_eq!(plain.csrf_cookie_name(), "keygate_csrf");
    }

    #[test]
    fn next_is_a_local_path_or_slash() {
        for (given, kept) in [
            ("/", "/"),
            ("/some/path?x=1", "/some/path?x=1"),
            ("/a/b?next=//evil.com#frag", "/a/b?next=//evil.com#frag"),
            ("/%2F%2Fevil.com", "/%2F%2Fevil.com"),
            ("/%5Cevil.com", "/%5Cevil.com"),
            ("/https://evil.com", "/https://evil.com"),
            ("/a?b=../c", "/a?b=../c"),
            ("", "/"),
            ("//evil.com", "/"),
            ("///evil.com", "/"),
            ("/\\evil.com", "/"),
            ("\\\\evil.com", "/"),
            ("/a\\b", "/"),
            ("https://evil.com", "/"),
            ("http:evil.com", "/"),
            ("javascript:alert(1)", "/"),
            ("evil.com", "/"),
            ("\t/", "/"),
            ("/\t/evil.com", "/"),
            ("/\n/evil.com", "/"),
            ("/\r\n/evil.com", "/"),
            (" /", "/"),
            ("/a b", "/"),
            ("/caf\u{e9}", "/"),
            ("/../evil", "/"),
            ("/a/./b", "/"),
            ("/a/..", "/"),
            ("/.keygate/sign-in", "/"),
            ("/.keygate/sign-out", "/"),
            ("/.keygate", "/"),
            ("/.keygate-app/x", "/.keygate-app/x"),
        ] {
            assert_eq!(safe_next(given), kept, "{given:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT))), "/");
    }

    #[test]
    fn forms_decode_plus_and_percent_and_keep_the_first_of_a_field() {
        let f = Form::parse(
            b"csrf=a%2Bb+c&next=%2Fx%3Fy%3D1&token=kg_abc%5F%zz%4&token=second&other=1&&=x&bare",
        );
        assert_eq!(f.csrf.as_deref(), Some("a+b c"));
        assert_eq!(f.next.as_deref(), Some("/x?y=1"));
        assert_eq!(
            f.token.as_deref().map(Vec::as_slice),
            Some(&b"kg_abc_%zz%4"[..])
        );
        let empty = Form::parse(b"");
        assert!(empty.token.is_none() && empty.csrf.is_none() && empty.next.is_none());
        let blank = Form::parse(b"token=&csrf");
        assert_eq!(blank.token.as_deref().map(Vec::len), Some(0));
        assert_eq!(blank.csrf.as_deref(), Some(""));
        // The buffer never grows, so no unwiped copy of a token is left behind.
        let mut out = Vec::with_capacity(8);
        percent_decode_into(b"%41%42+cd", &mut out);
        assert_eq!(out, b"AB cd");
        assert_eq!(out.capacity(), 8);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let dir = tempfile::tempdir().unwrap();
        let base = kg_verifier::testing::settings(dir.path(), &[]);
        let s = SignIn::build(
            false,
            "<b>&\"realm'",
            Sessions::new(HOUR, HOUR),
            verifier(&base, dir.path()),
        );
        let page = s.sign_in_page("c\"><script>", "/x\"><script>", Some("<i>oops</i>"));
        assert!(!page.contains("<script>") && !page.contains("<b>") && !page.contains("<i>"));
        assert!(page.contains("Sign in to &lt;b&gt;&amp;&quot;realm&#39;"));
        assert!(page.contains("value=\"/x&quot;&gt;&lt;script&gt;\""));
        let page = s.signed_in_page("<img>", "c", "/", None);
        assert!(page.contains("<strong>&lt;img&gt;</strong>"));
    }

    #[test]
    fn the_policy_allows_exactly_the_page_style() {
        let s = sign_in(true);
        let page = s.sign_in_page("c", "/", None);
        let style = page
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .unwrap()
            .0;
        let hash = STANDARD.encode(Sha256::digest(style.as_bytes()));
        let csp = s.csp.to_str().unwrap();
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
        for d in [
            "default-src 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(d), "{d}");
        }
        assert!(!page.contains("<script") && !page.contains(" style=") && !page.contains("http"));
    }

    #[test]
    fn csrf_values_are_signed_by_this_process() {
        let s = sign_in(true);
        let v = s.mint_csrf();
        assert!(s.csrf_valid(&v));
        assert_ne!(v, s.mint_csrf());
        assert!(!sign_in(true).csrf_valid(&v), "another key");
        let mut tampered = v.clone().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        assert!(!s.csrf_valid(std::str::from_utf8(&tampered).unwrap()));
        for bad in ["", "abc", &"A".repeat(43), &format!("{v}A")] {
            assert!(!s.csrf_valid(bad), "{bad}");
        }
    }

    #[test]
    fn the_csrf_field_must_match_a_valid_cookie() {
        let s = sign_in(true);
        let v = s.mint_csrf();
        let other = s.mint_csrf();
        let form = |csrf: Option<&str>| Form {
            token: None,
            csrf: csrf.map(str::to_owned),
            next: None,
        };
        let cookie = format!("a=1; __Host-keygate_csrf={v}; b=2");
        let h = headers(&[("cookie", &cookie)]);
        assert!(s.csrf_pair_matches(&h, &form(Some(&v))));
        assert!(!s.csrf_pair_matches(&h, &form(Some(&other))));
        assert!(!s.csrf_pair_matches(&h, &form(None)));
        assert!(!s.csrf_pair_matches(&h, &form(Some(""))));
        // The plain-HTTP name does not count on HTTPS.
        let plain = headers(&[("cookie", &format!("keygate_csrf={v}"))]);
        assert!(!s.csrf_pair_matches(&plain, &form(Some(&v))));
        // A value this process did not sign is refused even when field and cookie agree.
        let forged = "A".repeat(43);
        let h = headers(&[("cookie", &format!("__Host-keygate_csrf={forged}"))]);
        assert!(!s.csrf_pair_matches(&h, &form(Some(&forged))));
    }

    #[test]
    fn requests_from_other_sites_are_recognised() {
        let uri: Uri = "/.keygate/sign-in".parse().unwrap();
        let https = sign_in(true);
        let plain = sign_in(false);
        let host = ("host", "app.example:8443");
        for (h, https_cross, plain_cross) in [
            (vec![host], false, false),
            (
                vec![host, ("origin", "https://app.example:8443")],
                false,
                false,
            ),
            (
                vec![host, ("origin", "HTTPS://APP.example:8443")],
                false,
                false,
            ),
            (
                vec![host, ("origin", "http://app.example:8443")],
                true,
                false,
            ),
            (vec![host, ("origin", "https://evil.example")], true, true),
            (vec![host, ("origin", "https://app.example")], true, true),
            (vec![host, ("origin", "null")], true, true),
            (vec![("origin", "https://app.example:8443")], true, true),
            (vec![host, ("sec-fetch-site", "cross-site")], true, true),
            (vec![host, ("sec-fetch-site", "same-origin")], false, false),
            (
                vec![("host", "app.example"), ("origin", "https://app.example")],
                false,
                false,
            ),
            (
                vec![
                    ("host", "app.example:443"),
                    ("origin", "https://app.example"),
                ],
                false,
                false,
            ),
            (
                vec![("host", "app.example:80"), ("origin", "http://app.example")],
                true,
                false,
            ),
        ] {
            let hm = headers(&h);
            assert_eq!(https.cross_site(&hm, &uri), https_cross, "https {h:?}");
            assert_eq!(plain.cross_site(&hm, &uri), plain_cross, "plain {h:?}");
        }
        // HTTP/2: the authority is in the URI.
        let h2: Uri = "https://app.example:8443/.keygate/sign-in".parse().unwrap();
        let h = headers(&[("origin", "https://app.example:8443")]);
        assert!(!https.cross_site(&h, &h2));
    }

    #[test]
    fn own_cookies_are_stripped_before_forwarding() {
        let s = sign_in(true);
        let mut h = headers(&[
            (
                "cookie",
                "a=1; __Host-keygate_session=x;keygate_csrf=y ; b=2",
            ),
            ("cookie", "__Host-keygate_csrf=z"),
            ("cookie", "c=3"),
        ]);
        s.strip_cookies(&mut h);
        let all: Vec<_> = h.get_all(header::COOKIE).iter().collect();
        assert_eq!(all, ["a=1; b=2; c=3"]);
        let mut only_ours = headers(&[("cookie", "__Host-keygate_session=x; keygate_session=y")]);
        s.strip_cookies(&mut only_ours);
        assert!(!only_ours.contains_key(header::COOKIE));
        // Names are exact: a look-alike belongs to the upstream.
        let mut alike = headers(&[("cookie", "keygate_session2=1; my__Host-keygate_csrf=2")]);
        s.strip_cookies(&mut alike);
        assert_eq!(
            alike[header::COOKIE],
            "keygate_session2=1; my__Host-keygate_csrf=2"
        );
        let mut none = HeaderMap::new();
        s.strip_cookies(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn the_redirect_carries_the_request_target_as_next() {
        let s = sign_in(true);
        let loc = |uri: &str| {
            let resp = s.redirect(&uri.parse().unwrap());
            assert_eq!(resp.status(), StatusCode::SEE_OTHER);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
            resp.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(loc("/"), SIGN_IN);
        assert_eq!(
            loc("/some/path?x=1&y=a+b%20c#f"),
            "/.keygate/sign-in?next=/some/path?x%3D1%26y%3Da%2Bb%2520c"
        );
        assert_eq!(loc("//evil.com/x"), SIGN_IN);
        assert_eq!(loc("/.keygate/sign-in?next=/x"), SIGN_IN);
        // What the page reads back is what the request asked for.
        let encoded = loc("/a/b?q=1&r=%2F");
        let query = encoded.split_once('?').unwrap().1;
        let next = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "next")
            .unwrap()
            .1;
        assert_eq!(next, "/a/b?q=1&r=%2F");
    }

    // The endpoints over real connections.

    struct State {
        signin: SignIn,
        verifier: Arc<Verifier>,
    }

    struct Harness {
        rt: tokio::runtime::Runtime,
        addr: SocketAddr,
        state: Arc<State>,
        dir: tempfile::TempDir,
        /// A valid token named `alice`, and a revoked one named `bob`.
        token: String,
        revoked: String,
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Reply {
        fn set_cookies(&self) -> Vec<&str> {
            self.headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        }

        /// The value a `Set-Cookie` gives `name`.
        fn cookie(&self, name: &str) -> Option<String> {
            self.set_cookies().into_iter().find_map(|c| {
                let (n, rest) = c.split_once('=')?;
                (n == name).then(|| rest.split(';').next().unwrap().to_owned())
            })
        }

        /// The `value` of the form field `name` in the page.
        fn field(&self, name: &str) -> Option<String> {
            let marker = format!("name=\"{name}\" value=\"");
            let rest = self.body.split_once(&marker)?.1;
            Some(rest.split('"').next().unwrap().to_owned())
        }
    }

    /// A body sent in chunks of unknown total length (chunked transfer encoding).
    struct Chunks(Vec<Bytes>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(if self.0.is_empty() {
                None
            } else {
                Some(Ok(Frame::data(self.0.remove(0))))
            })
        }
    }

    impl Harness {
        fn new(flags: &[(&str, &str)]) -> Harness {
            let dir = tempfile::tempdir().unwrap();
            let setup = settings(dir.path(), flags);
            let settings = &setup.base;
            let now = OffsetDateTime::now_utc();
            let mut txn = settings.store.begin(Wait::No, &settings.prefix).unwrap();
            let (store, pepper) = txn.parts();
            let (_, token) = store.create(pepper, "alice", vec![], None, now).unwrap();
            let (bob, revoked) = store.create(pepper, "bob", vec![], None, now).unwrap();
            store.revoke_id(&bob.id, now).unwrap();
            txn.commit().unwrap();
            let (tokens, metrics, audit) = loaded(settings, dir.path());
            let verifier = Arc::new(Verifier::new(&settings.verifier, tokens, metrics, audit));
            let state = Arc::new(State {
                signin: SignIn::new(&setup.login, Arc::clone(&verifier)),
                verifier,
            });
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let served = Arc::clone(&state);
            rt.spawn(async move {
                while let Ok((stream, peer)) = listener.accept().await {
                    let s = Arc::clone(&served);
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let s = Arc::clone(&s);
                            async move {
                                let resp = s.signin.handle(req, peer.ip()).await;
                                Ok::<_, Infallible>(resp)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
            Harness {
                rt,
                addr,
                state,
                dir,
                token: token.expose_secret().to_owned(),
                revoked: revoked.expose_secret().to_owned(),
            }
        }

        fn send<B>(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: B) -> Reply
        where
            B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
        {
            self.rt.block_on(async {
                let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
                let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let mut b = Request::builder().method(method).uri(uri);
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                    b = b.header(header::HOST, "127.0.0.1");
                }
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                let resp = tx.send_request(b.body(body).unwrap()).await.unwrap();
                let (parts, body) = resp.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                Reply {
                    status: parts.status,
                    headers: parts.headers,
                    body: String::from_utf8(body.to_vec()).unwrap(),
                }
            })
        }

        fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
            self.send("GET", uri, headers, Full::new(Bytes::new()))
        }

        fn post(&self, uri: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Reply {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let mut h = vec![("content-type", FORM_TYPE)];
            h.extend_from_slice(headers);
            self.send("POST", uri, &h, Full::new(Bytes::from(body)))
        }

        /// A CSRF cookie header and field value, as a sign-in page hands them out.
        fn csrf(&self) -> (String, String) {
            let page = self.get(SIGN_IN, &[]);
            let name = self.state.signin.csrf_cookie_name();
            let value = page.cookie(name).unwrap();
            (format!("{name}={value}"), value)
        }

        /// Signs in with `token`; returns the reply and the session cookie header.
        fn sign_in(&self, token: &str, next: &str) -> (Reply, Option<String>) {
            let (cookie, csrf) = self.csrf();
            let r = self.post(
                SIGN_IN,
                &[("cookie", &cookie)],
                &[("token", token), ("csrf", &csrf), ("next", next)],
            );
            let name = self.state.signin.session_cookie_name();
            let session = r.cookie(name).map(|v| format!("{name}={v}"));
            (r, session)
        }

        /// Every audit line so far (closes the log).
        fn audit(&self) -> (String, Vec<serde_json::Value>) {
            self.state.verifier.audit().close();
            let text = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap();
            let lines = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (text, lines)
        }
    }

    fn assert_page_headers(r: &Reply) {
        let h = &r.headers;
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
    }

    #[test]
    fn the_page_has_the_form_and_sets_a_csrf_cookie() {
        let t = Harness::new(&[]);
        let r = t.get("/.keygate/sign-in?next=/some/path?x=1", &[]);
        assert_eq!(r.status, StatusCode::OK);
        assert_page_headers(&r);
        for part in [
            "<title>Sign in \u{b7} keygate</title>",
            "<h1>Sign in to keygate</h1>",
            "<form id=\"sign-in-form\" method=\"post\" action=\"/.keygate/sign-in\">",
            "<label for=\"token\">",
            "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\"",
            "<button type=\"submit\">",
        ] {
            assert!(r.body.contains(part), "{part}");
        }
        assert!(!r.body.contains("id=\"error\""));
        assert_eq!(r.field("next").unwrap(), "/some/path?x=1");
        let csrf = r.cookie("__Host-keygate_csrf").unwrap();
        assert_eq!(r.field("csrf").unwrap(), csrf);
        let set = r.set_cookies();
        assert_eq!(set.len(), 1);
        assert!(set[0].ends_with("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"));
        // A valid cookie is reused, so two open tabs do not spoil each other's forms.
        let again = t.get(
            SIGN_IN,
            &[("cookie", &format!("__Host-keygate_csrf={csrf}"))],
        );
        assert!(again.set_cookies().is_empty());
        assert_eq!(again.field("csrf").unwrap(), csrf);
        assert_eq!(again.field("next").unwrap(), "/");
        // One this process did not sign is replaced.
        let forged = t.get(SIGN_IN, &[("cookie", "__Host-keygate_csrf=forged")]);
        assert_ne!(forged.cookie("__Host-keygate_csrf").unwrap(), "forged");
        // An unsafe next never reaches the page.
        let evil = t.get("/.keygate/sign-in?next=//evil.com", &[]);
        assert_eq!(evil.field("next").unwrap(), "/");
        let head = t.send("HEAD", SIGN_IN, &[], Full::new(Bytes::new()));
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
    }

    #[test]
    fn a_valid_token_begins_a_session_and_sign_out_ends_it() {
        let t = Harness::new(&[]);
        let (r, session) = t.sign_in(&t.token, "/app/x?y=1");
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.headers[header::LOCATION], "/app/x?y=1");
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
        let set = r.set_cookies();
        assert!(set.iter().any(|c| c.starts_with("__Host-keygate_session=")
            && c.ends_with("; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax")));
        assert!(
            set.iter()
                .any(|c| c.starts_with("__Host-keygate_csrf=; Path=/; Max-Age=0"))
        );
        let session = session.unwrap();
        assert!(!session.contains(&t.token) && !session.contains("alice"));
        let found = t
            .state
            .signin
            .session(&headers(&[("cookie", &session)]))
            .unwrap();
        assert_eq!(t.state.signin.sessions().len(), 1);
        let alice_id = found.token_id.clone();

        // Signed in, the page offers sign-out.
        let page = t.get("/.keygate/sign-in?next=/app", &[("cookie", &session)]);
        assert_eq!(page.status, StatusCode::OK);
        assert_page_headers(&page);
        assert!(page.body.contains("signed in as <strong>alice</strong>"));
        assert!(page.body.contains("id=\"sign-out\""));
        assert!(page.body.contains("href=\"/app\""));
        let csrf = page.field("csrf").unwrap();
        assert_eq!(csrf, found.csrf());

        // Sign-out needs the session's CSRF value.
        let wrong = t.post(SIGN_OUT, &[("cookie", &session)], &[("csrf", "nope")]);
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        assert!(
            t.state
                .signin
                .session(&headers(&[("cookie", &session)]))
                .is_some()
        );
        let out = t.post(SIGN_OUT, &[("cookie", &session)], &[("csrf", &csrf)]);
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert_eq!(out.headers[header::LOCATION], SIGN_IN);
        assert_eq!(
            out.set_cookies(),
            ["__Host-keygate_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
        );
        assert!(
            t.state
                .signin
                .session(&headers(&[("cookie", &session)]))
                .is_none()
        );
        assert!(t.state.signin.sessions().is_empty());
        // Without a session, sign-out still clears the cookie.
        let again = t.post(SIGN_OUT, &[("cookie", &session)], &[]);
        assert_eq!(again.status, StatusCode::SEE_OTHER);
        assert_eq!(again.set_cookies().len(), 1);

        let (text, lines) = t.audit();
        assert!(!text.contains(&t.token) && !text.contains(&csrf));
        assert!(!text.contains(session.split_once('=').unwrap().1));
        let reasons: Vec<_> = lines
            .iter()
            .map(|l| l["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["signed_in", "csrf", "signed_out", "signed_out"]);
        assert_eq!(lines[0]["decision"], "allow");
        assert_eq!(lines[0]["token_id"], alice_id.as_str());
        assert_eq!(lines[0]["token_name"], "alice");
        assert_eq!(lines[0]["path"], SIGN_IN);
        assert_eq!(lines[0]["method"], "POST");
        assert_eq!(lines[0]["client"], "127.0.0.1");
        assert_eq!(lines[0]["status"], 303);
        assert_eq!(lines[2]["path"], SIGN_OUT);
        assert_eq!(lines[2]["token_id"], alice_id.as_str());
        assert!(
            t.state
                .verifier
                .metrics()
                .render()
                .contains("keygate_auth_decisions_total{result=\"allow\",reason=\"signed_in\"} 1")
        );
    }

    #[test]
    fn a_session_of_a_revoked_token_shows_the_form_again() {
        let t = Harness::new(&[]);
        let (_, session) = t.sign_in(&t.token, "/");
        let session = session.unwrap();
        let mut txn =
            kg_tokens::StorePaths::new(&t.dir.path().join("state"), &t.dir.path().join("private"))
                .begin(Wait::No, &kg_tokens::Prefix::default())
                .unwrap();
        let (store, _) = txn.parts();
        assert_eq!(
            store
                .revoke_name("alice", OffsetDateTime::now_utc())
                .unwrap(),
            1
        );
        txn.commit().unwrap();
        let page = t.get(SIGN_IN, &[("cookie", &session)]);
        assert!(page.body.contains("id=\"sign-in-form\""));
        assert!(t.state.signin.sessions().is_empty());
    }

    #[test]
    fn a_refused_token_gets_the_same_answer_whatever_the_reason() {
        let t = Harness::new(&[]);
        let mut bodies = Vec::new();
        // Well formed and checksummed, but not in the store: `unknown`.
        let wrong_secret = kg_tokens::generate(&kg_tokens::Prefix::default())
            .1
            .expose_secret()
            .to_owned();
        for token in [t.revoked.as_str(), "kg_nonsense", &wrong_secret] {
            let (r, session) = t.sign_in(token, "/x");
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}");
            assert!(session.is_none());
            assert_page_headers(&r);
            assert_eq!(
                r.headers[header::WWW_AUTHENTICATE],
                "Bearer realm=\"keygate\""
            );
            assert!(
                r.body
                    .contains("<p id=\"error\" role=\"alert\">That token was not accepted.</p>")
            );
            assert!(!r.body.contains(token));
            assert_eq!(r.field("next").unwrap(), "/x");
            bodies.push(r.body.replace(&r.field("csrf").unwrap(), ""));
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
        let (missing, _) = t.sign_in("", "/");
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        assert!(missing.body.contains("Enter a token"));
        let (text, lines) = t.audit();
        let reasons: Vec<_> = lines
            .iter()
            .map(|l| l["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            ["revoked", "malformed", "unknown", "missing_credentials"]
        );
        assert!(lines[0]["token_id"].is_string());
        assert!(lines[1]["token_id"].is_null());
        for token in [&t.token, &t.revoked, &wrong_secret] {
            assert!(!text.contains(token.as_str()));
        }
        assert!(t.state.signin.sessions().is_empty());
    }

    #[test]
    fn a_form_without_its_csrf_pair_or_from_another_site_is_refused() {
        let t = Harness::new(&[]);
        let (cookie, csrf) = t.csrf();
        let token = t.token.as_str();
        type Pairs<'a> = Vec<(&'a str, &'a str)>;
        let cases: [(Pairs<'_>, Pairs<'_>); 5] = [
            // No cookie.
            (vec![], vec![("token", token), ("csrf", &csrf)]),
            // No field.
            (vec![("cookie", &cookie)], vec![("token", token)]),
            // Field and cookie differ.
            (
                vec![("cookie", &cookie)],
                vec![("token", token), ("csrf", "x")],
            ),
            (
                vec![("cookie", &cookie), ("origin", "https://evil.example")],
                vec![("token", token), ("csrf", &csrf)],
            ),
            (
                vec![("cookie", &cookie), ("sec-fetch-site", "cross-site")],
                vec![("token", token), ("csrf", &csrf)],
            ),
        ];
        for (h, form) in &cases {
            let r = t.post(SIGN_IN, h, form);
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{h:?}");
            assert!(r.body.contains("id=\"error\""));
            assert!(r.cookie("__Host-keygate_session").is_none());
            assert!(r.field("csrf").is_some(), "a fresh form to retry with");
        }
        // The same request from our own origin goes through.
        let ok = t.post(
            SIGN_IN,
            &[
                ("cookie", &cookie),
                ("origin", "https://127.0.0.1"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[("token", token), ("csrf", &csrf)],
        );
        assert_eq!(ok.status, StatusCode::SEE_OTHER);
        let (_, lines) = t.audit();
        let reasons: Vec<_> = lines
            .iter()
            .map(|l| l["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            ["csrf", "csrf", "csrf", "csrf", "csrf", "signed_in"]
        );
        assert_eq!(lines[0]["status"], 403);
    }

    #[test]
    fn a_client_out_of_attempts_is_not_verified() {
        let t = Harness::new(&[
            ("server.rate_limit_burst", "2"),
            ("server.rate_limit_refill", "1h"),
        ]);
        for _ in 0..2 {
            assert_eq!(
                t.sign_in("kg_wrong", "/").0.status,
                StatusCode::UNAUTHORIZED
            );
        }
        let (r, session) = t.sign_in(&t.token, "/");
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(session.is_none());
        let secs: u64 = r.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(secs >= 1);
        assert!(r.body.contains("Too many failed attempts"));
        assert_page_headers(&r);
        let (_, lines) = t.audit();
        let reasons: Vec<_> = lines
            .iter()
            .map(|l| l["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["malformed", "malformed", "throttled"]);
        assert_eq!(lines[2]["status"], 429);
        assert!(t.state.signin.sessions().is_empty());
    }

    #[test]
    fn bodies_are_bounded_typed_and_methods_checked() {
        let t = Harness::new(&[("server.plain_http", "true")]);
        let big = format!("token={}", "a".repeat(MAX_FORM_BYTES));
        let r = t.send(
            "POST",
            SIGN_IN,
            &[("content-type", FORM_TYPE)],
            Full::new(Bytes::from(big.clone())),
        );
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Chunked, without a declared length.
        let chunks = Chunks(vec![
            Bytes::from(big[..5000].to_owned()),
            Bytes::from(big[5000..].to_owned()),
        ]);
        let r = t.send("POST", SIGN_IN, &[("content-type", FORM_TYPE)], chunks);
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        for ct in [
            None,
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let h: Vec<_> = ct.map(|c| ("content-type", c)).into_iter().collect();
            let r = t.send("POST", SIGN_IN, &h, Full::new(Bytes::from("token=x")));
            assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        }
        // Parameters after the type are fine.
        let (cookie, csrf) = t.csrf();
        assert!(cookie.starts_with("keygate_csrf="));
        let body = format!("token={}&csrf={csrf}", t.token);
        let r = t.send(
            "POST",
            SIGN_IN,
            &[
                (
                    "content-type",
                    "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
                ),
                ("cookie", &cookie),
            ],
            Full::new(Bytes::from(body)),
        );
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.headers[header::LOCATION], "/");
        assert!(r.cookie("keygate_session").is_some());
        for (method, path, allow) in [
            ("PUT", SIGN_IN, "GET, HEAD, POST"),
            ("DELETE", SIGN_IN, "GET, HEAD, POST"),
            ("GET", SIGN_OUT, "POST"),
        ] {
            let r = t.send(method, path, &[], Full::new(Bytes::new()));
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(r.headers[header::ALLOW], allow);
        }
        let r = t.get("/.keygate/other", &[]);
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
