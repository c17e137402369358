//! The client side of OAuth for programs and `tokenctl`: a profile's access token, from a
//! cache while it is valid long enough, else fetched from the issuer and cached.
//!
//! ```no_run
//! let token = kg_client::Client::from_profile("dev")?.access_token()?;
//! # Ok::<(), kg_client::Error>(())
//! ```
//!
//! The cache is one file per profile, `PRIVATE/client-cache/PROFILE.json`, written 0600
//! through kg-fs. Fetching happens under `STATE/client-PROFILE.lock`, and the cache is read
//! again once the lock is held: however many processes ask at the moment a token expires,
//! one of them fetches and every one prints that token. Machine clients use the
//! client-credentials grant (a client id and a secret from a file or the environment, never
//! argv); people sign in once (`login_browser`, `login_device`) and are refreshed.
//!
//! `profile.rs` reads a profile's settings, `error.rs` says what went wrong,
//! `http.rs` talks to the issuer, `callback.rs` is the loopback redirect.

use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use kg_fs::lock::Wait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

mod callback;
mod error;
mod http;
mod profile;

pub use callback::{Callback, parse_callback};
pub use error::Error;
pub use profile::{cache_file, forget, settings_for, settings_of};

/// How long a process waits for another that is fetching the same profile's token.
/// Longer than a whole fetch (two metadata requests and the token request, 15 s each).
const LOCK_WAIT: StdDuration = StdDuration::from_secs(60);
/// What [`Client::access_token`] leaves a token at least (`tokenctl token --min-validity`).
pub const DEFAULT_MIN_VALIDITY: Duration = Duration::minutes(1);
/// The longest lifetime believed from an issuer: a larger `expires_in` is cut to this.
const MAX_LIFETIME: Duration = Duration::days(1);
/// The lifetime assumed when the issuer gives none (RFC 6749 §5.1 makes it optional).
const DEFAULT_LIFETIME: Duration = Duration::minutes(5);
/// The largest cache file read.
const MAX_CACHE: u64 = 64 * 1024;
/// The OpenID discovery path, appended to the issuer.
const OIDC_DISCOVERY: &str = "/.well-known/openid-configuration";
/// RFC 8414's, inserted before the issuer's path.
const AS_METADATA: &str = "/.well-known/oauth-authorization-server";

/// What the client needs, as plain values (read from a profile by [`Client::from_profile`],
/// or filled in by a program).
pub struct Settings {
    /// The profile's name: names the cache and the lock.
    pub profile: String,
    /// The issuer URL, compared exactly with the one its metadata names.
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (a machine client).
    pub secret: Option<SecretString>,
    /// The scopes to ask for.
    pub scopes: Vec<String>,
    /// The resource (RFC 8707) to ask tokens for.
    pub resource: Option<String>,
    /// A CA to trust for the issuer, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The cache file.
    pub cache_file: PathBuf,
    /// The lock file.
    pub lock_file: PathBuf,
    /// An age X25519 identity file (`tokenctl keygen`): the cache is then sealed to it, and
    /// a plaintext cache is refused rather than read (never a silent fall-back).
    pub age_identity: Option<PathBuf>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("profile", &self.profile)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "(set)"))
            .field("cache_file", &self.cache_file)
            .finish_non_exhaustive()
    }
}

/// An access token as handed out.
pub struct AccessToken {
    /// The token.
    pub token: SecretString,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// The scopes granted, as the issuer said.
    pub scope: Option<String>,
    /// Whether this call fetched it (rather than found it cached).
    pub fetched: bool,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("fetched", &self.fetched)
            .finish_non_exhaustive()
    }
}

/// The cache file's contents.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cached {
    version: u32,
    issuer: String,
    client_id: String,
    /// The scopes and resource asked for: a token for others is not this profile's.
    scopes: Vec<String>,
    resource: Option<String>,
    access_token: String,
    /// Unix seconds.
    expires_at: i64,
    scope: Option<String>,
    /// A person's sign-in (`tokenctl login`): rotated by the issuer on every use.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A profile's OAuth client.
pub struct Client {
    settings: Settings,
    clock: Box<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings.fmt(f)
    }
}

impl Client {
    /// The client of `settings`, on `clock`.
    pub fn new(
        settings: Settings,
        clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static,
    ) -> Client {
        Client {
            settings,
            clock: Box::new(clock),
        }
    }

    /// The client of profile `name` in keygate's configuration (`[profiles.NAME]`), with
    /// `KEYGATE_CLIENT_ID` and `KEYGATE_CLIENT_SECRET` taken from the environment when set.
    pub fn from_profile(name: &str) -> Result<Client, Error> {
        let locations = kg_config::Locations::from_env()?;
        let config = kg_config::Config::load(&locations, &[])?;
        let settings = settings_of(&locations, &config, name)?;
        // The one clock (`test.now` reaches a program as it reaches tokenctl).
        let clock = kg_cli::clock(&config).map_err(|e| Error::Profile(e.message))?;
        Ok(Client::new(settings, clock))
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// An access token valid for at least `min_validity` more: the cached one, or a new
    /// one fetched under the profile's lock (the cache read again once it is held).
    pub fn access_token(&self) -> Result<AccessToken, Error> {
        self.access_token_valid_for(DEFAULT_MIN_VALIDITY)
    }

    /// [`Client::access_token`], valid for at least `min_validity` more.
    pub fn access_token_valid_for(&self, min_validity: Duration) -> Result<AccessToken, Error> {
        if let Some(t) = self.cached(min_validity)? {
            return Ok(t);
        }
        let _guard = self.lock()?;
        // Another process may have fetched while this one waited.
        if let Some(t) = self.cached(min_validity)? {
            return Ok(t);
        }
        self.fetch()
    }

    /// The time on this client's clock (the test clock under `test.now`).
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The cached token when it is this profile's and valid long enough.
    fn cached(&self, min_validity: Duration) -> Result<Option<AccessToken>, Error> {
        let Some(c) = self.read_cache()? else {
            return Ok(None);
        };
        let s = &self.settings;
        if c.issuer != s.issuer
            || c.client_id != s.client_id
            || c.scopes != s.scopes
            || c.resource != s.resource
        {
            // The profile now names another issuer, client, scopes or resource: not its
            // token (one made for another resource must not be sent to this one).
            return Ok(None);
        }
        let expires_at = OffsetDateTime::from_unix_timestamp(c.expires_at)
            .map_err(|_| self.damaged("expires_at is out of range"))?;
        if expires_at - self.now() < min_validity {
            return Ok(None);
        }
        Ok(Some(AccessToken {
            token: SecretString::from(c.access_token),
            expires_at,
            scope: c.scope,
            fetched: false,
        }))
    }

    fn damaged(&self, why: &str) -> Error {
        Error::Cache {
            path: self.settings.cache_file.clone(),
            why: why.to_owned(),
        }
    }

    fn read_cache(&self) -> Result<Option<Cached>, Error> {
        let path = &self.settings.cache_file;
        // A secret's read: no symlink followed, a regular file, its directory ours, and a
        // mode no one else can use (this client wrote it 0600; anything else was changed).
        if let Some(dir) = path.parent()
            && dir.exists()
        {
            kg_fs::check_dir(dir)?;
        }
        let secret = match kg_fs::read_secret(path) {
            Ok(s) => s,
            Err(kg_fs::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(e) = &secret.exposed {
            return Err(self.damaged(&e.to_string()));
        }
        if secret.bytes.len() as u64 > MAX_CACHE {
            return Err(self.damaged("it is too large"));
        }
        let bytes = match &self.settings.age_identity {
            None => zeroize::Zeroizing::new(secret.bytes),
            Some(path) => {
                if !secret.bytes.starts_with(b"age-encryption.org/") {
                    return Err(self.damaged(
                        "it is not sealed with age, as the profile's age_identity says it must be",
                    ));
                }
                let mut plain = zeroize::Zeroizing::new(Vec::new());
                kg_tokens::seal::unseal(
                    secret.bytes.as_slice(),
                    &mut *plain,
                    kg_tokens::seal::Identities::Keys(self.identities(path)?),
                )
                .map_err(|e| {
                    self.damaged(&format!("it does not open with the age identity: {e}"))
                })?;
                plain
            }
        };
        let c: Cached = serde_json::from_slice(&bytes).map_err(|e| {
            // Only the position: serde's message can quote the value, a token.
            self.damaged(&format!(
                "not a token cache (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if c.version != 1 {
            return Err(self.damaged(&format!(
                "version {} is not one this tokenctl wrote",
                c.version
            )));
        }
        if c.access_token.is_empty() || c.access_token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(self.damaged("its access token is not printable"));
        }
        Ok(Some(c))
    }

    /// Asks the issuer for a token (the client-credentials grant) and caches it.
    fn fetch(&self) -> Result<AccessToken, Error> {
        let s = &self.settings;
        let refresh = self
            .read_cache()?
            .filter(|c| self.is_ours(c))
            .and_then(|c| c.refresh_token);
        if refresh.is_none() && s.secret.is_none() {
            return Err(Error::NotSignedIn(s.profile.clone()));
        }
        let http = http::Http::new(s.ca_file.as_deref())?;
        // Discovered on every fetch (once per token lifetime), never taken from the cache:
        // the secret goes only where the issuer itself says.
        let meta = self.metadata(&http)?;
        let Some(rt) = refresh else {
            let scope = s.scopes.join(" ");
            let mut form = vec![("grant_type", "client_credentials")];
            if !scope.is_empty() {
                form.push(("scope", scope.as_str()));
            }
            if let Some(r) = &s.resource {
                form.push(("resource", r.as_str()));
            }
            let now = self.now();
            let answer = self.grant(&http, &meta.token_endpoint, form)?;
            return self.store(answer, now);
        };
        let now = self.now();
        let form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        match self.grant(&http, &meta.token_endpoint, form) {
            Ok(answer) => self.store(answer, now),
            Err(Error::Refused { error, .. }) if error == "invalid_grant" => {
                // Spent elsewhere (a process that did not take this lock): its successor may
                // be in the cache by now. Read once more before giving up.
                if let Some(c) = self.read_cache()?
                    && c.refresh_token.as_deref() != Some(rt.as_str())
                    && let Some(t) = self.cached(Duration::ZERO)?
                {
                    return Ok(t);
                }
                Err(Error::NotSignedIn(s.profile.clone()))
            }
            Err(e) => Err(e),
        }
    }

    /// Signs a person in with the device grant (RFC 8628): `show` is handed what to tell
    /// them, then the issuer is polled (its interval, 5 s more on every `slow_down`) until
    /// they answer or the code expires; the tokens are cached like any other.
    pub fn login_device(
        &self,
        show: &mut dyn FnMut(&DevicePrompt),
        limit: StdDuration,
    ) -> Result<AccessToken, Error> {
        let s = &self.settings;
        let http = http::Http::new(s.ca_file.as_deref())?;
        let meta = self.metadata(&http)?;
        let endpoint = meta
            .device_authorization_endpoint
            .ok_or_else(|| Error::Metadata {
                issuer: s.issuer.clone(),
                why: "it offers no device authorization (RFC 8628)".into(),
            })?;
        let scope = s.scopes.join(" ");
        let mut form = Vec::new();
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        if let Some(r) = &s.resource {
            form.push(("resource", r.as_str()));
        }
        let reply = self.post_client(&http, &endpoint, form)?;
        if reply.status != 200 {
            return Err(token_answer(reply.status, &reply.body)
                .err()
                .unwrap_or(Error::Refused {
                    error: format!("HTTP {}", reply.status),
                    description: None,
                }));
        }
        let d: DeviceAnswer = serde_json::from_slice(&reply.body).map_err(|_| Error::Refused {
            error: "a device authorization that is not one".into(),
            description: None,
        })?;
        show(&DevicePrompt {
            user_code: printable(&d.user_code),
            verification_uri: printable(&d.verification_uri),
            verification_uri_complete: d.verification_uri_complete.as_deref().map(printable),
        });
        let lifetime = d.expires_in.clamp(1, 1800).unsigned_abs();
        let deadline = std::time::Instant::now() + StdDuration::from_secs(lifetime).min(limit);
        let mut interval =
            StdDuration::from_secs(d.interval.unwrap_or(5).clamp(1, 60).unsigned_abs());
        loop {
            std::thread::sleep(interval);
            if std::time::Instant::now() > deadline {
                return Err(Error::Refused {
                    error: "expired_token".into(),
                    description: Some(
                        "the code was not approved in time; run `tokenctl login` again".into(),
                    ),
                });
            }
            let now = self.now();
            let form = vec![
                ("grant_type", DEVICE_GRANT),
                ("device_code", d.device_code.as_str()),
            ];
            match self.grant(&http, &meta.token_endpoint, form) {
                Ok(answer) => {
                    let _guard = self.lock()?;
                    return self.store(answer, now);
                }
                Err(Error::Refused { error, .. }) if error == "authorization_pending" => {}
                Err(Error::Refused { error, .. }) if error == "slow_down" => {
                    interval += StdDuration::from_secs(5);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Signs a person in with the authorization code grant and PKCE (S256) through their
    /// browser (RFC 8252): a listener on an ephemeral loopback port first, then `open` is
    /// handed the authorization URL (to print it and start a browser). The answer must carry
    /// the state sent and, from an issuer that says it sends one, its own `iss` (RFC 9207:
    /// a response another issuer made is refused); then the code is exchanged with the
    /// verifier and the tokens are cached. Waits up to `limit`.
    pub fn login_browser(
        &self,
        open: &mut dyn FnMut(&str),
        limit: StdDuration,
    ) -> Result<AccessToken, Error> {
        use base64::Engine as _;
        use sha2::Digest as _;
        let s = &self.settings;
        let http = http::Http::new(s.ca_file.as_deref())?;
        let meta = self.metadata(&http)?;
        let authorize = meta
            .authorization_endpoint
            .clone()
            .ok_or_else(|| Error::Metadata {
                issuer: s.issuer.clone(),
                why: "it has no authorization_endpoint".into(),
            })?;
        let listener = callback::Listener::bind()?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let random = || {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).expect("the operating system's random number generator");
            b64.encode(b)
        };
        let (verifier, state) = (random(), random());
        let challenge = b64.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let scope = s.scopes.join(" ");
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &s.client_id)
            .append_pair("redirect_uri", &listener.redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if !scope.is_empty() {
            q.append_pair("scope", &scope);
        }
        // OpenID Connect Core §11: a request for `offline_access` (a refresh token) asks
        // for consent, or the provider leaves the scope out.
        if s.scopes.iter().any(|x| x == "offline_access") {
            q.append_pair("prompt", "consent");
        }
        if let Some(r) = &s.resource {
            q.append_pair("resource", r);
        }
        let sep = if authorize.contains('?') { '&' } else { '?' };
        open(&format!("{authorize}{sep}{}", q.finish()));
        let verdict = |cb: &Callback| -> Result<String, Error> {
            let refused = |error: &str, description: &str| Error::Refused {
                error: error.into(),
                description: Some(description.into()),
            };
            let same_state = cb.state.as_deref().is_some_and(|got| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    got.as_bytes(),
                    state.as_bytes(),
                ))
            });
            if !same_state {
                return Err(refused(
                    "state_mismatch",
                    "the answer is not to this sign-in (its state differs): nothing was kept",
                ));
            }
            if (meta.iss_in_responses || cb.iss.is_some())
                && cb.iss.as_deref() != Some(s.issuer.as_str())
            {
                return Err(refused(
                    "issuer_mismatch",
                    "the answer names another issuer than the profile's (a mix-up): nothing was kept",
                ));
            }
            if let Some(e) = &cb.error {
                return Err(Error::Refused {
                    error: printable(e),
                    description: cb.error_description.as_deref().map(printable),
                });
            }
            cb.code
                .clone()
                .ok_or_else(|| refused("invalid_request", "the answer has no code"))
        };
        let cb = listener.wait(limit, &|cb| match verdict(cb) {
            Ok(_) => (200, done_page()),
            Err(e) => (400, refused_page(&e.to_string())),
        })?;
        let code = verdict(&cb)?;
        let now = self.now();
        let form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", listener.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let answer = self.grant(&http, &meta.token_endpoint, form)?;
        let _guard = self.lock()?;
        self.store(answer, now)
    }

    /// What is cached for this profile, without asking the issuer: `None` when nothing
    /// (or another issuer's, client's, scopes' or resource's token) is.
    pub fn status(&self) -> Result<Option<Status>, Error> {
        use base64::Engine as _;
        let Some(c) = self.read_cache()?.filter(|c| self.is_ours(c)) else {
            return Ok(None);
        };
        // Who it is for, from the token's own claims when it is a JWT: shown, not trusted.
        let subject = c
            .access_token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["sub"].as_str().map(printable));
        Ok(Some(Status {
            expires_at: OffsetDateTime::from_unix_timestamp(c.expires_at)
                .map_err(|_| self.damaged("expires_at is out of range"))?,
            subject,
            scope: c.scope,
            refreshable: c.refresh_token.is_some(),
        }))
    }

    /// Revokes the cached sign-in at the issuer (RFC 7009): the refresh token when there is
    /// one (ending the sign-in, its access tokens with it at keygate), else the access
    /// token. Whether something was revoked; the cache is left to [`forget`].
    pub fn revoke(&self) -> Result<bool, Error> {
        let Some(c) = self.read_cache()?.filter(|c| self.is_ours(c)) else {
            return Ok(false);
        };
        let s = &self.settings;
        let http = http::Http::new(s.ca_file.as_deref())?;
        let meta = self.metadata(&http)?;
        let endpoint = meta.revocation_endpoint.ok_or_else(|| Error::Metadata {
            issuer: s.issuer.clone(),
            why: "it offers no revocation endpoint (RFC 7009)".into(),
        })?;
        let form = match &c.refresh_token {
            Some(rt) => vec![("token", rt.as_str()), ("token_type_hint", "refresh_token")],
            None => vec![
                ("token", c.access_token.as_str()),
                ("token_type_hint", "access_token"),
            ],
        };
        let reply = self.post_client(&http, &endpoint, form)?;
        if reply.status == 200 {
            return Ok(true);
        }
        Err(token_answer(reply.status, &reply.body)
            .err()
            .unwrap_or(Error::Refused {
                error: format!("HTTP {}", reply.status),
                description: None,
            }))
    }

    /// Marks the cached access token as spent (a resource server refused it: git's
    /// `erase`), keeping a refresh token: the next call fetches or refreshes.
    pub fn expire(&self) -> Result<(), Error> {
        let _guard = self.lock()?;
        let Some(mut c) = self.read_cache()?.filter(|c| self.is_ours(c)) else {
            return Ok(());
        };
        c.expires_at = 0;
        self.write_cache(&c)
    }

    /// Writes the cache (0600, atomically), sealed with age when the profile says so.
    fn write_cache(&self, c: &Cached) -> Result<(), Error> {
        let s = &self.settings;
        if let Some(dir) = s.cache_file.parent() {
            kg_fs::create_dir_all(dir, kg_fs::DirMode::Private)?;
        }
        let text =
            zeroize::Zeroizing::new(serde_json::to_vec_pretty(c).expect("a cache serializes"));
        let bytes = match &s.age_identity {
            None => text.to_vec(),
            Some(path) => {
                let recipients = self
                    .identities(path)?
                    .iter()
                    .map(|i| i.to_public())
                    .collect();
                let mut sealed = Vec::new();
                kg_tokens::seal::seal(
                    text.as_slice(),
                    &mut sealed,
                    kg_tokens::seal::Recipients::Keys(recipients),
                    false,
                )
                .map_err(|e| self.damaged(&format!("cannot seal it: {e}")))?;
                sealed
            }
        };
        kg_fs::write_atomic(&s.cache_file, &bytes, kg_fs::FileMode::Secret)?;
        Ok(())
    }

    /// The profile's age identities.
    fn identities(&self, path: &Path) -> Result<Vec<age::x25519::Identity>, Error> {
        let secret = kg_fs::read_secret(path)?;
        let text = String::from_utf8(secret.bytes).map_err(|_| {
            Error::Profile(format!(
                "the age identity file '{}' is not text",
                path.display()
            ))
        })?;
        kg_tokens::seal::parse_identity_file(&path.display().to_string(), &text)
            .map_err(|e| Error::Profile(e.to_string()))
    }

    /// Takes the profile's lock (another process fetching waits for it).
    fn lock(&self) -> Result<kg_fs::lock::LockGuard, Error> {
        let lock = &self.settings.lock_file;
        if let Some(parent) = lock.parent() {
            kg_fs::create_dir_all(parent, kg_fs::DirMode::Private)?;
        }
        match kg_fs::lock::acquire(lock, Wait::Up(LOCK_WAIT)) {
            Ok(g) => Ok(g),
            Err(e) if e.is_locked() => Err(Error::Busy { path: lock.clone() }),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the cache entry is this profile's (issuer, client, scopes, resource).
    fn is_ours(&self, c: &Cached) -> bool {
        let s = &self.settings;
        c.issuer == s.issuer
            && c.client_id == s.client_id
            && c.scopes == s.scopes
            && c.resource == s.resource
    }

    /// A token request with this client's authentication: Basic for a confidential
    /// client, the `client_id` in the form for a public one (RFC 6749 §2.3.1, §3.2.1).
    fn grant<'a>(
        &'a self,
        http: &http::Http,
        endpoint: &str,
        form: Vec<(&'a str, &'a str)>,
    ) -> Result<Answer, Error> {
        let reply = self.post_client(http, endpoint, form)?;
        token_answer(reply.status, &reply.body)
    }

    /// A POST to one of the issuer's endpoints with this client's authentication.
    fn post_client<'a>(
        &'a self,
        http: &http::Http,
        endpoint: &str,
        mut form: Vec<(&'a str, &'a str)>,
    ) -> Result<http::Reply, Error> {
        let s = &self.settings;
        let basic = match &s.secret {
            Some(secret) => Some((s.client_id.as_str(), secret.expose_secret())),
            None => {
                form.push(("client_id", s.client_id.as_str()));
                None
            }
        };
        http.post_form(endpoint, &form, basic)
    }

    /// Caches what the issuer answered at `now` and hands out its access token.
    fn store(&self, answer: Answer, now: OffsetDateTime) -> Result<AccessToken, Error> {
        let s = &self.settings;
        let lifetime = answer.expires_in.map_or(DEFAULT_LIFETIME, |s| {
            Duration::seconds(s.clamp(0, MAX_LIFETIME.whole_seconds()))
        });
        let expires_at = now + lifetime;
        let cached = Cached {
            version: 1,
            issuer: s.issuer.clone(),
            client_id: s.client_id.clone(),
            scopes: s.scopes.clone(),
            resource: s.resource.clone(),
            access_token: answer.access_token,
            expires_at: expires_at.unix_timestamp(),
            scope: answer.scope,
            refresh_token: answer.refresh_token,
        };
        self.write_cache(&cached)?;
        Ok(AccessToken {
            token: SecretString::from(cached.access_token),
            expires_at,
            scope: cached.scope,
            fetched: true,
        })
    }

    /// The issuer's endpoints, from its metadata (OpenID discovery, then RFC 8414), whose
    /// `issuer` must be the profile's exactly (RFC 8414 §3.3: a document another server
    /// serves is not this one's).
    fn metadata(&self, http: &http::Http) -> Result<Metadata, Error> {
        let s = &self.settings;
        let meta = |why: String| Error::Metadata {
            issuer: s.issuer.clone(),
            why,
        };
        let issuer = s.issuer.trim_end_matches('/');
        let (scheme_host, path) = split_issuer(issuer);
        let urls = [
            format!("{issuer}{OIDC_DISCOVERY}"),
            format!("{scheme_host}{AS_METADATA}{path}"),
        ];
        let mut last = None;
        for url in &urls {
            let reply = http.get(url)?;
            if reply.status == 200 {
                let doc: serde_json::Value = serde_json::from_slice(&reply.body)
                    .map_err(|_| meta(format!("{url} is not JSON")))?;
                if doc["issuer"].as_str() != Some(s.issuer.as_str()) {
                    return Err(meta(format!(
                        "its metadata names another issuer ({}): a mix-up or a wrong URL",
                        printable(doc["issuer"].as_str().unwrap_or("none"))
                    )));
                }
                // https, or http only when the issuer itself is a loopback http one: an
                // https issuer's secret never goes out in the clear.
                let endpoint = |key: &str| -> Result<Option<String>, Error> {
                    let Some(url) = doc[key].as_str() else {
                        return Ok(None);
                    };
                    let clear = url.starts_with("http://");
                    if http::check_url(url).is_err() || (clear && !s.issuer.starts_with("http://"))
                    {
                        return Err(meta(format!(
                            "its {key} {} is not one to send a secret to",
                            printable(&http::shown_url(url))
                        )));
                    }
                    Ok(Some(url.to_owned()))
                };
                return Ok(Metadata {
                    token_endpoint: endpoint("token_endpoint")?
                        .ok_or_else(|| meta("its metadata has no token_endpoint".into()))?,
                    device_authorization_endpoint: endpoint("device_authorization_endpoint")?,
                    authorization_endpoint: endpoint("authorization_endpoint")?,
                    revocation_endpoint: endpoint("revocation_endpoint")?,
                    iss_in_responses: doc["authorization_response_iss_parameter_supported"]
                        == serde_json::Value::Bool(true),
                });
            }
            last = Some(reply.status);
        }
        Err(meta(format!(
            "no metadata at {} (HTTP {})",
            urls[0],
            last.unwrap_or_default()
        )))
    }
}

/// What a profile has cached ([`Client::status`]).
#[derive(Debug, Clone)]
pub struct Status {
    /// When the access token expires.
    pub expires_at: OffsetDateTime,
    /// Whom it is for (the JWT's `sub`, unverified: for showing).
    pub subject: Option<String>,
    /// The scopes granted.
    pub scope: Option<String>,
    /// Whether a refresh token is kept (a person's sign-in).
    pub refreshable: bool,
}

/// What the client uses of an issuer's metadata.
struct Metadata {
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
    authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    /// RFC 9207: the issuer puts `iss` in its authorization responses, so one without it
    /// (or with another) did not come from it.
    iss_in_responses: bool,
}

/// The page the browser shows once the CLI has its answer.
fn done_page() -> String {
    callback::page(
        "Signed in",
        "signed-in",
        "You can close this tab and go back to the terminal.",
    )
}

fn refused_page(why: &str) -> String {
    let escaped: String = why
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    callback::page("Not signed in", "refused", &escaped)
}

/// The device grant's type (RFC 8628 §3.4).
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device authorization response (RFC 8628 §3.2).
#[derive(Deserialize)]
struct DeviceAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: i64,
    interval: Option<i64>,
}

/// What a person is shown to approve a device sign-in (RFC 8628 §3.3).
#[derive(Debug, Clone)]
pub struct DevicePrompt {
    /// The code to type.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The same with the code in it, when the issuer gives one.
    pub verification_uri_complete: Option<String>,
}

/// `https://host:port` and `/path` of an issuer URL.
fn split_issuer(issuer: &str) -> (&str, &str) {
    let after = issuer.find("://").map_or(0, |i| i + 3);
    match issuer[after..].find('/') {
        Some(i) => issuer.split_at(after + i),
        None => (issuer, ""),
    }
}

/// At most 200 printable characters of what a server said: no control characters, line
/// separators or bidirectional overrides that could forge or reorder a terminal line.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
                )
        })
        .take(200)
        .collect()
}

/// A token response (RFC 6749 §5.1), or the error it carries (§5.2).
#[derive(Deserialize)]
struct Answer {
    access_token: String,
    token_type: String,
    expires_in: Option<i64>,
    scope: Option<String>,
    refresh_token: Option<String>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Parses what an issuer's token endpoint answered, as [`Client`] does: for the fuzz target
/// (`fuzz/fuzz_targets/client_answer.rs`). Whether it is a usable token response.
pub fn parse_token_answer(status: u16, body: &[u8]) -> Result<(), Error> {
    token_answer(status, body).map(|_| ())
}

/// Parses `bytes` as a cache file, as [`Client`] reads one (before its checks): for the
/// fuzz target. Whether it is one.
pub fn parse_cache(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Cached>(bytes).is_ok()
}

fn token_answer(status: u16, body: &[u8]) -> Result<Answer, Error> {
    if status != 200 {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        return Err(Error::Refused {
            error: v["error"]
                .as_str()
                .map_or_else(|| format!("HTTP {status}"), printable),
            description: v["error_description"].as_str().map(printable),
        });
    }
    let a: Answer = serde_json::from_slice(body).map_err(|_| Error::Refused {
        error: "a token response that is not one".into(),
        description: None,
    })?;
    if !a.token_type.eq_ignore_ascii_case("bearer") {
        return Err(Error::Refused {
            error: format!(
                "token_type {} (only Bearer is supported)",
                printable(&a.token_type)
            ),
            description: None,
        });
    }
    let unprintable = |t: &str| t.is_empty() || t.bytes().any(|b| !b.is_ascii_graphic());
    if a.refresh_token.as_deref().is_some_and(unprintable) {
        return Err(Error::Refused {
            error: "a refresh token that is not printable".into(),
            description: None,
        });
    }
    if unprintable(&a.access_token) {
        return Err(Error::Refused {
            error: "an access token that is not printable".into(),
            description: None,
        });
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_are_checked() {
        let ok = br#"{"access_token":"eyJ.x.y","token_type":"Bearer","expires_in":600}"#;
        assert_eq!(token_answer(200, ok).unwrap().expires_in, Some(600));
        let refused =
            br#"{"error":"invalid_client","error_description":"client authentication failed"}"#;
        let e = token_answer(401, refused).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the issuer refused: invalid_client (client authentication failed)"
        );
        assert!(token_answer(200, br#"{"access_token":"a","token_type":"mac"}"#).is_err());
        assert!(token_answer(200, b"<html>").is_err());
        assert!(
            token_answer(502, b"<html>")
                .unwrap_err()
                .to_string()
                .contains("HTTP 502")
        );
        let evil = b"{\"access_token\":\"a\\nb\",\"token_type\":\"Bearer\"}";
        assert!(
            token_answer(200, evil).is_err(),
            "a token that would break a header"
        );
    }

    #[test]
    fn issuers_split_for_rfc_8414() {
        assert_eq!(
            split_issuer("https://h:1/.keygate"),
            ("https://h:1", "/.keygate")
        );
        assert_eq!(split_issuer("https://h:1"), ("https://h:1", ""));
    }
}
