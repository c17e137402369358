//! Private keys: the kinds we generate, the secret wrapper, and normalization to PKCS#8.
//!
//! Key material only ever lives in [`SecretPem`] or in the `SecretKey` guard below, both of
//! which wipe their buffers on drop and never print their contents.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use rcgen::{KeyPair, SignatureAlgorithm};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::PkiError;

/// The key types keygate can generate for a leaf.
///
/// ECDSA P-256 is the default: fast (about 44 µs to make and sign, REFERENCE.md) and accepted
/// everywhere. RSA exists for old clients; RSA below 2048 bits is deliberately not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum KeyKind {
    /// ECDSA on NIST P-256 with SHA-256.
    #[default]
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// Ed25519 (not accepted by browsers as of 2026; fine for other TLS clients).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// RSA 2048-bit with PKCS#1 v1.5 SHA-256 signatures.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA 3072-bit with PKCS#1 v1.5 SHA-256 signatures.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
}

impl KeyKind {
    /// Every kind, in the order `--help` should list them.
    pub const ALL: [KeyKind; 5] = [
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::Ed25519,
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
    ];

    /// The name used on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::EcdsaP384 => "ecdsa-p384",
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Rsa3072 => "rsa-3072",
        }
    }

    /// RSA keys get keyEncipherment in addition to digitalSignature (TLS 1.2 RSA key exchange).
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyKind::Rsa2048 | KeyKind::Rsa3072)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyKind {
    type Err = KeyKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| KeyKindError {
                input: s.to_owned(),
            })
    }
}

/// An unknown key type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown key type '{}': expected one of ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072",
    .input.escape_debug()
)]
pub struct KeyKindError {
    /// The name that was given.
    pub input: String,
}

/// A private key in PEM form. Wiped from memory when dropped; `Debug` prints `SecretPem(..)`;
/// there is no `Display` and no `Serialize`, so the key cannot reach logs or JSON by accident.
/// Call [`SecretPem::expose`] at the one place that writes it out.
#[derive(Clone)]
pub struct SecretPem(Zeroizing<String>);

impl SecretPem {
    /// Wraps PEM text without checking it; use [`normalize_key_pem`] to validate a key read
    /// from elsewhere.
    pub fn new(pem: String) -> SecretPem {
        SecretPem(Zeroizing::new(pem))
    }

    /// The PEM text. The name makes every use easy to find in review.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPem(..)")
    }
}

/// Accepts a private key as PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`, what tailscale
/// and `openssl ecparam -genkey` write) or PKCS#1 (`RSA PRIVATE KEY`) and returns it as
/// PKCS#8 PEM, the one form the rest of keygate stores and serves.
///
/// Other PEM sections (such as the `EC PARAMETERS` block `openssl ecparam` puts first) are
/// skipped; the first private key is used. Errors never include key bytes.
pub fn normalize_key_pem(pem: &str) -> Result<SecretPem, PkiError> {
    let key = SecretKey::from_pem(pem)?;
    Ok(key.pkcs8_pem())
}

/// An rcgen key pair whose PKCS#8 bytes are wiped on drop (rcgen's `zeroize` feature; rcgen
/// itself does not do it on drop). The key objects inside aws-lc are freed by aws-lc, which
/// cleanses memory it frees.
pub(crate) struct SecretKey(KeyPair);

impl SecretKey {
    /// A fresh key of `kind`.
    pub(crate) fn generate(kind: KeyKind) -> Result<SecretKey, PkiError> {
        use rcgen::RsaKeySize;
        let generated = match kind {
            KeyKind::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyKind::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyKind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyKind::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyKind::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
        };
        let key = generated
            .map(SecretKey)
            .map_err(|source| PkiError::KeyGeneration { kind, source })?;
        key.ed25519_as_v1()
    }

    /// Parses the first private key in `pem` (PKCS#8, SEC1 or PKCS#1) and makes sure it is
    /// held as PKCS#8, whatever form it came in.
    pub(crate) fn from_pem(pem: &str) -> Result<SecretKey, PkiError> {
        if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(PkiError::EncryptedKey);
        }
        let mut der = match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
            Ok(der) => der,
            Err(rustls_pki_types::pem::Error::NoItemsFound) => return Err(PkiError::NoKey),
            // The PEM error could quote the base64 of the key: say only that it failed.
            Err(_) => return Err(PkiError::InvalidKey),
        };
        let parsed = SecretKey::from_der(&der);
        der.zeroize();
        parsed
    }

    fn from_der(der: &PrivateKeyDer<'static>) -> Result<SecretKey, PkiError> {
        let key = KeyPair::try_from(der)
            .map(SecretKey)
            .map_err(|_| PkiError::InvalidKey)?;
        if matches!(der, PrivateKeyDer::Pkcs8(_)) {
            return key.ed25519_as_v1();
        }
        // rcgen keeps SEC1 and PKCS#1 input as it came and would label it "PRIVATE KEY" when
        // serializing: wrap it into a real PKCS#8 PrivateKeyInfo, re-parse, and check that the
        // result is the same key.
        let pkcs8 = wrap_pkcs8(der, key.0.algorithm())?;
        let wrapped = KeyPair::try_from(&PrivatePkcs8KeyDer::from(pkcs8.as_slice()))
            .map(SecretKey)
            .map_err(|_| PkiError::InvalidKey)?;
        if wrapped.0.public_key_raw() != key.0.public_key_raw() {
            return Err(PkiError::InvalidKey);
        }
        Ok(wrapped)
    }

    /// Ed25519 keys from aws-lc (and ring) are PKCS#8 v2 (RFC 5958, with the public key
    /// attached), which OpenSSL 3.0 refuses to read ("unsupported"). Rewrite them as the
    /// v1 form of RFC 8410 that OpenSSL, Go and rustls all read. Other keys pass unchanged.
    fn ed25519_as_v1(self) -> Result<SecretKey, PkiError> {
        if self.0.algorithm() != &rcgen::PKCS_ED25519 {
            return Ok(self);
        }
        let der = self.0.serialized_der();
        let parsed = (|| {
            let (tag, info, _) = der_read(der)?;
            let (_, version, rest) = der_read(info).filter(|(t, ..)| *t == 0x02)?;
            let (_, _, rest) = der_read(rest).filter(|(t, ..)| *t == 0x30)?;
            let (_, private_key, _) = der_read(rest).filter(|(t, ..)| *t == 0x04)?;
            (tag == 0x30).then_some((version, private_key))
        })();
        let Some((version, private_key)) = parsed else {
            return Err(PkiError::InvalidKey);
        };
        if version == [0] {
            return Ok(self);
        }
        let body = Zeroizing::new(
            [
                &[0x02, 0x01, 0x00][..],
                &der_tlv(0x30, OID_ED25519),
                &der_tlv(0x04, private_key),
            ]
            .concat(),
        );
        let v1 = Zeroizing::new(der_tlv(0x30, &body));
        let rewritten = KeyPair::try_from(&PrivatePkcs8KeyDer::from(v1.as_slice()))
            .map(SecretKey)
            .map_err(|_| PkiError::InvalidKey)?;
        if rewritten.0.public_key_raw() != self.0.public_key_raw() {
            return Err(PkiError::InvalidKey);
        }
        Ok(rewritten)
    }

    /// The key as PKCS#8 PEM.
    pub(crate) fn pkcs8_pem(&self) -> SecretPem {
        SecretPem::new(self.0.serialize_pem())
    }
}

impl Deref for SecretKey {
    type Target = KeyPair;

    fn deref(&self) -> &KeyPair {
        &self.0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

// DER encodings of the object identifiers used in PKCS#8 AlgorithmIdentifiers.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const DER_NULL: &[u8] = &[0x05, 0x00];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Builds `PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, OCTET STRING key }`
/// (RFC 5208 / RFC 5915 §2 / RFC 8017 A.1) around a SEC1 or PKCS#1 key.
fn wrap_pkcs8(
    der: &PrivateKeyDer<'_>,
    alg: &'static SignatureAlgorithm,
) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let algorithm_id: Vec<u8> = match der {
        PrivateKeyDer::Sec1(_) => {
            let curve = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
                OID_P256
            } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
                OID_P384
            } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
                OID_P521
            } else {
                return Err(PkiError::InvalidKey);
            };
            der_tlv(0x30, &[OID_EC_PUBLIC_KEY, curve].concat())
        }
        PrivateKeyDer::Pkcs1(_) => der_tlv(0x30, &[OID_RSA_ENCRYPTION, DER_NULL].concat()),
        _ => return Err(PkiError::InvalidKey),
    };
    let inner = Zeroizing::new(der_tlv(0x04, der.secret_der()));
    let body = Zeroizing::new([&[0x02, 0x01, 0x00][..], &algorithm_id, &inner].concat());
    Ok(Zeroizing::new(der_tlv(0x30, &body)))
}

/// One DER tag-length-value with a definite length.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Reads one DER TLV: (tag, content, rest). Definite lengths up to 4 bytes only, which is
/// all a private key needs.
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_kind_names_round_trip() {
        for kind in KeyKind::ALL {
            assert_eq!(kind.as_str().parse::<KeyKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
        }
        assert_eq!(
            "rsa-1024".parse::<KeyKind>().unwrap_err().to_string(),
            "unknown key type 'rsa-1024': expected one of ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072"
        );
    }

    #[test]
    fn secret_pem_debug_hides_the_key() {
        let key = SecretKey::generate(KeyKind::EcdsaP256).unwrap();
        let pem = key.pkcs8_pem();
        assert!(pem.expose().contains("PRIVATE KEY"));
        assert_eq!(format!("{pem:?}"), "SecretPem(..)");
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
    }

    #[test]
    fn generated_keys_are_pkcs8_and_round_trip() {
        for kind in KeyKind::ALL {
            let key = SecretKey::generate(kind).unwrap();
            let pem = key.pkcs8_pem();
            assert!(
                pem.expose().starts_with("-----BEGIN PRIVATE KEY-----"),
                "{kind}"
            );
            let again = normalize_key_pem(pem.expose()).unwrap();
            assert_eq!(again.expose(), pem.expose(), "{kind}");
        }
    }

    #[test]
    fn ed25519_keys_are_pkcs8_v1() {
        let key = SecretKey::generate(KeyKind::Ed25519).unwrap();
        // SEQUENCE, INTEGER 0: version 1 of PKCS#8 (RFC 8410's form).
        assert_eq!(&key.serialized_der()[..5], [0x30, 0x2e, 0x02, 0x01, 0x00]);
        assert_eq!(key.serialized_der().len(), 48);
    }

    #[test]
    fn der_reads_what_it_writes() {
        let tlv = der_tlv(0x04, &[7; 300]);
        let (tag, content, rest) = der_read(&tlv).unwrap();
        assert_eq!((tag, content.len(), rest.len()), (0x04, 300, 0));
        assert_eq!(der_read(&[0x04, 0x05, 1]), None);
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        assert_eq!(&der_tlv(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(&der_tlv(0x04, &[0; 0x1234])[..4], [0x04, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn refuses_non_keys_without_quoting_them() {
        let table = [
            ("", "no private key found in PEM input"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "no private key found in PEM input",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0c2VjcmV0\n-----END PRIVATE KEY-----\n",
                "private key cannot be parsed (expected PKCS#8, SEC1 or PKCS#1 PEM)",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "private key is encrypted",
            ),
        ];
        for (input, expected) in table {
            let err = normalize_key_pem(input).unwrap_err().to_string();
            assert_eq!(err, expected);
        }
    }
}
