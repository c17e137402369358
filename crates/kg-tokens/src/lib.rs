//! The token core of keygate: the token format, the token store and its lifecycle,
//! verification, and age encryption helpers. No clock: every operation that depends on time
//! takes `now`. File IO lives in one module, [`files`]: it reads the store and the pepper and
//! writes them through the secure file layer (`kg-fs`), under the lock; everything else is
//! pure and works on text and bytes.
//!
//! # Token format
//!
//! ```text
//! kg_0123456789AB_<32 random base62 characters><6 base62 checksum characters>
//! ^^ ^^^^^^^^^^^^
//! |  id: 12 base62 characters, not secret (listings, logs, revocation)
//! prefix: 2-10 lowercase letters or digits, per store (default `kg`)
//! ```
//!
//! - base62 uses the alphabet `0-9A-Za-z`. Random characters come from the operating
//!   system's generator by rejection sampling (no modulo bias): the 32 secret characters
//!   carry about 190.5 bits, the id about 71.
//! - The checksum is the CRC32 (IEEE, as `crc32fast` computes it) of everything before it,
//!   `kg_<id>_<secret>`, written as exactly 6 base62 characters, most significant first
//!   (62^6 > 2^32). It rejects typos and truncated copies without a lookup; any single
//!   changed character is always caught.
//! - [`format_regex`] gives a secret-scanner pattern, e.g.
//!   `\bkg_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b`.
//!
//! # Storage and verification
//!
//! The [`Store`] keeps, per token, an [`Entry`] with HMAC-SHA-256 of the whole token under a
//! [`Pepper`] kept in a separate file: never the token. With >= 128 bits of randomness no slow
//! hash is needed, and a leaked store alone confirms nothing. [`Store::verify`] parses and
//! checks the checksum, looks the id up in a hash map, computes the HMAC (also for an unknown
//! id, so both cost the same) and compares in constant time, then checks revocation and
//! expiry; its cost does not grow with the store.
//!
//! The store file (written 0600 by `kg-fs`) is pretty JSON with a final newline, entries in
//! issue order, timestamps in RFC 3339 UTC; unknown fields are refused:
//!
//! ```text
//! { "version": 1, "prefix": "kg", "entries": [ {
//!     "id": "0123456789AB", "name": "ci-deploy", "scopes": ["deploy"],
//!     "created": "2026-11-01T12:00:00Z", "expires": null,
//!     "status": { "state": "active" },      // or "retiring" + "until", "revoked" + "at"
//!     "digest": "<64 hex digits>" } ] }
//! ```
//!
//! `tests/it/store.rs` pins the exact text (`GOLDEN`).
//!
//! # Files
//!
//! | file | mode | what |
//! |---|---|---|
//! | `STATE_DIR/tokens.json` | 0600 | the store: digests, never tokens |
//! | `STATE_DIR/tokens.lock` | 0600 | held during every read-modify-write |
//! | `PRIVATE_DIR/pepper` | 0600 | the HMAC key, created on first use (directory 0700) |
//! | `PRIVATE_DIR/client/NAME.token` | 0600 | a client's token, written by `tokenctl ensure` |
//!
//! Changes go through [`StorePaths::begin`] (a [`StoreTxn`] that holds the lock and writes on
//! commit); long-running readers keep a [`LoadedStore`] and call
//! [`LoadedStore::reload_if_changed`], which costs one `stat` when nothing changed.
//!
//! # Example
//!
//! ```
//! use kg_tokens::{Pepper, Prefix, Reason, Store};
//! use time::macros::datetime;
//!
//! let pepper = Pepper::generate(); // kept in its own 0600 file
//! let mut store = Store::new(Prefix::default());
//! let now = datetime!(2026-11-01 12:00 UTC);
//! let (entry, token) = store.create(&pepper, "ci-deploy", vec!["deploy".into()], None, now)?;
//! // `token.expose_secret()` is shown to the user once; the store keeps only a digest.
//! let info = store.verify(&pepper, token.expose_secret(), now).unwrap();
//! assert_eq!(info.name, "ci-deploy");
//! store.revoke_id(&entry.id, now)?;
//! let err = store.verify(&pepper, token.expose_secret(), now).unwrap_err();
//! assert_eq!(err, Reason::Revoked);
//! assert_eq!(err.as_str(), "revoked");
//! let text = store.to_json();
//! assert!(!text.contains(token.expose_secret()));
//! # Ok::<(), kg_tokens::StoreError>(())
//! ```
//!
//! # Security properties
//!
//! - No `Debug` output and no error message contains a token, a token's secret part, the
//!   pepper, an age secret key or a passphrase. Names and ids that the user typed are repeated
//!   in errors only once they passed validation, so a token pasted into the wrong argument is
//!   not echoed. A name that looks like a token is refused.
//! - [`TokenSecret`], [`Pepper`] and age identities are wiped from memory on drop.
//! - [`seal::unseal`] returns `Ok` only after the whole age stream authenticated; callers
//!   publish its output only then.
#![forbid(unsafe_code)]

mod base62;
pub mod files;
mod pepper;
pub mod seal;
mod store;
mod token;

pub use files::{FileError, LoadedStore, StorePaths, StoreTxn};
/// A secret file whose mode lets its group or others at it, as reading found it.
pub use kg_fs::Exposed;
pub use pepper::{PEPPER_LEN, Pepper, PepperError};
pub use store::{
    Digest, Entry, MAX_NAME_LEN, NAME_RULE, SCOPE_RULE, STORE_VERSION, Status, Store, StoreError,
    TokenInfo, valid_name, valid_scope,
};
pub use token::{
    ID_LEN, ParsedToken, Prefix, PrefixError, Reason, SECRET_LEN, TokenSecret, derive,
    format_regex, generate, parse,
};
