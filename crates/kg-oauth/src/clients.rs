//! OAuth clients: registration rules, secrets, rotation and authentication.
//!
//! A client id is `kgc_` and 12 base62 characters; it is not secret. A confidential client's
//! secret has the API token format with its own prefix, `kgcs_<id>_<32 random><6 checksum>`
//! (scanner pattern [`secret_regex`]), and is stored like an API token: HMAC-SHA-256 under the
//! pepper, never the secret. Checking one costs one HMAC (about 1 µs), where Hydra's default
//! pbkdf2 costs 6.7 ms on every client-credentials request: with 190 random bits no slow hash
//! is needed.

use kg_store::{ClientRecord, ClientStore, SecretRecord};
use kg_tokens::{Pepper, Prefix, TokenSecret};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// The prefix of client ids.
pub const CLIENT_ID_PREFIX: &str = "kgc_";
/// The prefix of client secrets (before its `_`).
pub const SECRET_PREFIX: &str = "kgcs";

/// A grant type a client may be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// RFC 6749 §4.4: a machine trades its id and secret for an access token.
    ClientCredentials,
    /// RFC 6749 §4.1 with PKCE: a person signs in through a browser.
    AuthorizationCode,
    /// RFC 8628: a person signs in on another device.
    DeviceCode,
    /// RFC 6749 §6; implied by the two grants that sign people in.
    RefreshToken,
}

impl Grant {
    /// The grant types `--grant` accepts.
    pub const NAMES: [&'static str; 3] =
        ["client_credentials", "authorization_code", "device_code"];

    /// The `grant_type` value (RFC 8628's URN for the device grant).
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::AuthorizationCode => "authorization_code",
            Grant::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Grant::RefreshToken => "refresh_token",
        }
    }

    /// Reads a `grant_type` value, or the short name `device_code`.
    pub fn parse(text: &str) -> Option<Grant> {
        match text {
            "client_credentials" => Some(Grant::ClientCredentials),
            "authorization_code" => Some(Grant::AuthorizationCode),
            "device_code" | "urn:ietf:params:oauth:grant-type:device_code" => {
                Some(Grant::DeviceCode)
            }
            "refresh_token" => Some(Grant::RefreshToken),
            _ => None,
        }
    }
}

/// What an operator asks for when registering a client.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// A name unique among live clients.
    pub name: String,
    /// Grant types (`client_credentials` when none is given).
    pub grants: Vec<Grant>,
    /// The scopes it may be given.
    pub scopes: Vec<String>,
    /// No secret: a CLI or a single-page app (PKCE protects its codes).
    pub public: bool,
    /// Redirect URIs, for the grants that use them.
    pub redirect_uris: Vec<String>,
}

/// Why a registration, rotation or revocation was refused, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The name breaks the naming rule.
    #[error("invalid client name: a name {}", kg_tokens::NAME_RULE)]
    InvalidName,
    /// A scope breaks the scope rule.
    #[error("invalid scope #{number}: a scope {}", kg_tokens::SCOPE_RULE)]
    InvalidScope {
        /// Its position, from 1.
        number: usize,
    },
    /// A redirect URI that may not be registered.
    #[error("invalid redirect URI #{number}: {why}")]
    InvalidRedirect {
        /// Its position, from 1.
        number: usize,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A combination of options that makes no sense.
    #[error("{0}")]
    Conflicting(&'static str),
    /// No client has that id or name.
    #[error("no client '{0}'")]
    NotFound(String),
    /// The client is revoked: nothing but `show` and `revoke` applies to it.
    #[error("client '{0}' is revoked")]
    Revoked(String),
    /// A public client has no secret to rotate.
    #[error("client '{0}' is public: it has no secret to rotate")]
    Public(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] kg_store::Error),
}

impl ClientError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClientError::InvalidRedirect { .. } => Some(
                "use https://..., http://127.0.0.1[:PORT]/... or http://[::1]/... for a \
                 CLI (any port matches), or a private-use scheme such as com.example.app:/cb"
                    .into(),
            ),
            ClientError::NotFound(_) => Some("`tokenctl client list` shows the clients".into()),
            ClientError::Revoked(_) => Some(
                "a revoked client stays revoked: `tokenctl client create` registers a new one"
                    .into(),
            ),
            ClientError::Store(e) => e.hint(),
            _ => None,
        }
    }

    /// Whether it is the caller's mistake (usage) rather than the system's.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            ClientError::Store(_) | ClientError::NotFound(_) | ClientError::Revoked(_)
        )
    }
}

/// Milliseconds since the epoch, as the store keeps times.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn new_id() -> String {
    // A token's id part is 12 random base62 characters: the same generator.
    let (id, _) = kg_tokens::generate(&Prefix::default());
    format!("{CLIENT_ID_PREFIX}{id}")
}

fn secret_prefix() -> Prefix {
    Prefix::new(SECRET_PREFIX).expect("a valid prefix")
}

/// The secret-scanner pattern of client secrets.
pub fn secret_regex() -> String {
    kg_tokens::format_regex(&secret_prefix())
}

fn new_secret(pepper: &Pepper, now: OffsetDateTime) -> (SecretRecord, TokenSecret) {
    let (id, secret) = kg_tokens::generate(&secret_prefix());
    let record = SecretRecord {
        id,
        digest: pepper.digest(secret.expose_secret()),
        created: millis(now),
        until: None,
    };
    (record, secret)
}

/// Checks a registration against the rules; the record to store.
pub fn check(reg: &Registration, now: OffsetDateTime) -> Result<ClientRecord, ClientError> {
    if !kg_tokens::valid_name(&reg.name) || reg.name.starts_with(CLIENT_ID_PREFIX) {
        return Err(ClientError::InvalidName);
    }
    let mut grants = if reg.grants.is_empty() {
        vec![Grant::ClientCredentials]
    } else {
        reg.grants.clone()
    };
    grants.dedup();
    if reg.public && grants.contains(&Grant::ClientCredentials) {
        return Err(ClientError::Conflicting(
            "a public client cannot use client_credentials: it has no secret to authenticate with",
        ));
    }
    let people = grants
        .iter()
        .any(|g| matches!(g, Grant::AuthorizationCode | Grant::DeviceCode));
    if people && !grants.contains(&Grant::RefreshToken) {
        grants.push(Grant::RefreshToken);
    }
    let code = grants.contains(&Grant::AuthorizationCode);
    if code && reg.redirect_uris.is_empty() {
        return Err(ClientError::Conflicting(
            "authorization_code needs at least one --redirect-uri",
        ));
    }
    if !code && !reg.redirect_uris.is_empty() {
        return Err(ClientError::Conflicting(
            "--redirect-uri is only for clients with the authorization_code grant",
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for (i, s) in reg.scopes.iter().enumerate() {
        if !kg_tokens::valid_scope(s) {
            return Err(ClientError::InvalidScope { number: i + 1 });
        }
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    for (i, uri) in reg.redirect_uris.iter().enumerate() {
        crate::redirect::check_registered(uri)
            .map_err(|why| ClientError::InvalidRedirect { number: i + 1, why })?;
    }
    Ok(ClientRecord {
        id: new_id(),
        name: reg.name.clone(),
        grants: grants.iter().map(|g| g.as_str().to_owned()).collect(),
        scopes,
        redirect_uris: reg.redirect_uris.clone(),
        public: reg.public,
        created: millis(now),
        revoked: None,
    })
}

/// Registers a client; its secret (confidential clients), to be shown once.
pub fn register(
    store: &dyn ClientStore,
    pepper: &Pepper,
    reg: &Registration,
    now: OffsetDateTime,
) -> Result<(ClientRecord, Option<TokenSecret>), ClientError> {
    let record = check(reg, now)?;
    let (secret_record, secret) = if reg.public {
        (None, None)
    } else {
        let (r, s) = new_secret(pepper, now);
        (Some(r), Some(s))
    };
    store.insert_client(&record, secret_record.as_ref())?;
    Ok((record, secret))
}

/// The live client with this id or name.
pub fn find(store: &dyn ClientStore, id_or_name: &str) -> Result<ClientRecord, ClientError> {
    let c = find_any(store, id_or_name)?;
    match c.revoked {
        None => Ok(c),
        Some(_) => Err(ClientError::Revoked(shown(id_or_name))),
    }
}

/// The client by id or name, revoked or not (what `client show` shows). A name belongs to
/// its live client; with none, to the last revoked one of that name (a name is free again
/// once its client is revoked).
pub fn find_any(store: &dyn ClientStore, id_or_name: &str) -> Result<ClientRecord, ClientError> {
    let found = if id_or_name.starts_with(CLIENT_ID_PREFIX) {
        store.client(id_or_name)?
    } else {
        match store.client_named(id_or_name)? {
            Some(c) => Some(c),
            None => store
                .clients()?
                .into_iter()
                .filter(|c| c.name == id_or_name)
                .max_by_key(|c| c.revoked),
        }
    };
    found.ok_or_else(|| ClientError::NotFound(shown(id_or_name)))
}

/// Echoes what the user typed only when it cannot be a secret.
fn shown(text: &str) -> String {
    if text.starts_with(SECRET_PREFIX) || !text.is_ascii() || text.len() > 80 {
        "(not shown)".into()
    } else {
        text.to_owned()
    }
}

/// A new secret for the client; the old ones keep working for `grace`.
pub fn rotate(
    store: &dyn ClientStore,
    pepper: &Pepper,
    id_or_name: &str,
    grace: Duration,
    now: OffsetDateTime,
) -> Result<(ClientRecord, TokenSecret), ClientError> {
    let client = find(store, id_or_name)?;
    if client.public {
        return Err(ClientError::Public(client.name));
    }
    let (record, secret) = new_secret(pepper, now);
    if !store.add_client_secret(&client.id, &record, millis(now + grace))? {
        return Err(ClientError::NotFound(shown(id_or_name)));
    }
    Ok((client, secret))
}

/// Revokes the client: its secrets stop working, and so do the tokens it was given. Again
/// is a no-op (`false`: it was revoked already).
pub fn revoke(
    store: &dyn ClientStore,
    id_or_name: &str,
    now: OffsetDateTime,
) -> Result<(ClientRecord, bool), ClientError> {
    let client = find_any(store, id_or_name)?;
    if client.revoked.is_some() {
        return Ok((client, false));
    }
    store.revoke_client(&client.id, millis(now))?;
    Ok((client, true))
}

/// Why client authentication failed; the token endpoint answers `invalid_client` for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No such client, or revoked.
    Unknown,
    /// A secret that is not one of the client's live secrets.
    WrongSecret,
    /// A public client presented a secret, or a confidential one none.
    WrongMethod,
}

/// A digest no HMAC output will equal in practice, compared against for unknown clients so
/// that they cost what a known one costs.
const UNMATCHABLE: [u8; 32] = [0; 32];

/// Authenticates a client by id and (for confidential clients) secret.
pub fn authenticate(
    store: &dyn ClientStore,
    pepper: &Pepper,
    client_id: &str,
    secret: Option<&str>,
    now: OffsetDateTime,
) -> Result<Result<ClientRecord, AuthFailure>, kg_store::Error> {
    let loaded = load(store, client_id)?;
    Ok(authenticate_loaded(loaded.as_ref(), pepper, secret, now).cloned())
}

/// A client and its secrets, as [`authenticate_loaded`] decides on them.
pub type Loaded = (ClientRecord, Vec<SecretRecord>);

/// The client `client_id` names and its secrets, if it is one of ours (any id not shaped
/// like ours is not looked up).
pub fn load(store: &dyn ClientStore, client_id: &str) -> Result<Option<Loaded>, kg_store::Error> {
    if !client_id.starts_with(CLIENT_ID_PREFIX) || client_id.len() > 64 {
        return Ok(None);
    }
    let Some(client) = store.client(client_id)? else {
        return Ok(None);
    };
    let secrets = store.client_secrets(&client.id)?;
    Ok(Some((client, secrets)))
}

/// Authenticates with a client already loaded ([`load`]; `None` when unknown): one HMAC,
/// the same for an unknown client.
pub fn authenticate_loaded<'a>(
    loaded: Option<&'a Loaded>,
    pepper: &Pepper,
    secret: Option<&str>,
    now: OffsetDateTime,
) -> Result<&'a ClientRecord, AuthFailure> {
    let Some((client, secrets)) = loaded.filter(|(c, _)| c.revoked.is_none()) else {
        if let Some(s) = secret {
            let _ = pepper.digest(s).ct_eq(&UNMATCHABLE);
        }
        return Err(AuthFailure::Unknown);
    };
    match (client.public, secret) {
        (true, None) => return Ok(client),
        (true, Some(_)) | (false, None) => return Err(AuthFailure::WrongMethod),
        (false, Some(_)) => {}
    }
    let secret = secret.unwrap_or_default();
    // The checksum catches typos and truncation without a lookup; the id picks the secret.
    let Ok(parsed) = kg_tokens::parse(secret, &secret_prefix()) else {
        return Err(AuthFailure::WrongSecret);
    };
    let now_ms = millis(now);
    let digest = pepper.digest(parsed.expose_token());
    let good = secrets
        .iter()
        .filter(|s| s.id == parsed.id() && s.until.is_none_or(|u| now_ms < u))
        .any(|s| bool::from(s.digest.ct_eq(&digest)));
    if good {
        Ok(client)
    } else {
        Err(AuthFailure::WrongSecret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kg_store::SqliteStore;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn reg(name: &str) -> Registration {
        Registration {
            name: name.into(),
            scopes: vec!["deploy".into()],
            ..Registration::default()
        }
    }

    #[test]
    fn a_secret_authenticates_its_client_and_nothing_else() {
        let store = SqliteStore::memory().unwrap();
        let pepper = Pepper::generate();
        let (a, sa) = register(&store, &pepper, &reg("a"), NOW).unwrap();
        let (b, sb) = register(&store, &pepper, &reg("b"), NOW).unwrap();
        let (sa, sb) = (sa.unwrap(), sb.unwrap());
        let auth = |id: &str, s: Option<&str>| authenticate(&store, &pepper, id, s, NOW).unwrap();
        assert_eq!(auth(&a.id, Some(sa.expose_secret())).unwrap().id, a.id);
        assert_eq!(
            auth(&a.id, Some(sb.expose_secret())),
            Err(AuthFailure::WrongSecret)
        );
        assert_eq!(auth(&b.id, None), Err(AuthFailure::WrongMethod));
        assert_eq!(
            auth("kgc_000000000000", Some(sa.expose_secret())),
            Err(AuthFailure::Unknown)
        );
        // One changed character fails the checksum; the same length with a valid checksum
        // but another secret fails the digest.
        let mut typo = sa.expose_secret().to_owned();
        typo.replace_range(20..21, if &typo[20..21] == "A" { "B" } else { "A" });
        assert_eq!(auth(&a.id, Some(&typo)), Err(AuthFailure::WrongSecret));
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_its_grace_and_revocation_ends_both() {
        let store = SqliteStore::memory().unwrap();
        let pepper = Pepper::generate();
        let (a, old) = register(&store, &pepper, &reg("a"), NOW).unwrap();
        let old = old.unwrap();
        let (_, new) = rotate(&store, &pepper, "a", Duration::hours(1), NOW).unwrap();
        let at = |s: &TokenSecret, t| {
            authenticate(&store, &pepper, &a.id, Some(s.expose_secret()), t)
                .unwrap()
                .is_ok()
        };
        assert!(at(&old, NOW + Duration::minutes(59)));
        assert!(!at(&old, NOW + Duration::hours(1)));
        assert!(at(&new, NOW + Duration::days(400)));
        assert!(revoke(&store, &a.id, NOW).unwrap().1);
        assert!(!at(&new, NOW));
        assert!(matches!(
            rotate(&store, &pepper, &a.id, Duration::ZERO, NOW),
            Err(ClientError::Revoked(_))
        ));
        assert!(!revoke(&store, "a", NOW).unwrap().1, "again: a no-op");
        assert!(find_any(&store, "a").unwrap().revoked.is_some());
    }

    #[test]
    fn registrations_that_make_no_sense_are_refused() {
        let bad = |r: Registration| check(&r, NOW).unwrap_err().to_string();
        assert!(
            bad(Registration {
                public: true,
                ..reg("cli")
            })
            .contains("public client cannot use client_credentials")
        );
        assert!(
            bad(Registration {
                grants: vec![Grant::AuthorizationCode],
                ..reg("web")
            })
            .contains("--redirect-uri")
        );
        assert!(
            bad(Registration {
                scopes: vec!["a b".into()],
                ..reg("x")
            })
            .contains("scope #1")
        );
        assert!(bad(reg("kgc_lookalike")).contains("client name"));
        let cli = check(
            &Registration {
                public: true,
                grants: vec![Grant::AuthorizationCode],
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                ..reg("cli")
            },
            NOW,
        )
        .unwrap();
        assert_eq!(cli.grants, ["authorization_code", "refresh_token"]);
    }
}
