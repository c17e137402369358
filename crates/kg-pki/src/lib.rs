//! keygate's PKI core: planning certificate names, a name-constrained local CA, issuing and
//! self-signing leaves, normalizing keys, verifying and inspecting certificates.
//!
//! # Invariants
//! - **No IO and no clock.** Nothing here opens a file, a socket or a process, or reads the
//!   time: callers pass `now` and PEM text, and get PEM text back. That keeps every rule
//!   testable with a fixed clock, and keeps "how a file reaches disk" in `kg-fs` alone.
//!   The only thing taken from the operating system is randomness (keys, serials).
//! - **Key material never leaks.** Private keys live in [`SecretPem`] (wiped on drop, `Debug`
//!   prints `SecretPem(..)`, no `Display`/`Serialize`); no error message, `Debug` output or
//!   panic includes key bytes. Best effort below us: buffers inside the PEM decoder and the
//!   crypto library are not all ours to wipe.
//! - **Names are validated before rcgen sees them.** rcgen accepts `foo bar` and `1.2.3.4.5`
//!   as DNS names; [`plan_names`] refuses them, and issuing re-checks every [`SanName`].
//! - **Verification is webpki's.** [`verify`] uses rustls-webpki for paths, signatures, name
//!   constraints and name matching, so what passes here passes in a rustls client.
//! - **One crypto library.** rcgen and webpki both run on aws-lc-rs.
//!
//! # Browser rules this crate enforces
//! Names only in the SAN, IPs as iPAddress SANs, punycode IDNs, wildcards only as the whole
//! leftmost label and not on a public suffix, serverAuth EKU, at most 825 days, random serials,
//! distinct subject and issuer names, both IPv4 and IPv6 ranges in the CA's constraints.

//! # Example
//! ```
//! use kg_pki::{KeyKind, check_constraints, default_constraints, issue_leaf, new_local_ca,
//!     plan_names, verify};
//! use time::macros::datetime;
//!
//! let now = datetime!(2026-06-01 12:00 UTC); // the caller's clock
//! let names = plan_names(&["localhost", "127.0.0.1", "::1"])?;
//! let constraints = default_constraints(&["myhost".to_owned()], &[]);
//! check_constraints(&names, &constraints)?;
//! let ca = new_local_ca("myhost", &constraints, now)?;
//! let leaf = issue_leaf(&ca, &names, KeyKind::EcdsaP256, 90, now)?;
//! let facts = verify(&leaf.cert_pem, &leaf.key, &ca.cert_pem, &names, now)?;
//! assert_eq!(facts.sans, names);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod constraints;
mod error;
mod inspect;
mod issue;
mod keys;
mod names;
mod renew;
mod verify;

pub use constraints::{ConstraintError, Constraints, check_constraints, default_constraints};
pub use error::PkiError;
pub use inspect::{CertFacts, Problem, Report, inspect, pem_certs};
pub use issue::{
    BACKDATE, CA_YEARS, CaMaterial, Issued, MAX_LEAF_DAYS, issue_leaf, new_local_ca, self_signed,
};
pub use keys::{KeyKind, KeyKindError, SecretPem, normalize_key_pem};
pub use names::{NameError, SanName, is_public_suffix, plan_names};
pub use renew::{renew_at, renewal_due};
pub use verify::{VerifyError, verify};

/// Re-exported so callers of [`pem_certs`] need no direct dependency on rustls-pki-types.
pub use rustls_pki_types::CertificateDer;

/// RFC 3339 text for messages; falls back to the `Debug` form for years RFC 3339 cannot hold.
pub(crate) fn rfc3339(t: &time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t:?}"))
}
