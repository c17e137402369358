//! Checking a certificate the way a TLS client will, before it is published.
//!
//! Path building, signatures, name constraints and name matching are done by rustls-webpki,
//! the verifier rustls clients use, not by hand-written checks.

use std::time::Duration as StdDuration;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};

use crate::inspect::{cert_facts, key_matches, parse_cert, whole_seconds};
use crate::keys::SecretKey;
use crate::{CertFacts, MAX_LEAF_DAYS, PkiError, SanName, SecretPem, pem_certs, rfc3339};

/// DER content of id-kp-serverAuth (1.3.6.1.5.5.7.3.1).
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// Checks that `cert_pem` (leaf first, then any intermediates) with `key` is fit to serve
/// `names` at `now`, trusting only `trust_pem`; returns the leaf's facts.
///
/// In order: the PEM parses; the key is the leaf's key (public keys compared); the validity
/// period contains `now`, ends after it starts and is at most 825 days; the chain verifies to a
/// certificate of `trust_pem` for serverAuth, with the serverAuth EKU required to be present
/// (Apple requires it; webpki alone would accept a leaf without EKU), honouring name
/// constraints; and webpki accepts the leaf for every name in `names`. A wildcard name must
/// be present as that exact wildcard SAN, and webpki must match a name one label below it.
///
/// A self-signed leaf is verified with itself as the trust anchor (`trust_pem` = `cert_pem`):
/// webpki accepts that, since an anchor is only a subject and a public key.
pub fn verify(
    cert_pem: &str,
    key: &SecretPem,
    trust_pem: &str,
    names: &[SanName],
    now: OffsetDateTime,
) -> Result<CertFacts, VerifyError> {
    let now = whole_seconds(now);
    let certs = pem_certs(cert_pem).map_err(VerifyError::Certificate)?;
    let leaf = parse_cert(&certs[0], 1).map_err(VerifyError::Certificate)?;
    let facts = cert_facts(&leaf, &certs[0]);

    let key = SecretKey::from_pem(key.expose()).map_err(VerifyError::Key)?;
    if !key_matches(&leaf, &key) {
        return Err(VerifyError::KeyMismatch);
    }

    if facts.not_after <= facts.not_before {
        return Err(VerifyError::BadValidity);
    }
    if now < facts.not_before {
        return Err(VerifyError::NotYetValid {
            not_before: facts.not_before,
        });
    }
    if now > facts.not_after {
        return Err(VerifyError::Expired {
            not_after: facts.not_after,
        });
    }
    let lifetime = facts.not_after - facts.not_before;
    if lifetime > time::Duration::days(i64::from(MAX_LEAF_DAYS)) {
        return Err(VerifyError::ValidityTooLong {
            days: lifetime.whole_days(),
        });
    }

    let trust = pem_certs(trust_pem).map_err(VerifyError::TrustAnchor)?;
    let mut anchors: Vec<TrustAnchor<'_>> = Vec::with_capacity(trust.len());
    for der in &trust {
        let anchor = webpki::anchor_from_trusted_cert(der).map_err(|e| {
            VerifyError::TrustAnchor(PkiError::InvalidCertificate {
                index: anchors.len() + 1,
                detail: format!("{e:?}"),
            })
        })?;
        anchors.push(anchor);
    }

    let end_entity = EndEntityCert::try_from(&certs[0]).map_err(|e| VerifyError::Chain {
        detail: webpki_text(&e),
    })?;
    let intermediates: &[CertificateDer<'_>] = &certs[1..];
    let unix = UnixTime::since_unix_epoch(StdDuration::from_secs(
        u64::try_from(now.unix_timestamp()).unwrap_or(0),
    ));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            unix,
            KeyUsage::required(EKU_SERVER_AUTH),
            None,
            None,
        )
        .map_err(|e| VerifyError::Chain {
            detail: webpki_text(&e),
        })?;

    for name in names {
        let covered = match name {
            SanName::Ip(ip) => {
                let server_name = ServerName::IpAddress((*ip).into());
                end_entity
                    .verify_is_valid_for_subject_name(&server_name)
                    .is_ok()
            }
            SanName::Dns(dns) => {
                let (reference, literal_needed) = match dns.strip_prefix("*.") {
                    // A reference name cannot be a wildcard: ask for a name it must match,
                    // and insist that the wildcard itself is in the SAN.
                    Some(parent) => (format!("keygate-probe.{parent}"), true),
                    None => (dns.clone(), false),
                };
                let literal_ok = !literal_needed || facts.sans.contains(name);
                literal_ok
                    && ServerName::try_from(reference.as_str()).is_ok_and(|server_name| {
                        end_entity
                            .verify_is_valid_for_subject_name(&server_name)
                            .is_ok()
                    })
            }
        };
        if !covered {
            return Err(VerifyError::NameNotCovered { name: name.clone() });
        }
    }
    Ok(facts)
}

/// Why a certificate is not fit to serve. Display is one line naming what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The certificate PEM cannot be read.
    #[error("certificate: {0}")]
    Certificate(PkiError),
    /// The private key cannot be read.
    #[error("private key: {0}")]
    Key(PkiError),
    /// The trust anchor PEM cannot be read.
    #[error("trust anchor: {0}")]
    TrustAnchor(PkiError),
    /// The key is not the certificate's key.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// `not_after` is not after `not_before`.
    #[error("the certificate's validity ends before it starts")]
    BadValidity,
    /// `now` is before `not_before`.
    #[error("the certificate is not valid until {}", rfc3339(.not_before))]
    NotYetValid {
        /// Start of validity.
        not_before: OffsetDateTime,
    },
    /// `now` is after `not_after`.
    #[error("the certificate expired at {}", rfc3339(.not_after))]
    Expired {
        /// End of validity.
        not_after: OffsetDateTime,
    },
    /// Valid for more than 825 days, which Apple refuses.
    #[error("the certificate is valid for more than 825 days ({days}), which Apple devices refuse")]
    ValidityTooLong {
        /// Whole days from not_before to not_after (rounded down).
        days: i64,
    },
    /// webpki found no valid path to a trust anchor for serverAuth.
    #[error("the certificate does not chain to the trust anchor for TLS server use: {detail}")]
    Chain {
        /// webpki's reason, e.g. `unknown issuer`, `name constraints violated`.
        detail: String,
    },
    /// A requested name is not in the certificate.
    #[error("the certificate does not cover '{name}'")]
    NameNotCovered {
        /// The missing name.
        name: SanName,
    },
}

/// webpki errors in the crate's lower-case words.
fn webpki_text(e: &webpki::Error) -> String {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => "unknown issuer".into(),
        E::NameConstraintViolation => "name constraints violated".into(),
        E::RequiredEkuNotFoundContext(_) => "serverAuth extended key usage missing".into(),
        E::CaUsedAsEndEntity => "a CA certificate is used as the leaf".into(),
        E::EndEntityUsedAsCa => "a leaf certificate is used as a CA".into(),
        E::CertExpired { .. } => "a certificate of the chain has expired".into(),
        E::CertNotValidYet { .. } => "a certificate of the chain is not valid yet".into(),
        E::InvalidSignatureForPublicKey => "a signature does not verify".into(),
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "unsupported or weak signature algorithm".into()
        }
        other => format!("{other:?}").to_lowercase(),
    }
}
