//! The token format: prefix, id, secret and checksum; generating, parsing and the scanner regex.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::base62::{self, CHECKSUM_LEN};

/// Number of base62 characters in a token id.
pub const ID_LEN: usize = 12;
/// Number of random base62 characters in a token's secret part (about 190.5 bits).
pub const SECRET_LEN: usize = 32;

/// The prefix every token starts with, before the first `_`.
///
/// Two to ten lowercase ASCII letters or digits; the default is `kg`. A store has one prefix,
/// so a secret scanner can be given one pattern per deployment ([`format_regex`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    /// The prefix used when a store does not choose one.
    pub const DEFAULT: &'static str = "kg";

    /// Checks and wraps a prefix.
    pub fn new(prefix: &str) -> Result<Prefix, PrefixError> {
        let ok_len = (2..=10).contains(&prefix.len());
        let ok_chars = prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok_len && ok_chars {
            Ok(Prefix(prefix.to_owned()))
        } else {
            Err(PrefixError {
                prefix: prefix.to_owned(),
            })
        }
    }

    /// The prefix text, without the `_` that follows it in a token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Prefix(Prefix::DEFAULT.to_owned())
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Prefix").field(&self.0).finish()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Prefix::new(s)
    }
}

/// A token prefix that is not 2-10 lowercase letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token prefix '{prefix}': it must be 2 to 10 lowercase letters or digits")]
pub struct PrefixError {
    /// The rejected prefix (a prefix is not secret).
    pub prefix: String,
}

/// Why a presented token was not accepted.
///
/// [`Reason::as_str`] gives stable snake-case codes for logs and metrics; `Display` gives a
/// short sentence for people. Neither ever includes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reason {
    /// Not shaped like one of this store's tokens (wrong prefix, length or characters).
    #[error("the token is malformed")]
    Malformed,
    /// Shaped right, but the checksum does not match: a typo or a truncated copy.
    #[error("the token's checksum does not match")]
    BadChecksum,
    /// Well formed, but no entry has this id, or the secret does not match the entry.
    #[error("the token is unknown")]
    Unknown,
    /// The token is past its expiry, or was rotated and its grace period is over.
    #[error("the token has expired")]
    Expired,
    /// The token was revoked.
    #[error("the token has been revoked")]
    Revoked,
}

impl Reason {
    /// Every reason, in verification order.
    pub const ALL: [Reason; 5] = [
        Reason::Malformed,
        Reason::BadChecksum,
        Reason::Unknown,
        Reason::Expired,
        Reason::Revoked,
    ];

    /// A stable lower-case code: `malformed`, `bad_checksum`, `unknown`, `expired`, `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::BadChecksum => "bad_checksum",
            Reason::Unknown => "unknown",
            Reason::Expired => "expired",
            Reason::Revoked => "revoked",
        }
    }
}

/// A whole token (`kg_<id>_<secret><checksum>`), held as a secret.
///
/// The text is wiped from memory when the value is dropped and never shown by `Debug`.
/// [`TokenSecret::expose_secret`] is the one way to read it: call it only to hand the token
/// to the person or program that owns it.
pub struct TokenSecret(SecretString);

impl TokenSecret {
    /// The whole token text.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<SecretString> for TokenSecret {
    /// Wraps token text read from elsewhere (a client's token file, a prompt).
    fn from(s: SecretString) -> Self {
        TokenSecret(s)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret([REDACTED])")
    }
}

/// A token that passed [`parse`]: the right prefix, shape and checksum.
///
/// It borrows the text it was parsed from, so parsing copies no secret material. `Debug`
/// shows the id and hides the secret.
#[derive(Clone, Copy)]
pub struct ParsedToken<'a> {
    token: &'a str,
    /// Byte offset of the id (prefix length + 1).
    id_start: usize,
}

impl<'a> ParsedToken<'a> {
    /// The token's id: 12 base62 characters, not secret, shown in listings and logs.
    pub fn id(&self) -> &'a str {
        &self.token[self.id_start..self.id_start + ID_LEN]
    }

    /// The 32 random characters after the id (without the checksum).
    pub fn expose_secret(&self) -> &'a str {
        let start = self.id_start + ID_LEN + 1;
        &self.token[start..start + SECRET_LEN]
    }

    /// The whole token text, which is what the store's digest is computed over.
    pub fn expose_token(&self) -> &'a str {
        self.token
    }
}

impl fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("id", &self.id())
            .field("secret", &format_args!("[REDACTED]"))
            .finish()
    }
}

/// Generates a new token with `prefix`; returns its id and the whole token.
///
/// The id and the secret are drawn from the operating system's random number generator by
/// rejection sampling, so every base62 character is equally likely.
///
/// # Panics
/// If the operating system's random number generator fails.
pub fn generate(prefix: &Prefix) -> (String, TokenSecret) {
    let p = prefix.as_str().len();
    let len = p + 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
    // Exactly the final capacity: the String never reallocates (which would leave an unwiped
    // copy of the secret behind) and becomes a `Box<str>` without copying.
    let mut s = String::with_capacity(len);
    s.push_str(prefix.as_str());
    s.push('_');
    base62::push_random(&mut s, ID_LEN);
    let id = s[p + 1..].to_owned();
    s.push('_');
    base62::push_random(&mut s, SECRET_LEN);
    let checksum = base62::encode_checksum(crc32fast::hash(s.as_bytes()));
    s.extend(checksum.iter().map(|&b| char::from(b)));
    debug_assert_eq!(s.len(), len);
    debug_assert_eq!(s.capacity(), len);
    (id, TokenSecret(SecretString::from(s)))
}

/// A token of `prefix` determined by `seed` (a secret of 32 bytes): the same seed gives the
/// same token. For a successor that must be given again to an identical retry without being
/// stored in the clear: the seed is a keyed digest of its predecessor. The characters come
/// from SHA-256(seed, counter) by the same rejection sampling as [`generate`].
pub fn derive(prefix: &Prefix, seed: &[u8; 32]) -> (String, TokenSecret) {
    use sha2::Digest as _;
    let mut counter = 0u64;
    let mut fill = |buf: &mut [u8]| {
        for chunk in buf.chunks_mut(32) {
            let mut h = sha2::Sha256::new();
            h.update(seed);
            h.update(counter.to_be_bytes());
            counter += 1;
            let block = h.finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    };
    let p = prefix.as_str().len();
    let len = p + 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
    let mut s = String::with_capacity(len);
    s.push_str(prefix.as_str());
    s.push('_');
    base62::push_from(&mut s, ID_LEN, &mut fill);
    let id = s[p + 1..].to_owned();
    s.push('_');
    base62::push_from(&mut s, SECRET_LEN, &mut fill);
    let checksum = base62::encode_checksum(crc32fast::hash(s.as_bytes()));
    s.extend(checksum.iter().map(|&b| char::from(b)));
    (id, TokenSecret(SecretString::from(s)))
}

/// Checks that `token` is one of `prefix`'s tokens: shape first, then the checksum.
///
/// The input is taken as is: the caller removes `Bearer ` and surrounding whitespace. Errors
/// are [`Reason::Malformed`] or [`Reason::BadChecksum`]; parsing never looks at a store.
pub fn parse<'a>(token: &'a str, prefix: &Prefix) -> Result<ParsedToken<'a>, Reason> {
    let rest = token
        .strip_prefix(prefix.as_str())
        .and_then(|r| r.strip_prefix('_'))
        .ok_or(Reason::Malformed)?
        .as_bytes();
    if rest.len() != ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
        || !(base62::all_base62(&rest[..ID_LEN])
            & (rest[ID_LEN] == b'_')
            & base62::all_base62(&rest[ID_LEN + 1..]))
    {
        return Err(Reason::Malformed);
    }
    // All ASCII from here, so byte offsets are char boundaries.
    let body = token.len() - CHECKSUM_LEN;
    let expected = base62::encode_checksum(crc32fast::hash(&token.as_bytes()[..body]));
    if expected[..] != token.as_bytes()[body..] {
        return Err(Reason::BadChecksum);
    }
    Ok(ParsedToken {
        token,
        id_start: prefix.as_str().len() + 1,
    })
}

/// A regular expression that matches exactly `prefix`'s tokens, for secret scanners.
///
/// Word boundaries at both ends keep it from matching inside a longer word, e.g.
/// `\bkg_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b`. It checks the shape only; a scanner that wants
/// to drop near-misses verifies the checksum with [`parse`].
pub fn format_regex(prefix: &Prefix) -> String {
    // A valid prefix is [a-z0-9]+, so it needs no escaping.
    format!(
        r"\b{}_[0-9A-Za-z]{{{ID_LEN}}}_[0-9A-Za-z]{{{}}}\b",
        prefix.as_str(),
        SECRET_LEN + CHECKSUM_LEN
    )
}

/// Checks that `id` looks like a token id (12 base62 characters).
pub(crate) fn is_valid_id(id: &str) -> bool {
    id.len() == ID_LEN && base62::all_base62(id.as_bytes())
}
