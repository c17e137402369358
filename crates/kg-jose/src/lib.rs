//! keygate's JOSE: signing key sets that rotate, the published key set (JWKS), and JWTs
//! signed and verified under the rules RFC 8725 and RFC 9068 set for access tokens.
//!
//! No IO and no clock: the key set is text in and text out (kg-oauth publishes it through
//! kg-fs), and every decision that depends on time takes `now`.
//!
//! # Keys and their rotation
//!
//! A [`KeySet`] holds, for each algorithm in use, one `current` key (the one that signs),
//! one `next` key (already published in the JWKS, not yet signing) and any number of
//! `previous` keys (published until their `until`, so tokens they signed keep verifying).
//! [`KeySet::rotate`] makes `next` current and a fresh key `next`: because the new signer was
//! in the JWKS for a whole rotation period before it signs, a resource server that caches the
//! key set for less than that period always has the key a token names. Auth0 works this way;
//! Dex rotates without pre-publishing and tsidp cannot rotate (the reference's table).
//!
//! Algorithms: `EdDSA` over Ed25519 (the default: cheapest to sign and to verify on aws-lc,
//! 15 µs and 35-45 µs here), `ES256`, and `RS256` (what OpenID Connect discovery requires
//! for ID tokens; signing costs about 0.8 ms). The header says `EdDSA`, not RFC 9864's
//! `Ed25519`, because jsonwebtoken 12 knows only the former, as do most verifiers today.
//!
//! # Verifying
//!
//! [`verify`] takes the algorithm from the key that `kid` names, never from the header
//! (a header whose `alg` disagrees is refused), refuses `none` (no key has it), refuses the
//! headers that let a token choose its own key (`jku`, `x5u`, `jwk`, `x5c`), checks the
//! explicit type (`typ`, RFC 8725 §3.11), the issuer, the audience, and the times within a
//! bounded skew. jsonwebtoken does the signature; everything about time is done here, with
//! the clock passed in, so its own reading of the system clock is switched off.
#![forbid(unsafe_code)]

mod jwt;
mod keys;

pub use jwt::{
    AccessClaims, Audience, JwtError, MAX_JWT_LEN, OIDC_SCOPES, Rules, SKEW, TYP_ACCESS, new_jti,
    sign, verify,
};
pub use keys::{Alg, KeyInfo, KeySet, KeySetError, KeyState, PublicKeys, SigningKey};
