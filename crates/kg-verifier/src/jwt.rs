//! keygate's own JWT access tokens, judged here like API tokens.
//!
//! kg-oauth issues RFC 9068 access tokens and supplies, through [`JwtSource`], the keys that
//! verify them and what has been revoked since; the decision (signature, `typ`, issuer,
//! audience, times, revocation) is made here, so "only the verifier decides" holds for JWTs
//! too. A token that verified is cached until it expires, keyed by its text: a repeated JWT
//! then costs a hash lookup and the revocation check, about what an API token costs,
//! instead of a signature verification (35-45 µs for Ed25519).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kg_jose::{AccessClaims, JwtError, PublicKeys, Rules, TYP_ACCESS};
use time::OffsetDateTime;

/// Most tokens kept verified (about 17 MiB when full, measured by `bench oauth`); beyond it
/// the expired go first, then
/// half of the rest.
const CACHE_MAX: usize = 16_384;

/// What the issuer tells the verifier.
pub trait JwtSource: Send + Sync {
    /// The keys a token may be signed with now. `refresh` asks to look for a newer key set
    /// first (a token named a key not in the current one).
    fn keys(&self, refresh: bool) -> Arc<PublicKeys>;
    /// Whether the token's client, its grant or the token itself has been revoked.
    fn revoked(&self, claims: &AccessClaims) -> bool;
}

/// The JWT half of the verifier: the rules, the source, and the cache.
pub struct Jwts {
    issuer: String,
    audiences: Vec<String>,
    source: Arc<dyn JwtSource>,
    cache: RwLock<HashMap<Box<str>, Arc<Verified>>>,
}

impl std::fmt::Debug for Jwts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwts")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

/// A token that verified, as the rest of the verifier sees it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its claims.
    pub claims: AccessClaims,
    /// Its scopes, split, OpenID Connect's own left out: they are granted to anyone who
    /// asks, so no scope rule may count them.
    pub scopes: Vec<String>,
}

/// Why a JWT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// What kg-jose found.
    Jwt(JwtError),
    /// Its client or the token itself was revoked.
    Revoked,
}

impl Refusal {
    /// The store reason it is counted and logged as.
    pub fn reason(self) -> kg_tokens::Reason {
        use kg_tokens::Reason;
        match self {
            Refusal::Revoked => Reason::Revoked,
            Refusal::Jwt(JwtError::Expired) => Reason::Expired,
            Refusal::Jwt(JwtError::Malformed | JwtError::ForbiddenHeader) => Reason::Malformed,
            Refusal::Jwt(_) => Reason::Unknown,
        }
    }
}

/// Whether `text` has the shape of a JWT (three base64url parts, the first a JSON object),
/// rather than an API token: the verifier sends it down the JWT path.
pub fn looks_like_jwt(text: &str) -> bool {
    text.starts_with("eyJ") && text.bytes().filter(|&b| b == b'.').count() == 2
}

impl Jwts {
    /// Tokens of `issuer` for any of `audiences`, with keys and revocations from `source`.
    pub fn new(issuer: String, audiences: Vec<String>, source: Arc<dyn JwtSource>) -> Jwts {
        Jwts {
            issuer,
            audiences,
            source,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The issuer whose tokens are accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Judges `token` at `now`.
    pub fn check(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Verified>, Refusal> {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned();
        let verified = match cached {
            Some(v) => {
                if now.unix_timestamp() >= v.claims.exp.saturating_add(kg_jose::SKEW) {
                    self.cache
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(token);
                    return Err(Refusal::Jwt(JwtError::Expired));
                }
                v
            }
            None => {
                let v = Arc::new(self.verify(token, now)?);
                self.remember(token, &v, now);
                v
            }
        };
        if self.source.revoked(&verified.claims) {
            return Err(Refusal::Revoked);
        }
        Ok(verified)
    }

    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Verified, Refusal> {
        let audiences: Vec<&str> = self.audiences.iter().map(String::as_str).collect();
        let rules = Rules {
            typ: TYP_ACCESS,
            issuer: &self.issuer,
            audiences: &audiences,
            now,
        };
        let claims = match kg_jose::verify::<AccessClaims>(token, &self.source.keys(false), &rules)
        {
            // A key published since the last look (`tokenctl keys rotate` elsewhere).
            Err(JwtError::UnknownKey) => {
                kg_jose::verify::<AccessClaims>(token, &self.source.keys(true), &rules)
            }
            other => other,
        }
        .map_err(Refusal::Jwt)?;
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty() && !kg_jose::OIDC_SCOPES.contains(s))
            .map(str::to_owned)
            .collect();
        Ok(Verified { claims, scopes })
    }

    fn remember(&self, token: &str, v: &Arc<Verified>, now: OffsetDateTime) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            let now = now.unix_timestamp();
            cache.retain(|_, v| now < v.claims.exp.saturating_add(kg_jose::SKEW));
            if cache.len() >= CACHE_MAX {
                // Every one still live: drop half (in hash order, so no one's tokens are
                // favoured), not all, so the tokens in use stay cheap.
                let mut keep = false;
                cache.retain(|_, _| {
                    keep = !keep;
                    keep
                });
            }
        }
        cache.insert(token.into(), Arc::clone(v));
    }

    /// Forgets a token (revoked here): the next check verifies it again.
    pub fn forget(&self, token: &str) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}
