//! keygate's OAuth 2.0 authorization server.
//!
//! - [`clients`]: registration rules, secrets (stored as peppered HMACs, like API tokens),
//!   rotation with a grace period, revocation and authentication.
//! - [`redirect`]: which redirect URIs may be registered and when one matches (loopback
//!   literals on any port, RFC 8252 §7.3; exact otherwise).
//! - [`keyring`]: the signing key set on disk as kg-fs generations, rotated on schedule.
//! - [`provider`]: the endpoints (discovery, JWKS, token, introspection, revocation).
//!
//! Access tokens are RFC 9068 JWTs signed by kg-jose; whether one is good is decided by
//! kg-verifier (to which [`provider::Provider::new`] hands the keys and the revocations),
//! never here.
#![forbid(unsafe_code)]

pub mod clients;
pub mod keyring;
pub mod people;
pub mod provider;
pub mod redirect;

pub use provider::{Provider, Settings};
