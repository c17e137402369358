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
pub struct Pepper(SecretBox<[u8; PEPPER_LEN]>);

impl Pepper {
    /// A new random pepper from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate() -> Pepper {
        Pepper(SecretBox::init_with_mut(|bytes: &mut [u8; PEPPER_LEN]| {
            base62::fill_random(bytes)
        }))
    }

    /// Wraps pepper bytes obtained elsewhere (e.g. a systemd credential).
    pub fn from_bytes(mut bytes: [u8; PEPPER_LEN]) -> Pepper {
        let pepper = Pepper(SecretBox::init_with_mut(|b: &mut [u8; PEPPER_LEN]| {
            *b = bytes
        }));
        zeroize::Zeroize::zeroize(&mut bytes);
        pepper
    }

    /// The raw bytes, for the file layer.
    pub fn as_bytes(&self) -> &[u8; PEPPER_LEN] {
        self.0.expose_secret()
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
        let pepper = Pepper(SecretBox::init_with_mut(|b: &mut [u8; PEPPER_LEN]| {
            for (slot, pair) in b.iter_mut().zip(hex.chunks_exact(2)) {
                match (hex_value(pair[0]), hex_value(pair[1])) {
                    (Some(hi), Some(lo)) => *slot = hi << 4 | lo,
                    _ => all_hex = false,
                }
            }
        }));
        if all_hex {
            Ok(pepper)
        } else {
            Err(PepperError::NotHex)
        }
    }

    /// HMAC-SHA-256 of `token` under this pepper.
    pub(crate) fn digest(&self, token: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.as_bytes())
            .expect("HMAC accepts keys of any length");
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
