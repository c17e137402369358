//! Recovery codes: ten one-time codes a person keeps on paper for when their authenticator
//! is gone. Each is 80 random bits (16 base32 characters, shown in four groups), so a
//! digest without a salt or a slow hash is enough: nobody can search 2^80 offline.

use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// How many codes a set holds.
pub const COUNT: usize = 10;
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A set of codes to show once, and their digests to store.
pub type Set = (Vec<Zeroizing<String>>, Vec<[u8; 32]>);

/// A new set: the codes to show once, and their digests to store.
pub fn generate() -> Result<Set, Error> {
    let mut codes = Vec::with_capacity(COUNT);
    let mut digests = Vec::with_capacity(COUNT);
    for _ in 0..COUNT {
        let bytes = Zeroizing::new(crate::random::<10>()?);
        let mut code = Zeroizing::new(String::with_capacity(19));
        // 80 bits as 16 five-bit symbols.
        let mut acc: u128 = 0;
        for b in bytes.iter() {
            acc = (acc << 8) | u128::from(*b);
        }
        for i in 0..16 {
            if i > 0 && i % 4 == 0 {
                code.push('-');
            }
            let sym = ((acc >> (75 - 5 * i)) & 31) as usize;
            code.push(char::from(ALPHABET[sym]));
        }
        digests.push(digest(&code).expect("a generated code is well formed"));
        codes.push(code);
    }
    Ok((codes, digests))
}

/// The digest of what a person typed, if it has the shape of a recovery code (case, spaces
/// and dashes ignored); `None` for anything else, such as a six-digit TOTP code.
pub fn digest(typed: &str) -> Option<[u8; 32]> {
    let mut norm = Zeroizing::new(String::with_capacity(16));
    for c in typed.chars() {
        match c {
            '-' | ' ' => {}
            c if c.is_ascii_alphanumeric() => norm.push(c.to_ascii_lowercase()),
            _ => return None,
        }
    }
    if norm.len() != 16 || !norm.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    Some(Sha256::digest(norm.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_their_digests_match_what_is_typed() {
        let (codes, digests) = generate().unwrap();
        assert_eq!(codes.len(), COUNT);
        let mut seen = std::collections::HashSet::new();
        for (c, d) in codes.iter().zip(&digests) {
            assert_eq!(c.len(), 19, "{}", c.as_str());
            assert!(seen.insert(*d));
            assert_eq!(digest(c).unwrap(), *d);
            assert_eq!(digest(&c.to_uppercase().replace('-', " ")).unwrap(), *d);
        }
        assert_eq!(digest("123456"), None);
        assert_eq!(
            digest("abcd-efgh-ijkm-npq1"),
            None,
            "1 is not in the alphabet"
        );
    }
}
