//! Request ids: a random per-process prefix and a counter, `5f3a9c01-17`.
//!
//! One source for every id the server hands out, so an audit line and the correlation id on
//! a gateway's error page can never collide and always read alike.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Hands out request ids.
#[derive(Debug)]
pub struct RequestIds {
    /// The random prefix, as 8 hex digits.
    prefix: [u8; 8],
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut salt = [0u8; 4];
        // Ids need only be distinct across restarts, not secret: a failure leaves zeros.
        let _ = getrandom::fill(&mut salt);
        RequestIds {
            prefix: hex8(u32::from_le_bytes(salt)),
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// Appends the next id to `out`, without allocating.
    pub fn push_next(&self, out: &mut Vec<u8>) {
        let n = self.next.fetch_add(1, Relaxed);
        out.extend_from_slice(&self.prefix);
        out.push(b'-');
        push_u64(out, n);
    }

    /// The next id.
    pub fn next(&self) -> String {
        let mut out = Vec::with_capacity(24);
        self.push_next(&mut out);
        String::from_utf8(out).expect("hex digits, a dash and decimal digits")
    }
}

/// Appends `n` in decimal, without `core::fmt` (a visible cost on the denial path).
pub fn push_u64(b: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&buf[i..]);
}

fn hex8(n: u32) -> [u8; 8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, d) in out.iter_mut().enumerate() {
        *d = HEX[((n >> ((7 - i) * 4)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_prefix_and_a_counter() {
        assert_eq!(&hex8(0x0123_abcd), b"0123abcd");
        let ids = RequestIds::default();
        let (a, b) = (ids.next(), ids.next());
        let (pa, na) = a.split_once('-').unwrap();
        let (pb, nb) = b.split_once('-').unwrap();
        assert_eq!(pa, pb);
        assert_eq!(pa.len(), 8);
        assert_eq!((na, nb), ("1", "2"));
        let mut v = Vec::new();
        push_u64(&mut v, 18_446_744_073_709_551_615);
        assert_eq!(v, b"18446744073709551615");
    }
}
