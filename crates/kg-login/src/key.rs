//! The sign-in key: 32 random bytes under which sign-in signs its CSRF cookies and sessions
//! sign their cookies and derive their CSRF values, each use under a label of its own. The
//! server keeps it in a private file (`private/login.key`), so sessions and forms survive
//! a restart; a new key ends them all.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// HMAC-SHA-256.
pub type HmacSha256 = Hmac<Sha256>;

/// The sign-in key.
pub struct ProcessKey(Zeroizing<[u8; 32]>);

/// The length of a key.
pub const KEY_LEN: usize = 32;

impl ProcessKey {
    /// A fresh random key.
    pub fn new() -> ProcessKey {
        let mut key = Zeroizing::new([0u8; 32]);
        // Without randomness the process cannot keep any secret.
        getrandom::fill(&mut key[..]).expect("the operating system's random number generator");
        ProcessKey(key)
    }

    /// The key in `bytes` (as kept in its file).
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> ProcessKey {
        ProcessKey(Zeroizing::new(*bytes))
    }

    /// An HMAC under the key, `label` (which names the use) already fed in.
    pub fn mac(&self, label: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0[..]).expect("HMAC takes any key");
        mac.update(label);
        mac
    }

    /// The HMAC of `data` under `label`.
    pub fn tag(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac(label);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl Default for ProcessKey {
    fn default() -> Self {
        ProcessKey::new()
    }
}

impl std::fmt::Debug for ProcessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessKey(..)")
    }
}
