//! What people sign in for: the authorization code grant with PKCE (S256 only), refresh
//! tokens that rotate on every use, the device authorization grant (RFC 8628) with its page
//! (`people/device.rs`), ID tokens and userinfo.
//!
//! Codes (`kgac_`), refresh tokens (`kgrt_`) and device codes (`kgdc_`) have the API token
//! format: prefixed, checksummed, stored as HMACs under the pepper. A refresh token's
//! successor is derived from it (a keyed digest), so an identical retry within
//! [`REFRESH_RETRY`] gets the same successor without the store ever holding one in the
//! clear; a spent token used outside that window revokes its whole grant.

use base64::Engine as _;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use kg_http::Body;
use kg_jose::{AccessClaims, Alg, Audience};
use kg_login::escape;
use kg_store::{
    ClientRecord, CodeRecord, CodeTake, DevicePoll, DeviceRecord, GrantRecord, RefreshRecord,
    RefreshUse,
};
use kg_tokens::{Prefix, TokenSecret};
use serde::Serialize;
use sha2::Digest as _;
use subtle::ConstantTimeEq;
use time::Duration;

use crate::clients::millis;

mod device;
use crate::provider::{
    AUTHORIZE, DEVICE, Form, OAuthError, Provider, SERVER_ERROR, bad, check_resource, json,
};

/// The prefix of authorization codes.
pub const CODE_PREFIX: &str = "kgac";
/// The prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "kgrt";
/// The prefix of device codes.
pub const DEVICE_PREFIX: &str = "kgdc";

/// How long a code may be redeemed (oidc-provider and Keycloak: 60 s).
const CODE_LIFETIME: Duration = Duration::seconds(60);
/// Within this of a refresh token's first use, the same request again gets the same
/// successor: parallel CLI processes and lost responses are the field's most common
/// refresh failure (Dex's window is 3 s, Hydra's grace up to 5 min).
pub const REFRESH_RETRY: Duration = Duration::seconds(10);
/// OpenID Connect's scopes, which every client that signs people in may ask for.
use kg_jose::OIDC_SCOPES;
/// Longest `state` or `nonce` kept.
const MAX_PARAM: usize = 512;

fn prefix(p: &str) -> Prefix {
    Prefix::new(p).expect("a valid prefix")
}

/// The claims of an ID token.
#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    name: &'a str,
}

#[derive(Serialize)]
struct PersonTokens<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    scope: &'a str,
    refresh_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

/// The scopes to grant a person's client: those asked for, each the client's or OpenID's.
fn people_scopes(allowed: &[String], asked: Option<&str>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in asked.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) && !OIDC_SCOPES.contains(&s) {
            return None;
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Some(out)
}

/// The parameters of an authorization request the consent form carries back.
const AUTHORIZE_PARAMS: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "resource",
];

/// Who a browser request is from: the holder of its session's API token.
struct Person {
    token_id: String,
    holder: kg_verifier::Holder,
    csrf: String,
}

/// The scopes of `asked` that `holder`'s token has, and OpenID's: a person's sign-in never
/// grants a client more than the person holds (RFC 6749 §3.3 lets the answer be narrower;
/// the token response's `scope` says what was granted).
fn within_holder(asked: &[String], holder: &kg_verifier::Holder) -> Vec<String> {
    asked
        .iter()
        .filter(|s| OIDC_SCOPES.contains(&s.as_str()) || holder.scopes.contains(s))
        .cloned()
        .collect()
}

/// The CSP source a redirect URI leads to: its origin (`http://127.0.0.1:40000`), or for a
/// private-use scheme the scheme (`com.example.app:`).
fn csp_source(redirect: &str) -> String {
    match redirect.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            format!("{scheme}://{authority}")
        }
        None => redirect
            .split_once(':')
            .map_or_else(String::new, |(scheme, _)| format!("{scheme}:")),
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge: base64url of a SHA-256, 43 characters.
fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// `uri` with `pairs` added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
        sep = '&';
    }
    out
}

fn see_other(location: &str) -> Response<Body> {
    let mut resp = kg_http::response::empty(StatusCode::SEE_OTHER);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

impl Provider {
    fn now_ms(&self) -> i64 {
        millis(self.verifier.clock().now())
    }

    /// A page that tells the person the application's request is broken: never a redirect,
    /// because the redirect URI is what could not be trusted.
    fn request_page(&self, status: StatusCode, why: &str) -> Response<Body> {
        match &self.sign_in {
            Some(s) => s.page(
                status,
                "Request refused",
                &format!(
                    "<h1>This sign-in request is not valid</h1>\n<p id=\"error\" role=\"alert\">{}</p>\n\
                     <p class=\"sub\">Go back to the application and try again; if it keeps \
                     happening, its registration with keygate needs fixing.</p>\n",
                    escape(why)
                ),
            ),
            None => kg_http::response::empty(status),
        }
    }

    /// The person a browser request comes from: the holder of its live session's token.
    fn person(&self, headers: &HeaderMap, peer: std::net::IpAddr) -> Option<Person> {
        let sign_in = self.sign_in.as_ref()?;
        let session = sign_in.session(headers, peer)?;
        // A person who signed in with a password stands in for a token by their id.
        let token_id = match &session.user_id {
            Some(user_id) => kg_verifier::people::person_ref(user_id),
            None => session.token_id.clone(),
        };
        let holder = self.verifier.holder(&token_id)?;
        Some(Person {
            csrf: kg_login::SignIn::csrf_of(&session).to_owned(),
            token_id,
            holder,
        })
    }

    /// The holder of the API token a person's code, device approval or grant came from,
    /// while that token stands: what they sign in with bounds what their sign-in grants.
    fn holder_of(&self, token_id: Option<&str>) -> Option<kg_verifier::Holder> {
        self.verifier.holder(token_id?)
    }

    /// `GET /authorize`, and `POST /authorize` from its consent page (the same parameters,
    /// with the person's decision and the session's CSRF value).
    pub(crate) async fn authorize(
        &self,
        req: Request<Incoming>,
        peer: std::net::IpAddr,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let consented = match parts.method {
            Method::GET | Method::HEAD => None,
            Method::POST => {
                if self
                    .sign_in
                    .as_ref()
                    .is_none_or(|s| s.cross_site(&parts.headers, &parts.uri))
                {
                    kg_login::form::drain(body).await;
                    return self.request_page(
                        StatusCode::FORBIDDEN,
                        "This form was sent from another site.",
                    );
                }
                match kg_login::form::read_form(&parts.headers, body).await {
                    Ok(b) => Some(b),
                    Err(status) => return kg_http::response::empty(status),
                }
            }
            _ => return kg_http::response::method_not_allowed("GET, HEAD, POST"),
        };
        let raw: &[u8] = match &consented {
            Some(b) => b,
            None => parts.uri.query().unwrap_or("").as_bytes(),
        };
        let Ok(q) = Form::parse(raw) else {
            return self.request_page(StatusCode::BAD_REQUEST, "A parameter is repeated.");
        };
        let get = |k: &str| q.get(k).ok().flatten();
        let client = get("client_id")
            .and_then(|id| self.clients().client(id).ok().flatten())
            .filter(|c| c.revoked.is_none() && c.grants.iter().any(|g| g == "authorization_code"));
        let Some(client) = client else {
            return self.request_page(
                StatusCode::BAD_REQUEST,
                "The application is not registered here for browser sign-in.",
            );
        };
        let Some(redirect) = get("redirect_uri")
            .filter(|r| crate::redirect::matches(&client.redirect_uris, r))
            .map(str::to_owned)
        else {
            return self.request_page(
                StatusCode::BAD_REQUEST,
                "The application asked to return to an address it did not register.",
            );
        };
        // An over-long state is refused, not dropped (a client that compares only a state
        // it gets back would lose its CSRF check); the refusal does not echo it.
        let long_state = get("state").is_some_and(|s| s.len() > MAX_PARAM);
        let state = get("state").filter(|s| s.len() <= MAX_PARAM);
        let iss = self.settings.issuer.as_str();
        // The answer is a redirect, never a page with the code in it: in proxy mode the
        // application shares this origin, and its script could read a page (the consent
        // page lets its form lead to the redirect's origin).
        let back = |url: &str| see_other(url);
        // From here on errors go back to the application (RFC 6749 §4.1.2.1), with `iss`
        // (RFC 9207) so a client of several servers knows whose answer it is.
        let fail = |code: &str, description: &str| {
            let mut pairs = vec![("error", code), ("error_description", description)];
            if let Some(s) = state {
                pairs.push(("state", s));
            }
            pairs.push(("iss", iss));
            back(&with_query(&redirect, &pairs))
        };
        if get("response_type") != Some("code") {
            return fail(
                "unsupported_response_type",
                "only response_type=code is served",
            );
        }
        let challenge = match (get("code_challenge"), get("code_challenge_method")) {
            (Some(c), Some("S256")) if valid_challenge(c) => c.to_owned(),
            (_, Some(m)) if m != "S256" => {
                return fail("invalid_request", "PKCE plain is refused: use S256");
            }
            (Some(_), Some(_)) => return fail("invalid_request", "code_challenge is malformed"),
            _ => {
                return fail(
                    "invalid_request",
                    "PKCE is required: code_challenge with code_challenge_method=S256",
                );
            }
        };
        let Some(scopes) = people_scopes(&client.scopes, get("scope")) else {
            return fail(
                "invalid_scope",
                "a requested scope is not one the client may be given",
            );
        };
        let resource = match get("resource") {
            None => None,
            Some(r) => match check_resource(r) {
                Ok(r) => Some(r.to_owned()),
                Err(_) => return fail("invalid_target", "resource must be an absolute URI"),
            },
        };
        let nonce = get("nonce");
        if long_state || nonce.is_some_and(|n| n.len() > MAX_PARAM) {
            return fail("invalid_request", "state or nonce is too long");
        }
        let prompt = |p: &str| get("prompt").is_some_and(|v| v.split(' ').any(|x| x == p));
        let Some(person) = self.person(&parts.headers, peer) else {
            if prompt("none") {
                return fail("login_required", "the person is not signed in");
            }
            return match (&self.sign_in, &consented) {
                (Some(s), None) => s.redirect(&parts.uri),
                // The session ended while the consent page was open.
                _ => fail("login_required", "the person is not signed in"),
            };
        };
        let granted = within_holder(&scopes, &person.holder);
        // A public client is asked for every time: its loopback redirect accepts any port,
        // so any process of any user on the person's machine could be listening there, and
        // a page elsewhere could send the browser to this URL. A confidential client (an
        // exact redirect, registered by the operator) is the operator's own.
        // A confidential client with a loopback or private-use redirect is asked for too:
        // whoever listens there need not be the client.
        let ask = client.public || !redirect.starts_with("https://") || prompt("consent");
        match &consented {
            None if ask && prompt("none") => {
                return fail(
                    "consent_required",
                    "the person must approve this application",
                );
            }
            None if ask => {
                return self.consent_page(&client, &person, &granted, &redirect, &q);
            }
            Some(_) => {
                // A browser says whether a person clicked (Fetch Metadata): a form that a
                // script of this origin (the application's, in proxy mode) submits, or a
                // fetch, is not an answer. Clients without the headers are not browsers.
                let fetch_meta = |name: &str| parts.headers.get(name).map(HeaderValue::as_bytes);
                if fetch_meta("sec-fetch-site").is_some()
                    && (fetch_meta("sec-fetch-user") != Some(b"?1")
                        || fetch_meta("sec-fetch-mode").is_some_and(|m| m != b"navigate"))
                {
                    return self.request_page(
                        StatusCode::FORBIDDEN,
                        "The answer must come from a click on the consent page.",
                    );
                }
                let sent = get("csrf").unwrap_or("");
                if !bool::from(sent.as_bytes().ct_eq(person.csrf.as_bytes())) {
                    return self.request_page(
                        StatusCode::FORBIDDEN,
                        "This form has expired: start signing in from the application again.",
                    );
                }
                if get("decision") != Some("allow") {
                    return fail("access_denied", "the person did not allow the application");
                }
            }
            None => {}
        }
        let (_, code) = kg_tokens::generate(&prefix(CODE_PREFIX));
        let now = self.now_ms();
        let record = CodeRecord {
            digest: self.pepper.digest(code.expose_secret()),
            client_id: client.id.clone(),
            redirect_uri: redirect.clone(),
            subject: person.holder.name.clone(),
            scope: granted.join(" "),
            resource,
            challenge: Some(challenge),
            nonce: nonce.map(str::to_owned),
            auth_time: now,
            expires: now + CODE_LIFETIME.whole_milliseconds() as i64,
            used: None,
            grant_id: None,
            token_id: Some(person.token_id.clone()),
        };
        if self.store.insert_code(&record).is_err() {
            return fail(
                "temporarily_unavailable",
                "the store cannot be written; try again",
            );
        }
        let mut pairs = vec![("code", code.expose_secret())];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", iss));
        back(&with_query(&redirect, &pairs))
    }

    /// The question put to a person before a public client gets a code: who asks, as whom,
    /// for what, and where the answer goes. The form carries the request's own parameters
    /// back to `/authorize`, with the session's CSRF value.
    fn consent_page(
        &self,
        client: &ClientRecord,
        person: &Person,
        granted: &[String],
        redirect: &str,
        q: &Form,
    ) -> Response<Body> {
        let Some(sign_in) = &self.sign_in else {
            return kg_http::response::empty(StatusCode::NOT_FOUND);
        };
        let action = format!("{}{AUTHORIZE}", issuer_path(&self.settings.issuer));
        let goes_to = redirect.split_once("://").map_or(redirect, |(_, rest)| {
            rest.split(['/', '?']).next().unwrap_or(rest)
        });
        let mut scopes = if granted.is_empty() {
            "no scopes".to_owned()
        } else {
            granted.join(", ")
        };
        if let Ok(Some(r)) = q.get("resource") {
            scopes.push_str(&format!(", for {r}"));
        }
        let mut b = String::with_capacity(2048);
        b.push_str(&format!(
            "<h1>Allow {name}?</h1>\n\
             <p class=\"sub\">Signed in as <strong>{who}</strong>.</p>\n\
             <p id=\"request\"><strong>{name}</strong> asks to act as you, with {scopes}.</p>\n\
             <p class=\"sub\">The answer goes to <code id=\"redirect\">{goes_to}</code>. \
             Allow only if you just started signing in to it.</p>\n\
             <form id=\"consent-form\" method=\"post\" action=\"{action}\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n",
            name = escape(&client.name),
            who = escape(&person.holder.name),
            scopes = escape(&scopes),
            goes_to = escape(goes_to),
            action = escape(&action),
            csrf = escape(&person.csrf),
        ));
        for k in AUTHORIZE_PARAMS {
            if let Ok(Some(v)) = q.get(k) {
                b.push_str(&format!(
                    "<input type=\"hidden\" name=\"{k}\" value=\"{}\">\n",
                    escape(v)
                ));
            }
        }
        b.push_str(
            "<button id=\"allow\" type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
             <button id=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n\
             </form>\n",
        );
        let mut resp =
            sign_in.page_leading_to(StatusCode::OK, "Allow access", &b, &csp_source(redirect));
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    /// `grant_type=authorization_code`.
    pub(crate) fn code_grant(
        &self,
        client: &ClientRecord,
        form: &Form,
    ) -> Result<Response<Body>, OAuthError> {
        let code = form
            .get("code")?
            .ok_or(bad("invalid_request", "code is missing"))?;
        let spent = bad("invalid_grant", "the code is unknown, expired or spent");
        kg_tokens::parse(code, &prefix(CODE_PREFIX)).map_err(|_| spent)?;
        let digest = self.pepper.digest(code);
        let now = self.now_ms();
        let c = match self
            .store
            .take_code(&digest, &client.id, now)
            .map_err(|_| SERVER_ERROR)?
        {
            CodeTake::Unknown => return Err(spent),
            CodeTake::Replayed(c) => {
                // RFC 6749 §4.1.2: a code used twice revokes what it granted.
                if c.client_id == client.id
                    && let Some(g) = &c.grant_id
                    && self.store.revoke_grant(g, now).unwrap_or(false)
                {
                    self.source.reload_revoked();
                    self.replayed("authorization_code_replayed", &client.id, g, &c.subject);
                }
                return Err(spent);
            }
            CodeTake::Fresh(c) => c,
        };
        if c.client_id != client.id || form.get("redirect_uri")? != Some(c.redirect_uri.as_str()) {
            return Err(spent);
        }
        let verifier = form.get("code_verifier")?;
        match (&c.challenge, verifier) {
            (Some(challenge), Some(v)) if valid_verifier(v) => {
                if !bool::from(s256(v).as_bytes().ct_eq(challenge.as_bytes())) {
                    return Err(bad("invalid_grant", "code_verifier does not match"));
                }
            }
            (Some(_), _) => {
                return Err(bad(
                    "invalid_grant",
                    "code_verifier is missing or malformed",
                ));
            }
            // RFC 9700 §2.1.1: a verifier for a code that had no challenge is a downgrade.
            (None, Some(_)) => return Err(bad("invalid_grant", "no challenge was sent")),
            (None, None) => {}
        }
        let holder = self.holder_of(c.token_id.as_deref()).ok_or(bad(
            "invalid_grant",
            "the person's sign-in token no longer stands",
        ))?;
        let grant = self.new_grant(
            client,
            &holder,
            c.token_id.clone(),
            &c.scope,
            c.resource.clone(),
            c.auth_time,
        );
        let (rt, first) = self.first_refresh(&grant);
        self.store
            .insert_grant(&grant, &first)
            .map_err(|_| SERVER_ERROR)?;
        let _ = self.store.set_code_grant(&digest, &grant.id);
        self.person_tokens(client, &grant, &grant.scope, &rt, c.nonce.as_deref())
    }

    /// A grant for `holder`'s sign-in: no scope their token lacks (OpenID's aside), and no
    /// longer than their token lives.
    fn new_grant(
        &self,
        client: &ClientRecord,
        holder: &kg_verifier::Holder,
        token_id: Option<String>,
        scope: &str,
        resource: Option<String>,
        auth_time: i64,
    ) -> GrantRecord {
        let now = self.now_ms();
        let asked: Vec<String> = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut expires = now + self.settings.refresh_lifetime.whole_milliseconds() as i64;
        if let Some(t) = holder.expires {
            expires = expires.min(crate::clients::millis(t));
        }
        GrantRecord {
            id: kg_jose::new_jti(),
            client_id: client.id.clone(),
            subject: holder.name.clone(),
            scope: within_holder(&asked, holder).join(" "),
            resource,
            auth_time,
            created: now,
            expires,
            revoked: None,
            token_id,
        }
    }

    fn first_refresh(&self, grant: &GrantRecord) -> (TokenSecret, RefreshRecord) {
        let (_, rt) = kg_tokens::generate(&prefix(REFRESH_PREFIX));
        let record = RefreshRecord {
            digest: self.pepper.digest(rt.expose_secret()),
            grant_id: grant.id.clone(),
            created: grant.created,
        };
        (rt, record)
    }

    /// The successor of refresh token `rt`: the same for the same `rt`, unknowable without
    /// the pepper.
    fn successor(&self, rt: &str) -> TokenSecret {
        let seed = self
            .pepper
            .digest(&format!("keygate refresh successor\n{rt}"));
        kg_tokens::derive(&prefix(REFRESH_PREFIX), &seed).1
    }

    /// `grant_type=refresh_token`.
    pub(crate) fn refresh_grant(
        &self,
        client: &ClientRecord,
        form: &Form,
    ) -> Result<Response<Body>, OAuthError> {
        let rt = form
            .get("refresh_token")?
            .ok_or(bad("invalid_request", "refresh_token is missing"))?;
        let dead = bad(
            "invalid_grant",
            "the refresh token is unknown, spent or revoked",
        );
        kg_tokens::parse(rt, &prefix(REFRESH_PREFIX)).map_err(|_| dead)?;
        let digest = self.pepper.digest(rt);
        // Whose it is, before anything is spent: another client's token changes nothing.
        let owner = self
            .store
            .refresh_grant(&digest)
            .map_err(|_| SERVER_ERROR)?
            .filter(|g| g.client_id == client.id)
            .ok_or(dead)?;
        // A grant stands only while the token its person signed in with does (one made
        // before schema 4 names none, and ends here too: its person signs in again).
        if self.holder_of(owner.token_id.as_deref()).is_none() {
            if self
                .store
                .revoke_grant(&owner.id, self.now_ms())
                .unwrap_or(false)
            {
                self.source.reload_revoked();
                self.audit(
                    "grant_revoked",
                    &[
                        ("client_id", &owner.client_id),
                        ("grant", &owner.id),
                        ("sub", &owner.subject),
                        ("action", "the person's sign-in token no longer stands"),
                    ],
                );
            }
            return Err(dead);
        }
        let granted: Vec<String> = owner.scope.split(' ').map(str::to_owned).collect();
        let scope = match form.get("scope")? {
            None => owner.scope.clone(),
            Some(asked) => {
                let narrowed = crate::provider::granted_scopes(&granted, Some(asked))?;
                narrowed.join(" ")
            }
        };
        let successor = self.successor(rt);
        let now = self.now_ms();
        let record = RefreshRecord {
            digest: self.pepper.digest(successor.expose_secret()),
            grant_id: owner.id.clone(),
            created: now,
        };
        let used = self
            .store
            .use_refresh(
                &digest,
                &record,
                now,
                REFRESH_RETRY.whole_milliseconds() as i64,
            )
            .map_err(|_| SERVER_ERROR)?;
        match used {
            RefreshUse::Rotated(g) | RefreshUse::Retried(g) => {
                self.person_tokens(client, &g, &scope, &successor, None)
            }
            RefreshUse::Reused(g) => {
                self.source.reload_revoked();
                self.replayed("refresh_token_reused", &client.id, &g.id, &g.subject);
                Err(dead)
            }
            RefreshUse::Ended | RefreshUse::Unknown => Err(dead),
        }
    }

    /// A spent code or refresh token came back and its grant was revoked, every refresh
    /// and access token of it: a warning in the server's log and a line in the audit log.
    fn replayed(&self, event: &'static str, client_id: &str, grant: &str, subject: &str) {
        let action = "grant revoked: every refresh and access token of it";
        kg_http::log::warn(
            event,
            &[
                ("client_id", client_id.into()),
                ("grant", grant.into()),
                ("subject", subject.into()),
                ("action", action.into()),
            ],
        );
        self.audit(
            event,
            &[
                ("client_id", client_id),
                ("grant", grant),
                ("sub", subject),
                ("action", action),
            ],
        );
    }

    /// The access token, refresh token and (for `openid`) ID token of a person's grant.
    fn person_tokens(
        &self,
        client: &ClientRecord,
        grant: &GrantRecord,
        scope: &str,
        rt: &TokenSecret,
        nonce: Option<&str>,
    ) -> Result<Response<Body>, OAuthError> {
        let now = self.verifier.clock().now();
        // An access token never outlives its grant: once the grant has ended and is swept
        // from the store, its revocation is forgotten with it, so nothing of it may be live.
        let ttl = self
            .settings
            .people_token_lifetime
            .min(time::Duration::milliseconds(grant.expires - millis(now)));
        let iss = &self.settings.issuer;
        let claims = AccessClaims {
            iss: iss.clone(),
            sub: grant.subject.clone(),
            aud: Audience::One(grant.resource.clone().unwrap_or_else(|| iss.clone())),
            client_id: client.id.clone(),
            exp: (now + ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            nbf: None,
            jti: kg_jose::new_jti(),
            scope: (!scope.is_empty()).then(|| scope.to_owned()),
            gid: Some(grant.id.clone()),
            tid: grant.token_id.clone(),
        };
        let at = self.sign(&claims)?;
        let id_token = if scope.split(' ').any(|s| s == "openid") {
            let loaded = self.source.loaded();
            let key = loaded.set.signer(Alg::Rs256).ok_or(SERVER_ERROR)?;
            let id = IdClaims {
                iss,
                sub: &grant.subject,
                aud: &client.id,
                azp: &client.id,
                exp: claims.exp,
                iat: claims.iat,
                auth_time: grant.auth_time / 1000,
                nonce,
                name: &grant.subject,
            };
            Some(kg_jose::sign(key, "JWT", &id))
        } else {
            None
        };
        let body = serde_json::to_vec(&PersonTokens {
            access_token: &at,
            token_type: "Bearer",
            expires_in: ttl.whole_seconds(),
            scope,
            refresh_token: rt.expose_secret(),
            id_token: id_token.as_deref(),
        })
        .expect("a token response serializes");
        Ok(json(StatusCode::OK, Bytes::from(body), "no-store"))
    }

    /// Revokes the grant of refresh token `token` if it is one of `caller`'s; whether `token`
    /// was a refresh token at all.
    pub(crate) fn revoke_refresh(
        &self,
        caller: &ClientRecord,
        token: &str,
    ) -> Result<bool, OAuthError> {
        if kg_tokens::parse(token, &prefix(REFRESH_PREFIX)).is_err() {
            return Ok(false);
        }
        let digest = self.pepper.digest(token);
        if let Some(g) = self
            .store
            .refresh_grant(&digest)
            .map_err(|_| SERVER_ERROR)?
            && g.client_id == caller.id
        {
            self.store
                .revoke_grant(&g.id, self.now_ms())
                .map_err(|_| SERVER_ERROR)?;
            self.source.reload_revoked();
            self.audit(
                "grant_revoked",
                &[
                    ("client_id", &caller.id),
                    ("grant", &g.id),
                    ("sub", &g.subject),
                ],
            );
        }
        Ok(true)
    }

    /// RFC 7662 for a refresh token: its grant, while it stands.
    pub(crate) fn introspect_refresh(&self, token: &str) -> Option<serde_json::Value> {
        kg_tokens::parse(token, &prefix(REFRESH_PREFIX)).ok()?;
        let g = self
            .store
            .refresh_grant(&self.pepper.digest(token))
            .ok()??;
        // Active only while the person's sign-in token stands, as a refresh would be.
        self.holder_of(g.token_id.as_deref())?;
        let now = self.now_ms();
        (g.revoked.is_none() && now < g.expires).then(|| {
            serde_json::json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": g.client_id,
                "sub": g.subject,
                "scope": g.scope,
                "exp": g.expires / 1000,
                "iss": self.settings.issuer,
            })
        })
    }

    /// `GET|POST /userinfo` with a bearer access token (OpenID Connect Core §5.3).
    pub(crate) fn userinfo(&self, req: &Request<Incoming>) -> Response<Body> {
        let challenge = |status: StatusCode, value: &'static str| {
            let mut r = kg_http::response::empty(status);
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            r
        };
        if !matches!(*req.method(), Method::GET | Method::POST) {
            return kg_http::response::method_not_allowed("GET, POST");
        }
        let token = match kg_verifier::Credential::from_headers(req.headers()) {
            kg_verifier::Credential::Bearer(t) => t,
            kg_verifier::Credential::None => return challenge(StatusCode::UNAUTHORIZED, "Bearer"),
            _ => {
                return challenge(StatusCode::UNAUTHORIZED, "Bearer error=\"invalid_token\"");
            }
        };
        let Some(v) = self.verifier.inspect_jwt(token) else {
            return challenge(StatusCode::UNAUTHORIZED, "Bearer error=\"invalid_token\"");
        };
        // `scopes` leaves OpenID's own out (no scope rule may count them): the claim has it.
        if !v
            .claims
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
        {
            return challenge(
                StatusCode::FORBIDDEN,
                "Bearer error=\"insufficient_scope\", scope=\"openid\"",
            );
        }
        let body = serde_json::json!({ "sub": v.claims.sub, "name": v.claims.sub });
        json(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(&body).expect("JSON serializes")),
            "no-store",
        )
    }
}

/// The path of an issuer URL.
pub(crate) fn issuer_path(issuer: &str) -> &str {
    let after = issuer.split_once("://").map_or("", |(_, rest)| rest);
    after.find('/').map_or("", |i| &after[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_base64url_of_sha256_and_verifiers_follow_rfc_7636() {
        // As Python's hashlib and base64 compute it (openid-client agrees: tests/it).
        assert_eq!(
            s256("dBjftJeZ4CVP-mJ0kZ3lTjPfF9Dmbf6WpR9t8qw8hNE"),
            "jqgPIJOZ05cRojB12TPbbZDTt39SRRq8wEPBde2f0IQ"
        );
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn people_get_their_clients_scopes_and_openids_only() {
        let allowed = vec!["read".to_owned()];
        assert_eq!(
            people_scopes(&allowed, Some("openid read offline_access")).unwrap(),
            ["openid", "read", "offline_access"]
        );
        assert!(people_scopes(&allowed, Some("openid admin")).is_none());
        assert!(people_scopes(&allowed, None).unwrap().is_empty());
    }
}
