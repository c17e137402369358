//! The server-side key that token digests are computed under.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

use crate::base62;

/// Number of bytes in a pepper.
pub const PEPPER_LEN: usize = 32;

/// The HMAC key that turns a token into its stored digest.
///
/// It lives in a file of its own (0600), apart from the store, so that a leaked store alone
/// cannot confirm any token. Wiped from memory on drop; `Debug` prints `Pepper([REDACTED])`.
///
/// The file form is 64 lowercase hex digits and a newline ([`Pepper::to_text`],
/// [`Pepper::from_text`]).
///
/// The HMAC's keyed state (the hash states after the key's inner and outer pad blocks) is
/// computed once, with the pepper: a digest then starts from a copy of it, which saves two of
/// the four SHA-256 blocks every verification would otherwise hash. That state is as secret
/// as the key, so it is overwritten on drop too.
pub struct Pepper {
    key: SecretBox<[u8; PEPPER_LEN]>,
    keyed: Box<Keyed>,
}

/// HMAC-SHA-256 keyed with the pepper, before any message. `hmac` does not wipe its state,
/// so this does, on drop.
struct Keyed(Hmac<Sha256>);

impl Keyed {
    fn new(key: &[u8; PEPPER_LEN]) -> Box<Keyed> {
        Box::new(Keyed(
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length"),
        ))
    }
}

impl Drop for Keyed {
    fn drop(&mut self) {
        // Overwritten in place with the state of an all-zero key; `black_box` keeps the
        // compiler from dropping the store as dead (no `unsafe` volatile write needed).
        self.0 = Hmac::<Sha256>::new_from_slice(&[0u8; PEPPER_LEN])
            .expect("HMAC accepts keys of any length");
        std::hint::black_box(&self.0);
    }
}

impl Pepper {
    /// A new random pepper from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate() -> Pepper {
        Pepper::wrap(SecretBox::init_with_mut(|bytes: &mut [u8; PEPPER_LEN]| {
            base62::fill_random(bytes)
        }))
    }

    fn wrap(key: SecretBox<[u8; PEPPER_LEN]>) -> Pepper {
        let keyed = Keyed::new(key.expose_secret());
        Pepper { key, keyed }
    }

    /// Wraps pepper bytes obtained elsewhere (e.g. a systemd credential).
    pub fn from_bytes(mut bytes: [u8; PEPPER_LEN]) -> Pepper {
        let pepper = Pepper::wrap(SecretBox::init_with_mut(|b: &mut [u8; PEPPER_LEN]| {
            *b = bytes
        }));
        zeroize::Zeroize::zeroize(&mut bytes);
        pepper
    }

    /// The raw bytes, for the file layer.
    pub fn as_bytes(&self) -> &[u8; PEPPER_LEN] {
        self.key.expose_secret()
    }

    /// The pepper file's text: 64 lowercase hex digits and a newline.
    pub fn to_text(&self) -> SecretString {
        let mut s = String::with_capacity(2 * PEPPER_LEN + 1);
        for b in self.as_bytes() {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s.push('\n');
        SecretString::from(s)
    }

    /// Reads a pepper file's text: 64 hex digits (either case), surrounding whitespace allowed.
    ///
    /// The error never contains the text.
    pub fn from_text(text: &str) -> Result<Pepper, PepperError> {
        let hex = text.trim_ascii().as_bytes();
        if hex.len() != 2 * PEPPER_LEN {
            return Err(PepperError::Length { found: hex.len() });
        }
        // Decoded straight into the secret box, which wipes itself if this fails.
        let mut all_hex = true;
        let key = SecretBox::init_with_mut(|b: &mut [u8; PEPPER_LEN]| {
            for (slot, pair) in b.iter_mut().zip(hex.chunks_exact(2)) {
                match (hex_value(pair[0]), hex_value(pair[1])) {
                    (Some(hi), Some(lo)) => *slot = hi << 4 | lo,
                    _ => all_hex = false,
                }
            }
        });
        if all_hex {
            Ok(Pepper::wrap(key))
        } else {
            Err(PepperError::NotHex)
        }
    }

    /// HMAC-SHA-256 of `token` under this pepper, from the precomputed keyed state: how
    /// the store keeps API tokens, and kg-oauth keeps client secrets and refresh tokens.
    pub fn digest(&self, token: &str) -> [u8; 32] {
        let mut mac = self.keyed.0.clone();
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

/// A pepper file whose text is not a pepper. The text itself is never included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PepperError {
    /// Not 64 characters once surrounding whitespace is removed.
    #[error("the pepper must be 64 hex digits, found {found} characters")]
    Length {
        /// How many characters were there.
        found: usize,
    },
    /// 64 characters, but not all hex digits.
    #[error("the pepper must be 64 hex digits, found other characters")]
    NotHex,
}

impl PepperError {
    /// A one-line recommendation for the user.
    pub fn hint(&self) -> Option<String> {
        Some(
            "restore the pepper file from a backup; a new pepper makes every issued token unknown"
                .to_owned(),
        )
    }
}

pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) const fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_precomputed_keyed_state_gives_the_plain_hmac() {
        let pepper = Pepper::from_bytes([0x0b; PEPPER_LEN]);
        for token in ["", "kg_0123456789AB_secret", &"x".repeat(200)] {
            let mut fresh = Hmac::<Sha256>::new_from_slice(&[0x0b; PEPPER_LEN]).unwrap();
            fresh.update(token.as_bytes());
            let want: [u8; 32] = fresh.finalize().into_bytes().into();
            assert_eq!(pepper.digest(token), want);
            // The state is not consumed: the same input gives the same digest again.
            assert_eq!(pepper.digest(token), want);
        }
        let text = Pepper::from_text(pepper.to_text().expose_secret()).unwrap();
        assert_eq!(text.digest("abc"), pepper.digest("abc"));
    }
}
