//! People, without IO: what a person's credentials are and how they are checked.
//!
//! - [`password`]: Argon2id hashes at OWASP's parameters (m = 19 MiB, t = 2, p = 1), verified
//!   through a gate that lets about as many hashes run at once as there are cores (each holds
//!   19 MiB), one dummy verification for a name nobody has (so timing does not tell which
//!   accounts exist), and the rehash rule for weaker stored parameters; temporary passwords.
//! - [`totp`]: RFC 6238 codes (SHA-1, 6 digits, 30 s), accepted one step either side, and only
//!   for a step later than the last one accepted (the caller stores it, atomically).
//! - [`recovery`]: one-time recovery codes, kept as SHA-256 digests.
//! - [`names`]: what a user or group name may be.
//!
//! - [`directory`]: people as a server sees them (cached until the store's version
//!   moves), and the password and second-factor checks the verifier runs.
//! - [`admin`]: what `keygate users` and `keygate groups` do, over the store.
//!
//! Nothing here reads a clock or a file: times are passed in, and the store (kg-store) keeps
//! the records.
#![forbid(unsafe_code)]

pub mod admin;
pub mod directory;
pub mod names;
pub mod password;
pub mod recovery;
pub mod totp;

/// Random bytes, or the reason there are none.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Random(e.to_string()))?;
    Ok(b)
}

impl From<Error> for directory::Unavailable {
    fn from(e: Error) -> directory::Unavailable {
        directory::Unavailable::Hash(e)
    }
}

/// What can go wrong here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The system gave no randomness.
    #[error("no randomness: {0}")]
    Random(String),
    /// A stored hash that is not an Argon2 PHC string.
    #[error("a stored password hash is not an Argon2 PHC string: {0}")]
    BadHash(String),
    /// Hashing failed (parameters out of range).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A password that does not meet the rules.
    #[error("{0}")]
    WeakPassword(String),
    /// A name that does not meet the rules.
    #[error("{0}")]
    BadName(String),
}
