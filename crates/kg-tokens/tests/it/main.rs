//! kg-tokens's integration tests: one binary (`tests/it`), one module per concern.

// The store on disk: transactions under the lock, the pepper, reloads, corrupt files.
mod files;
// The token format: generation, parsing, the checksum, the scanner regex, redaction.
mod format;
// age helpers: round trips, interop with Go `age`, truncated and tampered input.
mod seal;
// The store model: lifecycle under a fixed clock, verification, the JSON form.
mod store;

/// The base62 alphabet, as the crate docs write it.
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `<prefix>_<id>_<secret><checksum>` with the checksum computed as the crate docs say,
/// without the crate's code.
fn spec_token(prefix: &str, id: &str, secret: &str) -> String {
    let body = format!("{prefix}_{id}_{secret}");
    let mut crc = u64::from(crc32fast::hash(body.as_bytes()));
    let mut checksum = [0u8; 6];
    for slot in checksum.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    body + std::str::from_utf8(&checksum).unwrap()
}
