//! base62 with the alphabet `0-9A-Za-z`: random strings and the fixed-width checksum.

use zeroize::Zeroizing;

/// The alphabet, in value order: `0` is 0, `Z` is 35, `z` is 61.
pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The largest multiple of 62 that fits in a byte's range (62 * 4). Bytes at or above it are
/// rejected, so every character is equally likely: `b % 62` on all 256 values would favour
/// the first eight characters.
const ACCEPT_BELOW: u8 = 248;

/// Number of base62 characters a CRC32 is written with: 62^6 > 2^32 > 62^5.
pub(crate) const CHECKSUM_LEN: usize = 6;

#[cfg(test)]
pub(crate) fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether every byte is base62, looking at all of them: a table lookup per byte and no
/// early exit, so the time taken depends only on the length. With per-character branches,
/// random token text made the branch predictor miss on every other character, and verifying
/// a token cost a third more for a server with many clients than for one with a few.
pub(crate) fn all_base62(bytes: &[u8]) -> bool {
    static TABLE: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < ALPHABET.len() {
            t[ALPHABET[i] as usize] = true;
            i += 1;
        }
        t
    };
    bytes.iter().fold(true, |ok, &b| ok & TABLE[usize::from(b)])
}

/// Appends `n` uniformly random base62 characters to `out`.
///
/// # Panics
/// If the operating system's random number generator fails (as `age` and `rand::OsRng` do):
/// there is no safe way to go on without randomness.
pub(crate) fn push_random(out: &mut String, n: usize) {
    push_from(out, n, &mut fill_random);
}

/// [`push_random`] with the bytes from `fill` instead of the operating system: a keyed,
/// deterministic stream gives the same characters again ([`crate::derive`]).
pub(crate) fn push_from(out: &mut String, n: usize, fill: &mut dyn FnMut(&mut [u8])) {
    // The bytes decide secret characters, so the buffer is wiped when dropped.
    let mut buf = Zeroizing::new([0u8; 64]);
    let mut pos = buf.len();
    let mut produced = 0;
    while produced < n {
        if pos == buf.len() {
            fill(&mut buf[..]);
            pos = 0;
        }
        let b = buf[pos];
        pos += 1;
        if b < ACCEPT_BELOW {
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
            produced += 1;
        }
    }
}

/// Fills `buf` from the operating system's random number generator.
///
/// # Panics
/// If the generator fails; see [`push_random`].
pub(crate) fn fill_random(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {err}");
    }
}

/// Encodes `value` as exactly six base62 characters, most significant first.
pub(crate) fn encode_checksum(value: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    let mut v = value;
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 62) as usize];
        v /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_fixed_width_and_big_endian() {
        assert_eq!(&encode_checksum(0), b"000000");
        assert_eq!(&encode_checksum(61), b"00000z");
        assert_eq!(&encode_checksum(62), b"000010");
        // The largest CRC still fits in six characters: decode it back.
        let enc = encode_checksum(u32::MAX);
        let decoded = enc.iter().fold(0u64, |acc, &c| {
            acc * 62 + ALPHABET.iter().position(|&a| a == c).unwrap() as u64
        });
        assert_eq!(decoded, u64::from(u32::MAX));
    }

    #[test]
    fn random_characters_are_base62_and_cover_the_alphabet() {
        let mut s = String::new();
        push_random(&mut s, 62 * 200);
        assert_eq!(s.len(), 62 * 200);
        assert!(s.bytes().all(is_base62));
        assert!(all_base62(s.as_bytes()));
        for b in 0..=255u8 {
            assert_eq!(all_base62(&[b]), is_base62(b), "{b}");
        }
        for &c in ALPHABET {
            assert!(s.as_bytes().contains(&c), "{} never drawn", c as char);
        }
    }
}
