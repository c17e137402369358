//! The token checksum, written again from the format's description (kg-tokens' crate docs)
//! rather than taken from kg-tokens: as an oracle it must not share the code it checks.

/// Replaces a token's last 6 characters with the checksum of the rest: CRC32 (IEEE) in
/// base62, most significant digit first, as kg-tokens writes it. A token with a changed
/// secret is then well-formed: a real guess, not a typo.
pub fn with_checksum(token: &str) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body = &token[..token.len() - 6];
    let mut crc = 0xffff_ffffu32;
    for &b in body.as_bytes() {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut n = u64::from(!crc);
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = B62[(n % 62) as usize];
        n /= 62;
    }
    format!("{body}{}", String::from_utf8_lossy(&digits))
}
