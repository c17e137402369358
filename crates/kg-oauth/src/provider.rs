//! The authorization server's endpoints.
//!
//! Paths are relative to the issuer URL's path (empty in verifying mode, `/.keygate` in
//! proxy mode, where the rest of the origin belongs to the upstream):
//!
//! | path | what |
//! |---|---|
//! | `/.well-known/openid-configuration` | OpenID discovery (OIDC appends to the issuer) |
//! | `/.well-known/oauth-authorization-server` | RFC 8414 metadata (also at the path-inserted form the router sends here) |
//! | `/oauth/jwks` | the public key set, `Cache-Control` tied to the rotation schedule |
//! | `/oauth/token` | RFC 6749 token endpoint: `client_credentials` |
//! | `/oauth/introspect` | RFC 7662, the caller authenticated as a confidential client |
//! | `/oauth/revoke` | RFC 7009 |

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use base64::Engine as _;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use kg_http::Body;
use kg_jose::{AccessClaims, Alg, Audience, PublicKeys, TYP_ACCESS};
use kg_store::{ClientStore, GrantStore};
use kg_tokens::Pepper;
use kg_verifier::Verifier;
use kg_verifier::jwt::{JwtSource, Jwts};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::clients::{self, AuthFailure, Grant};
use crate::keyring::{KeyRing, Loaded};

/// The endpoints' paths, relative to the issuer's path.
pub const OIDC_DISCOVERY: &str = "/.well-known/openid-configuration";
/// RFC 8414's well-known name.
pub const AS_METADATA: &str = "/.well-known/oauth-authorization-server";
/// The JWKS.
pub const JWKS: &str = "/oauth/jwks";
/// The token endpoint.
pub const TOKEN: &str = "/oauth/token";
/// Introspection.
pub const INTROSPECT: &str = "/oauth/introspect";
/// Revocation.
pub const REVOKE: &str = "/oauth/revoke";
/// The authorization endpoint (a browser's).
pub const AUTHORIZE: &str = "/oauth/authorize";
/// RFC 8628's device authorization endpoint.
pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
/// The page where a person enters a device's user code.
pub const DEVICE: &str = "/oauth/device";
/// OpenID Connect userinfo.
pub const USERINFO: &str = "/oauth/userinfo";

/// What the authorization server keeps in the store: clients, and what people's sign-ins
/// grant. Any store with both traits is one.
pub trait Store: ClientStore + GrantStore {}
impl<T: ClientStore + GrantStore + ?Sized> Store for T {}

/// How often the key set's `current` link is looked at for a change made elsewhere.
const KEYS_CHECK: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a token naming an unknown `kid` may make the key set be read again: anyone can
/// send one, before any signature is checked, so the reads it causes are bounded.
const KEYS_FORCED: std::time::Duration = std::time::Duration::from_millis(100);
/// How often the store is asked whether another process revoked something.
const REVOCATIONS_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// What the provider is told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer URL, without a trailing slash.
    pub issuer: String,
    /// Lifetime of a client-credentials access token.
    pub client_token_lifetime: Duration,
    /// Lifetime of a person's access token (and ID token).
    pub people_token_lifetime: Duration,
    /// How long a sign-in's refresh tokens work, however often they rotate.
    pub refresh_lifetime: Duration,
    /// The algorithm access tokens are signed with.
    pub signing_alg: Alg,
    /// Where the key set lives and its schedule.
    pub keys: KeyRing,
}

/// The authorization server.
pub struct Provider {
    pub(crate) settings: Settings,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) pepper: Pepper,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) source: Arc<Source>,
    /// Sign-in, which authenticates people for `/authorize` and the device page.
    pub(crate) sign_in: Option<Arc<kg_login::SignIn>>,
    /// Failed user codes on the device page, per client address.
    pub(crate) user_codes: Option<kg_http::limiter::Limiter>,
    /// Clients with their secrets, as last read; emptied whenever another process (tokenctl)
    /// has committed to the store, which the store's change counter tells at the cost of one
    /// pragma. Spares the token endpoint two queries per request.
    clients_cache: Mutex<ClientCache>,
    /// Identity assertions signed lately, by person, upstream and scopes.
    assertions: Mutex<std::collections::HashMap<AssertionKey, (String, i64)>>,
    metadata: Bytes,
    jwks_max_age: i64,
    /// When the store was last swept of what has ended (Unix milliseconds).
    swept: std::sync::atomic::AtomicI64,
}

/// How often the store is swept of expired codes, grants and revoked tokens.
const SWEEP_EVERY_MS: i64 = 10 * 60 * 1000;

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// Keys and revocations, as the verifier asks for them.
pub(crate) struct Source {
    ring: KeyRing,
    keys: RwLock<Arc<Loaded>>,
    keys_checked: Mutex<Instant>,
    store: Arc<dyn Store>,
    revoked: RwLock<Arc<Revoked>>,
    /// When the store was last asked, and the change counter it gave.
    revoked_checked: Mutex<(Instant, i64)>,
    clock: kg_verifier::Clock,
}

#[derive(Default)]
struct ClientCache {
    version: i64,
    map: std::collections::HashMap<String, Arc<clients::Loaded>>,
}

/// The explicit type of identity assertions (RFC 8725 §3.11), so no verifier can take one
/// for an access or ID token.
pub const TYP_IDENTITY: &str = "kg-identity+jwt";
/// How long an identity assertion is valid.
pub const ASSERTION_LIFETIME: Duration = Duration::seconds(60);

/// An identity assertion's person, upstream and scopes.
/// Person, upstream, scopes and token id: an assertion says all four.
type AssertionKey = (String, String, String, String);

/// Most clients cached; more are read from the store each time.
const CLIENTS_CACHED: usize = 4096;

#[derive(Default)]
struct Revoked {
    clients: std::collections::HashSet<String>,
    tokens: std::collections::HashSet<String>,
    grants: std::collections::HashSet<String>,
}

impl Source {
    pub(crate) fn loaded(&self) -> Arc<Loaded> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Picks up a key set published elsewhere, and rotates when due.
    pub(crate) fn refresh_keys(&self, force: bool) {
        {
            let mut checked = self.keys_checked.lock().unwrap_or_else(|e| e.into_inner());
            if checked.elapsed() < if force { KEYS_FORCED } else { KEYS_CHECK } {
                return;
            }
            *checked = Instant::now();
        }
        let now = self.clock.now();
        let current = self.loaded();
        let due = current
            .set
            .next_due(self.ring.every)
            .is_none_or(|t| now >= t)
            || current.set.keys().any(
                |k| matches!(k.info().state, kg_jose::KeyState::Previous { until } if until <= now),
            );
        let changed = self.ring.current_generation() != Some(current.generation);
        if !due && !changed {
            return;
        }
        let next = if due {
            self.ring.ensure(now)
        } else {
            self.ring
                .load()
                .and_then(|l| l.ok_or_else(|| missing(&self.ring)))
        };
        match next {
            Ok(l) => *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(l),
            Err(e) => kg_http::log::error(
                "signing_keys_not_reloaded",
                &[("error", kg_http::log::Value::Str(&kg_http::error_chain(&e)))],
            ),
        }
    }

    fn revoked(&self) -> Arc<Revoked> {
        let stale = {
            let mut checked = self
                .revoked_checked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if checked.0.elapsed() < REVOCATIONS_CHECK {
                None
            } else {
                checked.0 = Instant::now();
                match self.store.changes() {
                    Ok(v) if v != checked.1 => {
                        checked.1 = v;
                        Some(())
                    }
                    _ => None,
                }
            }
        };
        if stale.is_some() {
            self.reload_revoked();
        }
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn reload_revoked(&self) {
        // A token is accepted up to SKEW past its `exp`: its revocation is kept as long.
        let now = self.clock.now() - time::Duration::seconds(kg_jose::SKEW);
        let read = self
            .store
            .revocations(now.unix_timestamp())
            .and_then(|r| Ok((r, self.store.revoked_grants(crate::clients::millis(now))?)));
        match read {
            Ok((r, grants)) => {
                *self.revoked.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Revoked {
                    clients: r.clients.into_iter().collect(),
                    tokens: r.tokens.into_iter().collect(),
                    grants: grants.into_iter().collect(),
                })
            }
            Err(e) => kg_http::log::error(
                "revocations_not_read",
                &[("error", kg_http::log::Value::Str(&kg_http::error_chain(&e)))],
            ),
        }
    }
}

fn missing(ring: &KeyRing) -> crate::keyring::KeyError {
    crate::keyring::KeyError::Fs(kg_fs::Error::Damaged {
        path: ring.dir.clone(),
        reason: "the signing keys were removed".into(),
    })
}

impl JwtSource for Source {
    fn keys(&self, refresh: bool) -> Arc<PublicKeys> {
        self.refresh_keys(refresh);
        Arc::clone(&self.loaded().public)
    }

    fn revoked(&self, claims: &AccessClaims) -> bool {
        let r = Source::revoked(self);
        r.clients.contains(&claims.client_id)
            || r.tokens.contains(&claims.jti)
            || claims.gid.as_ref().is_some_and(|g| r.grants.contains(g))
    }
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
    /// 401 `invalid_client` after Basic authentication carries `WWW-Authenticate: Basic`.
    basic: bool,
}

pub(crate) const fn bad(code: &'static str, description: &'static str) -> OAuthError {
    OAuthError {
        status: StatusCode::BAD_REQUEST,
        code,
        description,
        basic: false,
    }
}

pub(crate) const INVALID_CLIENT: OAuthError = OAuthError {
    status: StatusCode::UNAUTHORIZED,
    code: "invalid_client",
    description: "client authentication failed",
    basic: false,
};

pub(crate) const SERVER_ERROR: OAuthError = OAuthError {
    status: StatusCode::SERVICE_UNAVAILABLE,
    code: "temporarily_unavailable",
    description: "the store cannot be read; try again",
    basic: false,
};

/// A form's fields by name; a repeated field is an error (RFC 6749 §3.2).
pub(crate) struct Form {
    fields: Vec<kg_login::form::Field>,
}

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        let fields = kg_login::form::fields(body);
        for (i, (name, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(n, _)| n == name) {
                return Err(bad(
                    "invalid_request",
                    "a parameter is repeated; each may appear once",
                ));
            }
        }
        Ok(Form { fields })
    }

    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        match self
            .fields
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
        {
            None => Ok(None),
            Some((_, v)) => std::str::from_utf8(v)
                .map(|s| (!s.is_empty()).then_some(s))
                .map_err(|_| bad("invalid_request", "a parameter is not UTF-8")),
        }
    }
}

/// The client's credentials as presented: from `Authorization: Basic` or the form.
struct Presented {
    id: String,
    secret: Option<Zeroizing<String>>,
    basic: bool,
}

/// RFC 6749 §2.3.1: Basic carries the form-urlencoded id and secret, so both are decoded
/// after base64 (a secret with `:` or `%` in it would break otherwise; oidc-provider's FAQ
/// lists this as the most common client bug).
fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented, OAuthError> {
    let in_form = (form.get("client_id")?, form.get("client_secret")?);
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    let basic = match (auth.next(), auth.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(bad("invalid_request", "more than one Authorization header"));
        }
        (Some(v), None) => {
            let v = v.as_bytes();
            if v.len() > 6 && v[..6].eq_ignore_ascii_case(b"basic ") {
                Some(&v[6..])
            } else {
                return Err(bad(
                    "invalid_request",
                    "only Basic client authentication is accepted in Authorization",
                ));
            }
        }
    };
    match (basic, in_form) {
        (Some(_), (_, Some(_))) => Err(bad(
            "invalid_request",
            "the client authenticated twice: use Basic or client_secret, not both",
        )),
        (Some(b64), (form_id, None)) => {
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim_ascii())
                    .map_err(|_| OAuthError {
                        basic: true,
                        ..INVALID_CLIENT
                    })?,
            );
            let colon = decoded.iter().position(|&b| b == b':').ok_or(OAuthError {
                basic: true,
                ..INVALID_CLIENT
            })?;
            let decode = |part: &[u8]| {
                let mut out = Zeroizing::new(Vec::with_capacity(part.len()));
                kg_login::form::percent_decode_into(part, &mut out);
                String::from_utf8(out.to_vec()).map(Zeroizing::new)
            };
            let id = decode(&decoded[..colon]).map_err(|_| INVALID_CLIENT)?;
            let secret = decode(&decoded[colon + 1..]).map_err(|_| INVALID_CLIENT)?;
            if form_id.is_some_and(|f| f != id.as_str()) {
                return Err(bad(
                    "invalid_request",
                    "client_id differs from the one authenticated",
                ));
            }
            Ok(Presented {
                id: id.to_string(),
                secret: (!secret.is_empty()).then_some(secret),
                basic: true,
            })
        }
        (None, (Some(id), secret)) => Ok(Presented {
            id: id.to_owned(),
            secret: secret.map(|s| Zeroizing::new(s.to_owned())),
            basic: false,
        }),
        (None, (None, _)) => Err(INVALID_CLIENT),
    }
}

/// The client id a request to the token, introspection or revocation endpoint presents
/// (Basic or form), from its headers and form body: the parser those endpoints run on
/// outside bytes, for the fuzz target `oauth_request`. The error is the `error` code.
pub fn presented_client(headers: &HeaderMap, body: &[u8]) -> Result<String, &'static str> {
    let form = Form::parse(body).map_err(|e| e.code)?;
    let p = presented(headers, &form).map_err(|e| e.code)?;
    let _ = form.get("grant_type").map_err(|e| e.code)?;
    Ok(p.id)
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

impl Provider {
    /// Sets the provider up: loads (or makes) the key set, and teaches `verifier` to accept
    /// the access tokens it issues.
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        pepper: Pepper,
        verifier: Arc<Verifier>,
        sign_in: Option<Arc<kg_login::SignIn>>,
    ) -> Result<Provider, crate::keyring::KeyError> {
        let clock = verifier.clock().clone();
        let loaded = settings.keys.ensure(clock.now())?;
        let source = Arc::new(Source {
            ring: settings.keys.clone(),
            keys: RwLock::new(Arc::new(loaded)),
            keys_checked: Mutex::new(Instant::now()),
            store: Arc::clone(&store),
            revoked: RwLock::new(Arc::new(Revoked::default())),
            revoked_checked: Mutex::new((Instant::now(), i64::MIN)),
            clock,
        });
        source.reload_revoked();
        if let Ok(v) = store.changes() {
            source
                .revoked_checked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .1 = v;
        }
        verifier.set_jwts(Jwts::new(
            settings.issuer.clone(),
            vec![settings.issuer.clone()],
            Arc::clone(&source) as Arc<dyn JwtSource>,
        ));
        let metadata = Bytes::from(metadata(&settings));
        // A cache may hold the key set this long: the next key is published a whole
        // rotation period before it signs, so any age below that is safe; a tenth of it,
        // at most an hour, lets an emergency `tokenctl keys rotate` reach caches soon.
        let jwks_max_age = (settings.keys.every.whole_seconds() / 10).clamp(60, 3600);
        Ok(Provider {
            settings,
            store,
            pepper,
            verifier,
            source,
            sign_in,
            user_codes: kg_http::limiter::Limiter::new(10, std::time::Duration::from_secs(6)),
            assertions: Mutex::new(std::collections::HashMap::new()),
            clients_cache: Mutex::new(ClientCache {
                version: i64::MIN,
                ..ClientCache::default()
            }),
            metadata,
            jwks_max_age,
            swept: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }

    /// Forgets, at most once per [`SWEEP_EVERY_MS`], the codes, device authorizations and
    /// grants that have ended and the revoked tokens that have expired: the tables stay the
    /// size of what is alive. One request in ten minutes pays a few `DELETE`s; an error
    /// leaves the rows for the next sweep.
    pub(crate) fn sweep_if_due(&self, now_ms: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.swept.load(Relaxed);
        if now_ms.saturating_sub(last) < SWEEP_EVERY_MS
            || self
                .swept
                .compare_exchange(last, now_ms, Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        // Kept SKEW longer than they live, as the revocations are read (`reload_revoked`).
        let then = now_ms - kg_jose::SKEW * 1000;
        let grants = self.store.sweep_grants(then);
        let tokens = self.store.sweep_revoked_tokens(then / 1000);
        if let Err(e) = grants.as_ref().and(tokens.as_ref()) {
            kg_http::log::warn(
                "store_not_swept",
                &[("error", e.to_string().as_str().into())],
            );
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// The issuer URL's path (empty, or `/.keygate` in proxy mode): the endpoints' paths
    /// are relative to it.
    pub fn path(&self) -> &str {
        let after = self
            .settings
            .issuer
            .split_once("://")
            .map_or("", |(_, rest)| rest);
        after.find('/').map_or("", |i| &after[i..])
    }

    /// Whether `path` (relative to the issuer's path) is one of the endpoints.
    pub fn serves(path: &str) -> bool {
        matches!(
            path,
            OIDC_DISCOVERY
                | AS_METADATA
                | JWKS
                | TOKEN
                | INTROSPECT
                | REVOKE
                | AUTHORIZE
                | DEVICE_AUTHORIZATION
                | DEVICE
                | USERINFO
        )
    }

    /// Answers a request for `path` (relative to the issuer's path) from `peer`.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        path: &str,
        peer: std::net::IpAddr,
    ) -> Response<Body> {
        let method = req.method().clone();
        match path {
            AUTHORIZE => self.authorize(req, peer).await,
            DEVICE => self.device_page(req, peer).await,
            USERINFO => self.userinfo(&req),
            OIDC_DISCOVERY | AS_METADATA => get_only(&method, || {
                json(
                    StatusCode::OK,
                    self.metadata.clone(),
                    "public, max-age=3600",
                )
            }),
            JWKS => get_only(&method, || {
                self.source.refresh_keys(false);
                let jwks = self.source.loaded().jwks.clone();
                json(
                    StatusCode::OK,
                    Bytes::from(jwks),
                    &format!("public, max-age={}", self.jwks_max_age),
                )
            }),
            TOKEN | INTROSPECT | REVOKE | DEVICE_AUTHORIZATION => {
                if method != Method::POST {
                    return kg_http::response::method_not_allowed("POST");
                }
                let (parts, body) = req.into_parts();
                if !kg_login::form::is_form(&parts.headers) {
                    kg_login::form::drain(body).await;
                    return error(bad(
                        "invalid_request",
                        "the body must be application/x-www-form-urlencoded",
                    ));
                }
                let body = match kg_login::form::read_form(&parts.headers, body).await {
                    Ok(b) => b,
                    Err(status) => return kg_http::response::empty(status),
                };
                let result = Form::parse(&body).and_then(|form| {
                    let r = match path {
                        TOKEN => self.token(&parts.headers, &form),
                        INTROSPECT => self.introspect(&parts.headers, &form),
                        DEVICE_AUTHORIZATION => self.device_authorization(&parts.headers, &form),
                        _ => self.revoke(&parts.headers, &form),
                    };
                    if r.as_ref().is_err_and(|e| e.code == INVALID_CLIENT.code) {
                        self.client_refused(&parts.headers, &form, peer, path);
                    }
                    r
                });
                result.unwrap_or_else(error)
            }
            _ => kg_http::response::empty(StatusCode::NOT_FOUND),
        }
    }

    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        form: &Form,
    ) -> Result<kg_store::ClientRecord, OAuthError> {
        let p = presented(headers, form)?;
        let now = self.verifier.clock().now();
        let secret = p.secret.as_ref().map(|s| s.as_str());
        let loaded = self.cached_client(&p.id).map_err(|_| SERVER_ERROR)?;
        match clients::authenticate_loaded(loaded.as_deref(), &self.pepper, secret, now) {
            Ok(c) => Ok(c.clone()),
            Err(AuthFailure::Unknown | AuthFailure::WrongSecret | AuthFailure::WrongMethod) => {
                Err(OAuthError {
                    basic: p.basic,
                    ..INVALID_CLIENT
                })
            }
        }
    }

    /// The client `id` with its secrets, from the cache while no other process changed
    /// the store.
    fn cached_client(&self, id: &str) -> Result<Option<Arc<clients::Loaded>>, kg_store::Error> {
        let version = self.store.changes()?;
        {
            let mut cache = self.clients_cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.version != version {
                cache.map.clear();
                cache.version = version;
            }
            if let Some(hit) = cache.map.get(id) {
                return Ok(Some(Arc::clone(hit)));
            }
        }
        let Some(loaded) = clients::load(self.clients(), id)? else {
            return Ok(None);
        };
        let loaded = Arc::new(loaded);
        let mut cache = self.clients_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.version == version && cache.map.len() < CLIENTS_CACHED {
            cache.map.insert(id.to_owned(), Arc::clone(&loaded));
        }
        Ok(Some(loaded))
    }

    fn token(&self, headers: &HeaderMap, form: &Form) -> Result<Response<Body>, OAuthError> {
        let grant = form
            .get("grant_type")?
            .ok_or(bad("invalid_request", "grant_type is missing"))?;
        let client = self.authenticate(headers, form)?;
        self.sweep_if_due(crate::clients::millis(self.verifier.clock().now()));
        let Some(grant) = Grant::parse(grant) else {
            return Err(bad(
                "unsupported_grant_type",
                "this server issues tokens for client_credentials, authorization_code, \
                 refresh_token and device_code",
            ));
        };
        if !client.grants.iter().any(|g| g == grant.as_str()) {
            return Err(bad(
                "unauthorized_client",
                "the client is not registered for this grant",
            ));
        }
        match grant {
            Grant::ClientCredentials => self.client_credentials(&client, form),
            Grant::AuthorizationCode => self.code_grant(&client, form),
            Grant::RefreshToken => self.refresh_grant(&client, form),
            Grant::DeviceCode => self.device_grant(&client, form),
        }
    }

    fn client_credentials(
        &self,
        client: &kg_store::ClientRecord,
        form: &Form,
    ) -> Result<Response<Body>, OAuthError> {
        let scopes = granted_scopes(&client.scopes, form.get("scope")?)?;
        let audience = match form.get("resource")? {
            None => self.settings.issuer.clone(),
            Some(r) => check_resource(r)?.to_owned(),
        };
        let now = self.verifier.clock().now();
        let ttl = self.settings.client_token_lifetime;
        let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: client.id.clone(),
            aud: Audience::One(audience),
            client_id: client.id.clone(),
            exp: (now + ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            nbf: None,
            jti: kg_jose::new_jti(),
            scope,
            gid: None,
            tid: None,
        };
        let token = self.sign(&claims)?;
        let body = serde_json::to_vec(&TokenResponse {
            access_token: &token,
            token_type: "Bearer",
            expires_in: ttl.whole_seconds(),
            scope: claims.scope.as_deref(),
        })
        .expect("a token response serializes");
        // RFC 6749 §5.1: a response with a token is never cached.
        Ok(json(StatusCode::OK, Bytes::from(body), "no-store"))
    }

    pub(crate) fn sign(&self, claims: &AccessClaims) -> Result<String, OAuthError> {
        self.source.refresh_keys(false);
        let loaded = self.source.loaded();
        let key = loaded
            .set
            .signer(self.settings.signing_alg)
            .ok_or(SERVER_ERROR)?;
        let token = kg_jose::sign(key, TYP_ACCESS, claims);
        // Every access token passes here: one audit line says who got which, and for what.
        self.audit(
            "token_issued",
            &[
                ("client_id", &claims.client_id),
                ("sub", &claims.sub),
                ("jti", &claims.jti),
                ("aud", claims.aud.first().unwrap_or_default()),
                ("scope", claims.scope.as_deref().unwrap_or_default()),
                ("grant", claims.gid.as_deref().unwrap_or_default()),
            ],
        );
        Ok(token)
    }

    /// The audit line of a refused client authentication: which client was claimed (only
    /// when it looks like a client id, so a secret pasted as an id is never written), from
    /// where, at which endpoint.
    fn client_refused(&self, headers: &HeaderMap, form: &Form, peer: std::net::IpAddr, path: &str) {
        let claimed = presented(headers, form).map(|p| p.id).unwrap_or_default();
        let shown = claimed.len() <= 64
            && claimed.starts_with(clients::CLIENT_ID_PREFIX)
            && claimed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let address = self.verifier.client(peer, headers).to_string();
        self.audit(
            "client_refused",
            &[
                ("client_id", if shown { &claimed } else { "(not shown)" }),
                ("client", &address),
                ("endpoint", path),
            ],
        );
    }

    /// One audit line for the authorization server's `event`, its fields strings.
    pub(crate) fn audit(&self, event: &'static str, fields: &[(&'static str, &str)]) {
        let fields: Vec<_> = fields
            .iter()
            .map(|(k, v)| (*k, kg_http::audit::Field::Str(v.as_bytes())))
            .collect();
        self.verifier.audit().log_event(event, &fields);
    }

    fn introspect(&self, headers: &HeaderMap, form: &Form) -> Result<Response<Body>, OAuthError> {
        let caller = self.authenticate(headers, form)?;
        if caller.public {
            return Err(INVALID_CLIENT);
        }
        let token = form
            .get("token")?
            .ok_or(bad("invalid_request", "token is missing"))?;
        let body = match self.verifier.inspect_jwt(token) {
            Some(v) => {
                let c = &v.claims;
                serde_json::json!({
                    "active": true,
                    "token_type": "Bearer",
                    "scope": c.scope,
                    "client_id": c.client_id,
                    "sub": c.sub,
                    "aud": c.aud,
                    "iss": c.iss,
                    "exp": c.exp,
                    "iat": c.iat,
                    "jti": c.jti,
                })
            }
            // RFC 7662 §2.2: an inactive token is `{"active": false}` and nothing more.
            None => self
                .introspect_refresh(token)
                .unwrap_or_else(|| serde_json::json!({ "active": false })),
        };
        Ok(json(
            StatusCode::OK,
            Bytes::from(serde_json::to_vec(&body).expect("JSON serializes")),
            "no-store",
        ))
    }

    fn revoke(&self, headers: &HeaderMap, form: &Form) -> Result<Response<Body>, OAuthError> {
        let caller = self.authenticate(headers, form)?;
        let token = form
            .get("token")?
            .ok_or(bad("invalid_request", "token is missing"))?;
        // RFC 7009 §2.2: 200 whether or not the token was known, so the answer tells
        // nothing; only the client a token was issued to can revoke it. A refresh token
        // takes its whole grant with it, access tokens included (§2.1).
        if self.revoke_refresh(&caller, token)? {
        } else if let Some(v) = self.verifier.inspect_jwt(token)
            && v.claims.client_id == caller.id
        {
            self.store
                .revoke_token(&v.claims.jti, &caller.id, v.claims.exp)
                .map_err(|_| SERVER_ERROR)?;
            self.source.reload_revoked();
            if let Some(j) = self.verifier.jwts() {
                j.forget(token);
            }
            self.audit(
                "token_revoked",
                &[("client_id", &caller.id), ("jti", &v.claims.jti)],
            );
        }
        let mut resp = kg_http::response::empty(StatusCode::OK);
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(resp)
    }

    /// A signed identity assertion for an upstream (`typ` [`TYP_IDENTITY`]): who a request
    /// the proxy let in is, for `audience`, valid [`ASSERTION_LIFETIME`]. Signing costs about
    /// 20 µs, so one assertion serves the same person and upstream until half its life is
    /// gone.
    pub fn identity_assertion(
        &self,
        subject: &str,
        token_id: &str,
        scopes: &[String],
        audience: &str,
    ) -> Option<String> {
        let now = self.verifier.clock().now().unix_timestamp();
        let key = (
            subject.to_owned(),
            audience.to_owned(),
            scopes.join(" "),
            token_id.to_owned(),
        );
        {
            let cache = self.assertions.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((jwt, exp)) = cache.get(&key)
                && exp - now > ASSERTION_LIFETIME.whole_seconds() / 2
            {
                return Some(jwt.clone());
            }
        }
        #[derive(Serialize)]
        struct Assertion<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            iat: i64,
            exp: i64,
            jti: String,
            token_id: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            scope: &'a str,
        }
        let exp = now + ASSERTION_LIFETIME.whole_seconds();
        let claims = Assertion {
            iss: &self.settings.issuer,
            sub: subject,
            aud: audience,
            iat: now,
            exp,
            jti: kg_jose::new_jti(),
            token_id,
            scope: &key.2,
        };
        self.source.refresh_keys(false);
        let loaded = self.source.loaded();
        let jwt = kg_jose::sign(
            loaded.set.signer(self.settings.signing_alg)?,
            TYP_IDENTITY,
            &claims,
        );
        let mut cache = self.assertions.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CLIENTS_CACHED {
            cache.retain(|_, (_, e)| *e > now);
            if cache.len() >= CLIENTS_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (jwt.clone(), exp));
        Some(jwt)
    }

    /// The store as the clients' module sees it.
    pub(crate) fn clients(&self) -> &dyn ClientStore {
        &*self.store
    }

    /// Rotates what is due and picks up key sets published elsewhere (called now and then
    /// by the server, so rotation does not wait for a request).
    pub fn tick(&self) {
        self.source.refresh_keys(false);
    }

    /// When the key set was last published, for `check`: its generation.
    pub fn key_generation(&self) -> u64 {
        self.source.loaded().generation
    }

    /// The current time by the verifier's clock, as tokens are stamped.
    pub fn now(&self) -> OffsetDateTime {
        self.verifier.clock().now()
    }
}

/// The scopes to grant: those asked for (each one the client's), or all the client's.
pub(crate) fn granted_scopes(
    allowed: &[String],
    asked: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    let Some(asked) = asked else {
        return Ok(allowed.to_vec());
    };
    let mut out: Vec<String> = Vec::new();
    for s in asked.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(bad(
                "invalid_scope",
                "a requested scope is not one the client may be given",
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub(crate) fn check_resource(r: &str) -> Result<&str, OAuthError> {
    let ok = r.len() <= 2000
        && !r.contains('#')
        && r.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
                && !rest.is_empty()
        })
        && !r.bytes().any(|b| b <= b' ' || b == 0x7f);
    if ok {
        Ok(r)
    } else {
        Err(bad(
            "invalid_target",
            "resource must be an absolute URI without a fragment",
        ))
    }
}

pub(crate) fn get_only(method: &Method, f: impl FnOnce() -> Response<Body>) -> Response<Body> {
    if method == Method::GET || method == Method::HEAD {
        f()
    } else {
        kg_http::response::method_not_allowed("GET, HEAD")
    }
}

pub(crate) fn json(status: StatusCode, body: Bytes, cache: &str) -> Response<Body> {
    let mut resp = Response::new(http_body_util::Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if cache == "no-store" {
        // RFC 6749 §5.1, for HTTP/1.0 caches.
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    resp
}

pub(crate) fn error(e: OAuthError) -> Response<Body> {
    let body = serde_json::to_vec(&serde_json::json!({
        "error": e.code,
        "error_description": e.description,
    }))
    .expect("JSON serializes");
    let mut resp = json(e.status, Bytes::from(body), "no-store");
    if e.basic && e.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"keygate\""),
        );
    }
    resp
}

/// The RFC 8414 / OpenID discovery document: what this server does today, nothing more.
fn metadata(s: &Settings) -> Vec<u8> {
    let iss = &s.issuer;
    serde_json::to_vec(&serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}{AUTHORIZE}"),
        "token_endpoint": format!("{iss}{TOKEN}"),
        "device_authorization_endpoint": format!("{iss}{DEVICE_AUTHORIZATION}"),
        "userinfo_endpoint": format!("{iss}{USERINFO}"),
        "jwks_uri": format!("{iss}{JWKS}"),
        "introspection_endpoint": format!("{iss}{INTROSPECT}"),
        "revocation_endpoint": format!("{iss}{REVOKE}"),
        "grant_types_supported": [
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "profile", "offline_access"],
        "claims_supported": ["sub", "name", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .expect("metadata serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        // RFC 6749 §2.3.1 with a secret holding `:` and `%` once encoded.
        let b64 = base64::engine::general_purpose::STANDARD.encode("kgc_A%2Bb:se%3Acr%25et");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {b64}")).unwrap(),
        );
        let form = Form::parse(b"grant_type=client_credentials").unwrap();
        let p = presented(&headers, &form).unwrap();
        assert_eq!(p.id, "kgc_A+b");
        assert_eq!(p.secret.unwrap().as_str(), "se:cr%et");
        let both = Form::parse(b"client_secret=x").unwrap();
        assert_eq!(
            presented(&headers, &both).err().unwrap().code,
            "invalid_request"
        );
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let e = Form::parse(b"scope=a&grant_type=client_credentials&scope=b")
            .err()
            .unwrap();
        assert_eq!(e.code, "invalid_request");
    }

    #[test]
    fn only_the_clients_scopes_are_granted() {
        let allowed = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(granted_scopes(&allowed, None).unwrap(), allowed);
        assert_eq!(granted_scopes(&allowed, Some("b  b")).unwrap(), ["b"]);
        assert_eq!(
            granted_scopes(&allowed, Some("a admin")).unwrap_err().code,
            "invalid_scope"
        );
    }
}
