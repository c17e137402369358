//! JWTs: signing with a key of the set, and verifying under explicit rules.

use std::collections::HashSet;

use base64::Engine as _;
use jsonwebtoken::{Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::keys::{PublicKeys, SigningKey};

/// The explicit type of an RFC 9068 access token.
pub const TYP_ACCESS: &str = "at+jwt";

/// How far a token's times may be off the verifier's clock, in seconds (node-oidc-provider
/// allows 15 s, jsonwebtoken 60 s by default).
pub const SKEW: i64 = 30;

/// The scopes of OpenID Connect itself: granted to any person's client that asks, and so
/// never matched against keygate's own scope rules (a path rule naming `openid` grants
/// nothing to a token that carries it).
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// Longest token [`verify`] reads: a keygate access token is about 450 bytes; anything far
/// longer is refused before it is decoded.
pub const MAX_JWT_LEN: usize = 8 * 1024;

/// An audience: one string or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience, written as a string.
    One(String),
    /// Several, written as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is among them.
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(all) => all.iter().any(|a| a == aud),
        }
    }

    /// The first audience (the one a single-audience token names).
    pub fn first(&self) -> Option<&str> {
        match self {
            Audience::One(a) => Some(a),
            Audience::Many(all) => all.first().map(String::as_str),
        }
    }
}

/// The claims of an RFC 9068 access token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer URL.
    pub iss: String,
    /// Who the token is about: the person, or the client itself for client credentials.
    pub sub: String,
    /// The resource servers it is for.
    pub aud: Audience,
    /// The client it was issued to.
    pub client_id: String,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Not before, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The token's unique id.
    pub jti: String,
    /// Space-separated scopes (absent when none were granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The grant a person's sign-in made (keygate's own claim): revoking the grant, or
    /// reusing one of its refresh tokens, ends its access tokens too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The id of the API token the person signed in with (keygate's own claim; a token id
    /// is not secret): the access token stands only while that token does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
}

/// What a token must satisfy, besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The explicit type it must carry (`typ`), compared without case and with an
    /// optional `application/` prefix (RFC 8725 §3.11).
    pub typ: &'a str,
    /// The one issuer accepted.
    pub issuer: &'a str,
    /// The audiences accepted; the token must name at least one.
    pub audiences: &'a [&'a str],
    /// The verifier's clock.
    pub now: OffsetDateTime,
}

/// Why a token was refused; `as_str` is the word the audit log and metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts with JSON inside, or longer than [`MAX_JWT_LEN`].
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// A header that lets a token choose its own key (`jku`, `x5u`, `jwk`, `x5c`) or a
    /// critical extension.
    #[error("the token's header names its own key")]
    ForbiddenHeader,
    /// `typ` is not the one expected (an ID token presented as an access token).
    #[error("the token has the wrong type")]
    WrongType,
    /// No `kid`, or one not in the key set.
    #[error("the token names no key keygate has")]
    UnknownKey,
    /// The header's `alg` is not the algorithm of the key it names.
    #[error("the token's algorithm is not its key's")]
    WrongAlgorithm,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// Another issuer's token.
    #[error("the token is from another issuer")]
    WrongIssuer,
    /// For another audience.
    #[error("the token is for another audience")]
    WrongAudience,
    /// Past `exp` (beyond the skew).
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` in the future (beyond the skew).
    #[error("the token is not valid yet")]
    NotYetValid,
}

impl JwtError {
    /// One word for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed",
            JwtError::ForbiddenHeader => "forbidden_header",
            JwtError::WrongType => "wrong_type",
            JwtError::UnknownKey => "unknown_key",
            JwtError::WrongAlgorithm => "wrong_algorithm",
            JwtError::BadSignature => "bad_signature",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
        }
    }
}

/// The registered claims [`verify`] checks, read from the same payload as the caller's type.
#[derive(Deserialize)]
struct Registered {
    iss: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Signs `claims` with `key`, with the header `{"alg", "typ", "kid"}`.
pub fn sign<T: Serialize>(key: &SigningKey, typ: &str, claims: &T) -> String {
    let mut header = Header::new(key.alg().jwt());
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding())
        .expect("a loaded key signs serializable claims")
}

/// A fresh token id: 16 random bytes, base64url.
pub fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Verifies `token` against `keys` and `rules` and returns its claims.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &PublicKeys,
    rules: &Rules<'_>,
) -> Result<T, JwtError> {
    if token.len() > MAX_JWT_LEN || token.bytes().filter(|&b| b == b'.').count() != 2 {
        return Err(JwtError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
    if header.jku.is_some()
        || header.x5u.is_some()
        || header.jwk.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(JwtError::ForbiddenHeader);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| typ_matches(t, rules.typ))
    {
        return Err(JwtError::WrongType);
    }
    let (alg, key) = header
        .kid
        .as_deref()
        .and_then(|kid| keys.get(kid))
        .ok_or(JwtError::UnknownKey)?;
    if header.alg != alg.jwt() {
        return Err(JwtError::WrongAlgorithm);
    }
    let mut validation = Validation::new(alg.jwt());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::InvalidAlgorithm => JwtError::WrongAlgorithm,
            _ => JwtError::Malformed,
        }
    })?;
    let registered: Registered =
        serde_json::from_value(data.claims.clone()).map_err(|_| JwtError::Malformed)?;
    if registered.iss != rules.issuer {
        return Err(JwtError::WrongIssuer);
    }
    if !rules.audiences.iter().any(|a| registered.aud.contains(a)) {
        return Err(JwtError::WrongAudience);
    }
    let now = rules.now.unix_timestamp();
    if now >= registered.exp.saturating_add(SKEW) {
        return Err(JwtError::Expired);
    }
    let early = |t: Option<i64>| t.is_some_and(|t| t > now.saturating_add(SKEW));
    if early(registered.nbf) || early(registered.iat) {
        return Err(JwtError::NotYetValid);
    }
    serde_json::from_value(data.claims).map_err(|_| JwtError::Malformed)
}

/// RFC 8725 §3.11: `typ` compares without case, and `application/at+jwt` is `at+jwt`.
fn typ_matches(found: &str, expected: &str) -> bool {
    let found = found
        .strip_prefix("application/")
        .or_else(|| found.strip_prefix("APPLICATION/"))
        .unwrap_or(found);
    found.eq_ignore_ascii_case(expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Alg, KeySet};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);
    const ISS: &str = "https://auth.example";

    fn claims(now: OffsetDateTime, ttl: i64) -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "kgc_svc".into(),
            aud: Audience::One(ISS.into()),
            client_id: "kgc_svc".into(),
            exp: now.unix_timestamp() + ttl,
            iat: now.unix_timestamp(),
            nbf: None,
            jti: new_jti(),
            scope: Some("deploy".into()),
            gid: None,
            tid: None,
        }
    }

    fn rules(now: OffsetDateTime) -> Rules<'static> {
        Rules {
            typ: TYP_ACCESS,
            issuer: ISS,
            audiences: &[ISS],
            now,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn reheader(token: &str, header: &str) -> String {
        let rest = token.split_once('.').unwrap().1;
        format!("{}.{rest}", b64(header.as_bytes()))
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        let set = KeySet::generate(&Alg::ALL, NOW).unwrap();
        for alg in Alg::ALL {
            let token = sign(set.signer(alg).unwrap(), TYP_ACCESS, &claims(NOW, 600));
            let got: AccessClaims = verify(&token, &set.public(), &rules(NOW)).unwrap();
            assert_eq!(got.scope.as_deref(), Some("deploy"));
        }
    }

    #[test]
    fn the_attacks_on_a_jwt_header_are_refused() {
        let set = KeySet::generate(&[Alg::EdDsa, Alg::Rs256], NOW).unwrap();
        let ed = set.signer(Alg::EdDsa).unwrap();
        let token = sign(ed, TYP_ACCESS, &claims(NOW, 600));
        let keys = set.public();
        let kid = ed.kid();
        let refused = |t: &str| verify::<AccessClaims>(t, &keys, &rules(NOW)).unwrap_err();
        // alg none with the signature dropped.
        let none = reheader(
            &token,
            &format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#),
        );
        let none = format!("{}.", none.rsplit_once('.').unwrap().0);
        assert_eq!(refused(&none), JwtError::Malformed);
        // The header claims another algorithm than the key's.
        let confused = reheader(
            &token,
            &format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}"}}"#),
        );
        assert_eq!(refused(&confused), JwtError::WrongAlgorithm);
        // The token brings its own key.
        for extra in [
            r#""jku":"https://evil.example/jwks""#,
            r#""x5u":"https://evil.example/cert""#,
            r#""jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        ] {
            let t = reheader(
                &token,
                &format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}",{extra}}}"#),
            );
            assert_eq!(refused(&t), JwtError::ForbiddenHeader, "{extra}");
        }
        // No kid, or one that is not ours.
        let t = reheader(&token, r#"{"alg":"EdDSA","typ":"at+jwt"}"#);
        assert_eq!(refused(&t), JwtError::UnknownKey);
        // An ID token (or any JWT) presented as an access token.
        let t = reheader(
            &token,
            &format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#),
        );
        assert_eq!(refused(&t), JwtError::WrongType);
        // A changed payload.
        let (head, rest) = token.split_once('.').unwrap();
        let sig = rest.split_once('.').unwrap().1;
        let mut forged = claims(NOW, 600);
        forged.scope = Some("admin".into());
        let payload = b64(serde_json::to_string(&forged).unwrap().as_bytes());
        assert_eq!(
            refused(&format!("{head}.{payload}.{sig}")),
            JwtError::BadSignature
        );
        // The same header with `application/` and another case is still the type.
        let t = sign(ed, "application/AT+JWT", &claims(NOW, 600));
        assert!(verify::<AccessClaims>(&t, &keys, &rules(NOW)).is_ok());
    }

    #[test]
    fn issuer_audience_and_times_are_checked_with_bounded_skew() {
        let set = KeySet::generate(&[Alg::EdDsa], NOW).unwrap();
        let key = set.signer(Alg::EdDsa).unwrap();
        let keys = set.public();
        let check = |c: &AccessClaims, now| {
            verify::<AccessClaims>(&sign(key, TYP_ACCESS, c), &keys, &rules(now)).map(|_| ())
        };
        let c = claims(NOW, 600);
        assert_eq!(
            check(&c, NOW + time::Duration::seconds(600 + SKEW - 1)),
            Ok(())
        );
        assert_eq!(
            check(&c, NOW + time::Duration::seconds(600 + SKEW)),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check(&c, NOW - time::Duration::seconds(SKEW + 1)),
            Err(JwtError::NotYetValid)
        );
        let mut other = c.clone();
        other.iss = "https://evil.example".into();
        assert_eq!(check(&other, NOW), Err(JwtError::WrongIssuer));
        let mut other = c.clone();
        other.aud = Audience::Many(vec!["https://api.example".into()]);
        assert_eq!(check(&other, NOW), Err(JwtError::WrongAudience));
        // A mistyped `exp` is not skipped (CVE-2026-25537 in jsonwebtoken < 10.3).
        let text = serde_json::to_string(&c).unwrap().replace(
            &format!("\"exp\":{}", c.exp),
            &format!("\"exp\":\"{}\"", c.exp),
        );
        let t = sign(
            key,
            TYP_ACCESS,
            &serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        );
        assert_eq!(
            verify::<AccessClaims>(&t, &keys, &rules(NOW)).unwrap_err(),
            JwtError::Malformed
        );
    }
}
