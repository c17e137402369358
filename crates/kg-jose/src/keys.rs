//! Signing key sets: generation, rotation, the private file's text and the public JWKS.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The key set file format this crate reads and writes.
pub const KEYSET_VERSION: u32 = 1;

/// A signing algorithm keygate issues tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Alg {
    /// EdDSA over Ed25519 (RFC 8037); the default.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA over P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys; for ID tokens, which OpenID Connect
    /// requires to be available in RS256.
    #[serde(rename = "RS256")]
    Rs256,
}

impl Alg {
    /// Every algorithm, in the order listings show them.
    pub const ALL: [Alg; 3] = [Alg::EdDsa, Alg::Es256, Alg::Rs256];

    /// The JOSE name, as in a header's `alg` and a JWK's `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDsa => "EdDSA",
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }

    /// Reads a JOSE name; `Ed25519` (RFC 9864's name) is read as [`Alg::EdDsa`].
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "EdDSA" | "Ed25519" => Some(Alg::EdDsa),
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Alg::EdDsa => Algorithm::EdDSA,
            Alg::Es256 => Algorithm::ES256,
            Alg::Rs256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not yet signing: it becomes current at the next rotation.
    Next,
    /// The one key of its algorithm that signs.
    Current {
        /// When it began to sign.
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
    },
    /// No longer signing; published until `until` so that what it signed still verifies.
    Previous {
        /// When it leaves the key set.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
}

impl KeyState {
    /// `next`, `current` or `previous`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current { .. } => "current",
            KeyState::Previous { .. } => "previous",
        }
    }
}

/// What a listing shows of a key: never its private part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key id: the RFC 7638 thumbprint of its public key.
    pub kid: String,
    /// Its algorithm.
    pub alg: Alg,
    /// Where it is in its life.
    #[serde(flatten)]
    pub state: KeyState,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// The private key file as stored: the key set, one PKCS#8 PEM per key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    version: u32,
    keys: Vec<KeyRepr>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRepr {
    kid: String,
    alg: Alg,
    status: KeyState,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    private_key: String,
}

/// One key of a set: its private part (wiped on drop), ready to sign, and its public JWK.
pub struct SigningKey {
    info: KeyInfo,
    pem: SecretString,
    encoding: EncodingKey,
    public: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key of `alg`, `next` until a rotation makes it current.
    fn generate(alg: Alg, now: OffsetDateTime) -> Result<SigningKey, KeySetError> {
        let rng = SystemRandom::new();
        let der = match alg {
            Alg::EdDsa => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(|_| KeySetError::Generate(alg))?
                .as_ref()
                .to_vec(),
            Alg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| KeySetError::Generate(alg))?
                .as_ref()
                .to_vec(),
            Alg::Rs256 => {
                use aws_lc_rs::encoding::AsDer;
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeySetError::Generate(alg))?;
                pair.as_der()
                    .map_err(|_| KeySetError::Generate(alg))?
                    .as_ref()
                    .to_vec()
            }
        };
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        SigningKey::load(alg, KeyState::Next, now, SecretString::from(pem), None)
    }

    /// Reads a stored key and derives its public JWK and id; `kid` (when read from a file)
    /// must be the one its public key gives.
    fn load(
        alg: Alg,
        state: KeyState,
        created: OffsetDateTime,
        pem: SecretString,
        kid: Option<&str>,
    ) -> Result<SigningKey, KeySetError> {
        let bytes = pem.expose_secret().as_bytes();
        let encoding = match alg {
            Alg::EdDsa => EncodingKey::from_ed_pem(bytes),
            Alg::Es256 => EncodingKey::from_ec_pem(bytes),
            Alg::Rs256 => EncodingKey::from_rsa_pem(bytes),
        }
        .map_err(|_| KeySetError::BadKey {
            kid: kid.unwrap_or("(new)").to_owned(),
            alg,
        })?;
        let mut public =
            Jwk::from_encoding_key(&encoding, alg.jwt()).map_err(|_| KeySetError::BadKey {
                kid: kid.unwrap_or("(new)").to_owned(),
                alg,
            })?;
        let thumbprint = thumbprint(&public);
        if let Some(kid) = kid
            && kid != thumbprint
        {
            return Err(KeySetError::BadKey {
                kid: kid.to_owned(),
                alg,
            });
        }
        public.common.key_id = Some(thumbprint.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKey {
            info: KeyInfo {
                kid: thumbprint,
                alg,
                state,
                created,
            },
            pem,
            encoding,
            public,
        })
    }

    /// The key's id, as tokens name it in `kid`.
    pub fn kid(&self) -> &str {
        &self.info.kid
    }

    /// Its algorithm.
    pub fn alg(&self) -> Alg {
        self.info.alg
    }

    /// What a listing shows of it.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }
}

/// The RFC 7638 thumbprint (SHA-256, base64url), which jsonwebtoken computes for EC and RSA
/// keys but refuses for OKP ones: their required members are `crv`, `kty` and `x`.
fn thumbprint(jwk: &Jwk) -> String {
    use base64::Engine as _;
    use jsonwebtoken::jwk::AlgorithmParameters;
    use sha2::Digest as _;
    match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) => {
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, okp.x);
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(canonical.as_bytes()))
        }
        _ => jwk
            .thumbprint(ThumbprintHash::SHA256)
            .expect("EC and RSA keys have a thumbprint"),
    }
}

/// A key set, as kept in the private key file.
pub struct KeySet {
    keys: Vec<SigningKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.info))
            .finish()
    }
}

impl KeySet {
    /// A set with a current and a next key for each of `algs`.
    pub fn generate(algs: &[Alg], now: OffsetDateTime) -> Result<KeySet, KeySetError> {
        let mut set = KeySet { keys: Vec::new() };
        set.ensure(algs, now)?;
        Ok(set)
    }

    /// Adds a current and a next key for each of `algs` the set lacks; true if it changed.
    pub fn ensure(&mut self, algs: &[Alg], now: OffsetDateTime) -> Result<bool, KeySetError> {
        let mut changed = false;
        for &alg in algs {
            if self.signer(alg).is_none() {
                let mut key = SigningKey::generate(alg, now)?;
                key.info.state = KeyState::Current { since: now };
                self.keys.push(key);
                changed = true;
            }
            if !self
                .keys
                .iter()
                .any(|k| k.info.alg == alg && k.info.state == KeyState::Next)
            {
                self.keys.push(SigningKey::generate(alg, now)?);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Reads the private key file's text.
    pub fn from_json(text: &str) -> Result<KeySet, KeySetError> {
        let repr: FileRepr =
            serde_json::from_str(text).map_err(|e| KeySetError::Format(e.to_string()))?;
        if repr.version != KEYSET_VERSION {
            return Err(KeySetError::Version(repr.version));
        }
        let mut keys = Vec::with_capacity(repr.keys.len());
        for k in repr.keys {
            keys.push(SigningKey::load(
                k.alg,
                k.status,
                k.created,
                SecretString::from(k.private_key),
                Some(&k.kid),
            )?);
        }
        for alg in Alg::ALL {
            let current = keys
                .iter()
                .filter(|k| k.info.alg == alg && matches!(k.info.state, KeyState::Current { .. }))
                .count();
            if current > 1 {
                return Err(KeySetError::Format(format!(
                    "{current} current keys for {alg}; there must be at most one"
                )));
            }
        }
        Ok(KeySet { keys })
    }

    /// The private key file's text: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let repr = FileRepr {
            version: KEYSET_VERSION,
            keys: self
                .keys
                .iter()
                .map(|k| KeyRepr {
                    kid: k.info.kid.clone(),
                    alg: k.info.alg,
                    status: k.info.state,
                    created: k.info.created,
                    private_key: k.pem.expose_secret().to_owned(),
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&repr).expect("a key set serializes");
        text.push('\n');
        text
    }

    /// The key that signs with `alg`, if the set has one.
    pub fn signer(&self, alg: Alg) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.info.alg == alg && matches!(k.info.state, KeyState::Current { .. }))
    }

    /// Every key, in the order they were added.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter()
    }

    /// The algorithms whose current key has signed for `every` or longer by `now`.
    pub fn due(&self, now: OffsetDateTime, every: Duration) -> Vec<Alg> {
        self.keys
            .iter()
            .filter_map(|k| match k.info.state {
                KeyState::Current { since } if now - since >= every => Some(k.info.alg),
                _ => None,
            })
            .collect()
    }

    /// When the next rotation of any algorithm falls due, if the set signs at all.
    pub fn next_due(&self, every: Duration) -> Option<OffsetDateTime> {
        self.keys
            .iter()
            .filter_map(|k| match k.info.state {
                KeyState::Current { since } => Some(since + every),
                _ => None,
            })
            .min()
    }

    /// Makes `alg`'s next key current and a fresh key next; the key that signed until now
    /// stays published for `keep` (at least the longest lifetime of what it signed). Drops
    /// previous keys whose time is up.
    pub fn rotate(
        &mut self,
        alg: Alg,
        now: OffsetDateTime,
        keep: Duration,
    ) -> Result<(), KeySetError> {
        let fresh = SigningKey::generate(alg, now)?;
        for k in self.keys.iter_mut().filter(|k| k.info.alg == alg) {
            k.info.state = match k.info.state {
                KeyState::Current { .. } => KeyState::Previous { until: now + keep },
                KeyState::Next => KeyState::Current { since: now },
                other => other,
            };
        }
        self.keys.push(fresh);
        self.prune(now);
        // A set without a next key before the rotation (hand-edited) still ends with one
        // current key.
        self.ensure(&[alg], now)?;
        Ok(())
    }

    /// Drops the previous keys whose `until` has passed; how many went.
    pub fn prune(&mut self, now: OffsetDateTime) -> usize {
        let before = self.keys.len();
        self.keys
            .retain(|k| !matches!(k.info.state, KeyState::Previous { until } if until <= now));
        before - self.keys.len()
    }

    /// The public key set to publish at the JWKS endpoint: every key still in the set
    /// (next, current and previous), as `{"keys": [...]}`.
    pub fn jwks_json(&self) -> String {
        #[derive(Serialize)]
        struct Jwks<'a> {
            keys: Vec<&'a Jwk>,
        }
        let jwks = Jwks {
            keys: self.keys.iter().map(|k| &k.public).collect(),
        };
        serde_json::to_string(&jwks).expect("a JWKS serializes")
    }

    /// The keys a verifier accepts, by id.
    pub fn public(&self) -> PublicKeys {
        let mut keys = PublicKeys::default();
        for k in &self.keys {
            keys.insert(&k.public, k.info.alg);
        }
        keys
    }
}

/// Keys a verifier accepts, each with the one algorithm it may be used with.
#[derive(Default, Clone)]
pub struct PublicKeys {
    by_kid: HashMap<String, (Alg, DecodingKey)>,
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_kid.keys()).finish()
    }
}

impl PublicKeys {
    fn insert(&mut self, jwk: &Jwk, alg: Alg) {
        if let (Some(kid), Ok(key)) = (jwk.common.key_id.as_ref(), DecodingKey::from_jwk(jwk)) {
            self.by_kid.insert(kid.clone(), (alg, key));
        }
    }

    /// Reads a published key set (`{"keys": [...]}`), as a resource server fetches it.
    /// Keys without a `kid`, with an algorithm keygate does not accept, or with a use other
    /// than signing are left out.
    pub fn from_jwks(text: &str) -> Result<PublicKeys, KeySetError> {
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(text).map_err(|e| KeySetError::Format(e.to_string()))?;
        let mut keys = PublicKeys::default();
        for jwk in &set.keys {
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| Alg::parse(&a.to_string()));
            let use_ok = matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            );
            if let (Some(alg), true) = (alg, use_ok) {
                keys.insert(jwk, alg);
            }
        }
        Ok(keys)
    }

    /// The key `kid` names and its algorithm.
    pub(crate) fn get(&self, kid: &str) -> Option<&(Alg, DecodingKey)> {
        self.by_kid.get(kid)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.by_kid.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }
}

/// Why a key set could not be made, read or changed. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// The operating system's generator or aws-lc failed.
    #[error("could not generate a {0} key")]
    Generate(Alg),
    /// A stored key does not parse, or its id is not its thumbprint.
    #[error("signing key {kid} ({alg}) is damaged: its private key does not match its id")]
    BadKey {
        /// The id the file gives it.
        kid: String,
        /// Its algorithm.
        alg: Alg,
    },
    /// The text is not a key set.
    #[error("not a key set: {0}")]
    Format(String),
    /// Written by a newer keygate.
    #[error("key set version {0} is newer than this keygate knows ({KEYSET_VERSION})")]
    Version(u32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    #[test]
    fn a_new_set_has_a_current_and_a_next_key_per_algorithm_and_round_trips() {
        let set = KeySet::generate(&[Alg::EdDsa, Alg::Es256, Alg::Rs256], NOW).unwrap();
        assert_eq!(set.keys().count(), 6);
        for alg in Alg::ALL {
            assert!(set.signer(alg).is_some());
        }
        let text = set.to_json();
        let again = KeySet::from_json(&text).unwrap();
        assert_eq!(again.to_json(), text);
        let jwks: serde_json::Value = serde_json::from_str(&set.jwks_json()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 6);
        for k in keys {
            assert!(
                k.get("d").is_none() && k.get("p").is_none(),
                "no private part: {k}"
            );
            assert_eq!(k["use"], "sig");
        }
        assert!(!format!("{set:?}").contains("PRIVATE"));
    }

    #[test]
    fn rotation_signs_with_the_published_next_key_and_keeps_the_old_one_for_its_time() {
        let mut set = KeySet::generate(&[Alg::EdDsa], NOW).unwrap();
        let first = set.signer(Alg::EdDsa).unwrap().kid().to_owned();
        let next = set
            .keys()
            .find(|k| k.info.state == KeyState::Next)
            .unwrap()
            .kid()
            .to_owned();
        assert!(set.jwks_json().contains(&next));
        let later = NOW + Duration::days(30);
        assert_eq!(set.due(later, Duration::days(30)), vec![Alg::EdDsa]);
        set.rotate(Alg::EdDsa, later, Duration::hours(1)).unwrap();
        assert_eq!(set.signer(Alg::EdDsa).unwrap().kid(), next);
        assert!(set.jwks_json().contains(&first));
        assert!(set.due(later, Duration::days(30)).is_empty());
        assert_eq!(set.prune(later + Duration::minutes(59)), 0);
        assert_eq!(set.prune(later + Duration::hours(1)), 1);
        assert!(!set.jwks_json().contains(&first));
    }

    #[test]
    fn a_key_whose_id_is_not_its_thumbprint_is_refused() {
        let set = KeySet::generate(&[Alg::EdDsa], NOW).unwrap();
        let kid = set.signer(Alg::EdDsa).unwrap().kid().to_owned();
        let text = set.to_json().replacen(&kid, "someone-elses-kid", 1);
        assert!(matches!(
            KeySet::from_json(&text),
            Err(KeySetError::BadKey { .. })
        ));
    }
}
