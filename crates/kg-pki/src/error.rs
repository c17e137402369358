//! The error of the issuing, parsing and inspecting operations.

use time::OffsetDateTime;

use crate::{KeyKind, NameError, rfc3339};

/// Why an operation on certificates or keys failed. Messages are one lower-case line that
/// names the object; none of them ever contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The crypto library could not generate a key of this kind.
    #[error("cannot generate a {kind} key: {source}")]
    KeyGeneration {
        /// The kind asked for.
        kind: KeyKind,
        /// rcgen's reason (never key bytes).
        source: rcgen::Error,
    },
    /// The PEM input holds no private key section.
    #[error("no private key found in PEM input")]
    NoKey,
    /// A private key section is there but is not a key we can read.
    #[error("private key cannot be parsed (expected PKCS#8, SEC1 or PKCS#1 PEM)")]
    InvalidKey,
    /// The key is password-protected.
    #[error("private key is encrypted")]
    EncryptedKey,
    /// The PEM input holds no certificate section.
    #[error("no certificate found in PEM input")]
    NoCertificate,
    /// The PEM input holds a private key but no certificate: probably the files were swapped.
    #[error("no certificate found in PEM input, only a private key")]
    KeyInsteadOfCertificate,
    /// The PEM framing or base64 is broken.
    #[error("cannot read PEM input: {detail}")]
    Pem {
        /// What the PEM reader reported.
        detail: String,
    },
    /// A certificate section is not a valid X.509 certificate.
    #[error("certificate {index} in PEM input cannot be parsed: {detail}")]
    InvalidCertificate {
        /// 1-based position among the certificates of the input.
        index: usize,
        /// What the X.509 parser reported.
        detail: String,
    },
    /// A name given to the issuer did not pass [`crate::plan_names`]'s rules.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A `SanName` that [`crate::plan_names`] would have written differently (upper case,
    /// Unicode, trailing dot): it was built by hand instead of planned.
    #[error("name '{name}' is not normalized; pass names through plan_names first")]
    UnplannedName {
        /// The name as given.
        name: String,
    },
    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system: {detail}")]
    Random {
        /// What getrandom reported.
        detail: String,
    },
    /// No names were given for a certificate.
    #[error("no names given for the certificate")]
    NoNames,
    /// The requested lifetime is zero or longer than browsers accept.
    #[error("certificate lifetime of {days} days is outside 1..=825")]
    InvalidDays {
        /// The lifetime asked for.
        days: u32,
    },
    /// The certificate given as the CA is not a CA.
    #[error("the CA certificate is not a CA (basicConstraints cA is not set)")]
    NotACa,
    /// The CA key and the CA certificate are not a pair.
    #[error("the CA private key does not match the CA certificate")]
    CaKeyMismatch,
    /// The CA certificate is expired or not yet valid at `now`.
    #[error(
        "the CA certificate is not valid now: it is valid from {} to {}",
        rfc3339(.not_before), rfc3339(.not_after)
    )]
    CaNotValid {
        /// Start of the CA's validity.
        not_before: OffsetDateTime,
        /// End of the CA's validity.
        not_after: OffsetDateTime,
    },
    /// An entry of [`crate::Constraints`] cannot be encoded as a name constraint.
    #[error("invalid name constraint '{entry}': {reason}")]
    InvalidConstraint {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rcgen refused to build or sign the certificate.
    #[error("cannot create the {what}: {source}")]
    Sign {
        /// "CA certificate", "leaf certificate", "self-signed certificate".
        what: &'static str,
        /// rcgen's reason.
        source: rcgen::Error,
    },
}

impl PkiError {
    /// A one-line suggestion for the person who hit the error, when there is one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PkiError::EncryptedKey => {
                "decrypt it first, e.g. `openssl pkey -in key.pem -out plain.pem`, and keep the result 0600".into()
            }
            PkiError::KeyInsteadOfCertificate => {
                "this looks like the key file: check that the certificate and key paths are not swapped".into()
            }
            PkiError::NoKey | PkiError::InvalidKey => {
                "give the PEM private key that belongs to the certificate".into()
            }
            PkiError::Name(e) => e.hint(),
            PkiError::InvalidDays { .. } => {
                "choose between 1 and 825 days; Apple refuses longer leaf certificates".into()
            }
            PkiError::CaKeyMismatch => {
                "the CA certificate and key files come from different CAs; restore the pair or re-create the CA".into()
            }
            PkiError::CaNotValid { .. } => {
                "re-create the local CA and trust the new one".into()
            }
            _ => return None,
        })
    }
}
