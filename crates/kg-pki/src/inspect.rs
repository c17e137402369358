//! Reading certificates: PEM splitting, the facts of one certificate, and the problems that
//! make browsers refuse it.

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::asn1_rs::Oid;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

use crate::keys::SecretKey;
use crate::{MAX_LEAF_DAYS, PkiError, SanName, SecretPem};

/// Every certificate in `pem`, in order. Other sections (keys, parameters) are skipped.
///
/// Uses `rustls_pki_types::pem::PemObject` rather than rustls-pemfile, which is unmaintained
/// (RUSTSEC-2025-0134).
pub fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        certs.push(item.map_err(|e| PkiError::Pem {
            detail: pem_error_text(&e),
        })?);
    }
    if certs.is_empty() {
        return Err(if pem.contains("PRIVATE KEY-----") {
            PkiError::KeyInsteadOfCertificate
        } else {
            PkiError::NoCertificate
        });
    }
    Ok(certs)
}

/// The PEM reader's error in words; its own Display prints markers as byte lists.
fn pem_error_text(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => format!(
            "missing '-----END {}-----' line",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { .. } => "malformed '-----BEGIN ...-----' line".to_owned(),
        Error::Base64Decode(_) => "invalid base64 inside a PEM section".to_owned(),
        other => other.to_string(),
    }
}

/// What a certificate says, in the form people and scripts read: `keygate cert show`,
/// `--json` output, logs. Serializes with RFC 3339 times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    /// Subject DN, e.g. `CN=localhost`.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// DNS and IP subjectAltNames, as found (not re-validated); `names` in JSON.
    #[serde(rename = "names")]
    pub sans: Vec<SanName>,
    /// Other subjectAltName entries (email, URI, ...), as `type:value`; `other_names` in JSON.
    #[serde(rename = "other_names")]
    pub other_sans: Vec<String>,
    /// Serial number in upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    /// SHA-256 of the DER, colon-separated upper-case hex, as `openssl x509 -fingerprint
    /// -sha256` prints it.
    pub sha256_fingerprint: String,
    /// Start of validity (`starts_at` in JSON, where every instant is a key ending `_at`).
    #[serde(with = "time::serde::rfc3339", rename = "starts_at")]
    pub not_before: OffsetDateTime,
    /// End of validity, inclusive (`expires_at` in JSON).
    #[serde(with = "time::serde::rfc3339", rename = "expires_at")]
    pub not_after: OffsetDateTime,
    /// `ecdsa-p256`, `ecdsa-p384`, `ecdsa-p521`, `ed25519`, `ed448`, `rsa`, `rsa-pss`, or the
    /// algorithm OID.
    pub key_type: String,
    /// Key size in bits (0 when unknown).
    pub key_bits: u32,
    /// Signature algorithm, e.g. `ecdsa-with-SHA256`, or its OID.
    pub signature_algorithm: String,
    /// Extended key usages, e.g. `serverAuth`; empty when the extension is absent.
    pub eku: Vec<String>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Subject and issuer are the same name.
    pub self_signed: bool,
}

/// The result of [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The first certificate of the input.
    pub leaf: CertFacts,
    /// Whole days from `now` to the leaf's `not_after`; negative once expired.
    pub days_left: i64,
    /// The other certificates of the input, in order.
    pub chain: Vec<CertFacts>,
    /// What browsers or keygate's rules would object to, leaf first.
    pub problems: Vec<Problem>,
}

/// Something wrong with a certificate, its key, or the key file. Display is one line.
/// Serializes as `{"kind":"expired"}` or `{"kind":"ip_as_dns_san","detail":"127.0.0.1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// The leaf has no DNS or IP subjectAltName; browsers ignore the CN.
    CnOnly,
    /// An IP address written as a dNSName SAN (browsers need an iPAddress SAN).
    IpAsDnsSan(String),
    /// The leaf's `not_after` is before `now`.
    Expired,
    /// The leaf's `not_before` is after `now`.
    NotYetValid,
    /// The private key is not the leaf's key.
    KeyMismatch,
    /// The private key could not be parsed, so it cannot be the leaf's key.
    KeyUnreadable,
    /// An RSA key below 2048 bits, or a SHA-1 (or MD5) signature on a non-root certificate.
    WeakKey,
    /// The leaf is valid for more than 825 days, which Apple refuses.
    #[serde(rename = "validity_over_825_days")]
    ValidityOver825Days,
    /// The key file can be read by group or others (the mode, permission bits only).
    KeyFileModeTooWide(u32),
    /// The leaf lacks the serverAuth extended key usage, which Apple requires.
    NoServerAuthEku,
}

impl Problem {
    /// The problem's stable id, as `--json` findings name it (`expired`, `ip_as_dns_san`).
    pub fn code(&self) -> &'static str {
        match self {
            Problem::CnOnly => "cn_only",
            Problem::IpAsDnsSan(_) => "ip_as_dns_san",
            Problem::Expired => "expired",
            Problem::NotYetValid => "not_yet_valid",
            Problem::KeyMismatch => "key_mismatch",
            Problem::KeyUnreadable => "key_unreadable",
            Problem::WeakKey => "weak_key",
            Problem::ValidityOver825Days => "validity_over_825_days",
            Problem::KeyFileModeTooWide(_) => "key_file_mode_too_wide",
            Problem::NoServerAuthEku => "no_server_auth_eku",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CnOnly => f.write_str(
                "the certificate has no subjectAltName; browsers ignore the common name and refuse it",
            ),
            Problem::IpAsDnsSan(ip) => write!(
                f,
                "'{ip}' is written as a DNS name SAN; browsers only match IP addresses in IP address SANs"
            ),
            Problem::Expired => f.write_str("the certificate has expired"),
            Problem::NotYetValid => f.write_str("the certificate is not valid yet"),
            Problem::KeyMismatch => f.write_str("the private key does not match the certificate"),
            Problem::KeyUnreadable => f.write_str("the private key cannot be parsed"),
            Problem::WeakKey => f.write_str(
                "weak key or signature: an RSA key below 2048 bits or a SHA-1 signature",
            ),
            Problem::ValidityOver825Days => f.write_str(
                "the certificate is valid for more than 825 days; Apple devices refuse it",
            ),
            Problem::KeyFileModeTooWide(mode) => write!(
                f,
                "the key file mode is {mode:04o}; it should be 0600 so only its owner can read it"
            ),
            Problem::NoServerAuthEku => f.write_str(
                "the certificate lacks the serverAuth extended key usage; Apple devices refuse it",
            ),
        }
    }
}

/// Reads a certificate chain (leaf first) and reports its facts and problems.
///
/// Never fails on certificates that parse: everything wrong with them becomes a [`Problem`].
/// `key`, when given, is checked against the leaf; `key_file_mode` (the key file's
/// `st_mode`, file-type bits are ignored) is checked for group/other access. The chain is not
/// verified against a trust anchor here; [`crate::verify`] does that.
pub fn inspect(
    pem_chain: &str,
    key: Option<&SecretPem>,
    key_file_mode: Option<u32>,
    now: OffsetDateTime,
) -> Result<Report, PkiError> {
    let ders = pem_certs(pem_chain)?;
    let mut certs = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        certs.push(parse_cert(der, i + 1)?);
    }
    let facts: Vec<CertFacts> = certs
        .iter()
        .zip(&ders)
        .map(|(cert, der)| cert_facts(cert, der))
        .collect();
    let leaf_cert = &certs[0];
    let leaf = facts[0].clone();
    let now = whole_seconds(now);

    let mut problems = Vec::new();
    if leaf.sans.is_empty() {
        problems.push(Problem::CnOnly);
    }
    for san in &leaf.sans {
        if let SanName::Dns(d) = san {
            let bare = d.trim_start_matches('[').trim_end_matches(']');
            if bare.parse::<IpAddr>().is_ok() {
                problems.push(Problem::IpAsDnsSan(d.clone()));
            }
        }
    }
    if now > leaf.not_after {
        problems.push(Problem::Expired);
    }
    if now < leaf.not_before {
        problems.push(Problem::NotYetValid);
    }
    if let Some(key) = key {
        match SecretKey::from_pem(key.expose()) {
            Ok(k) if key_matches(leaf_cert, &k) => {}
            Ok(_) => problems.push(Problem::KeyMismatch),
            Err(_) => problems.push(Problem::KeyUnreadable),
        }
    }
    let weak = facts.iter().enumerate().any(|(i, f)| {
        let weak_rsa = f.key_type.starts_with("rsa") && f.key_bits < 2048;
        // A root's signature on itself is never checked by clients; every other one is.
        let signature_checked = i == 0 || !f.self_signed;
        weak_rsa || (signature_checked && is_weak_signature(&f.signature_algorithm))
    });
    if weak {
        problems.push(Problem::WeakKey);
    }
    if leaf.not_after - leaf.not_before > time::Duration::days(i64::from(MAX_LEAF_DAYS)) {
        problems.push(Problem::ValidityOver825Days);
    }
    if let Some(mode) = key_file_mode
        && mode & 0o077 != 0
    {
        problems.push(Problem::KeyFileModeTooWide(mode & 0o7777));
    }
    if !leaf.eku.iter().any(|e| e == "serverAuth") {
        problems.push(Problem::NoServerAuthEku);
    }

    let days_left = (leaf.not_after - now).whole_days();
    let mut facts = facts.into_iter();
    facts.next();
    Ok(Report {
        leaf,
        days_left,
        chain: facts.collect(),
        problems,
    })
}

/// Parses one DER certificate; `index` (1-based) names it in the error.
pub(crate) fn parse_cert<'a>(
    der: &'a CertificateDer<'_>,
    index: usize,
) -> Result<X509Certificate<'a>, PkiError> {
    x509_parser::parse_x509_certificate(der.as_ref())
        .map(|(_, cert)| cert)
        .map_err(|e| PkiError::InvalidCertificate {
            index,
            detail: e.to_string(),
        })
}

/// Compares the key's public half with the certificate's subjectPublicKey bits.
pub(crate) fn key_matches(cert: &X509Certificate<'_>, key: &SecretKey) -> bool {
    key.public_key_raw() == cert.public_key().subject_public_key.data.as_ref()
}

pub(crate) fn time_of(t: &ASN1Time) -> OffsetDateTime {
    // An ASN1Time always came from a valid date, so its timestamp converts back.
    OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Certificates carry whole seconds; dropping the fraction here keeps what we compute
/// (825-day limits, facts) equal to what is encoded.
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t - time::Duration::nanoseconds(i64::from(t.nanosecond()))
}

/// The facts of one parsed certificate.
pub(crate) fn cert_facts(cert: &X509Certificate<'_>, der: &CertificateDer<'_>) -> CertFacts {
    let mut sans = Vec::new();
    let mut other_sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(SanName::Dns((*d).to_owned())),
                GeneralName::IPAddress(bytes) => match ip_from_bytes(bytes) {
                    Some(ip) => sans.push(SanName::Ip(ip)),
                    None => other_sans.push(format!("ip:{}", hex(bytes, ""))),
                },
                GeneralName::RFC822Name(e) => other_sans.push(format!("email:{e}")),
                GeneralName::URI(u) => other_sans.push(format!("uri:{u}")),
                other => other_sans.push(format!("other:{other:?}")),
            }
        }
    }

    let mut eku = Vec::new();
    if let Ok(Some(ext)) = cert.extended_key_usage() {
        let e = ext.value;
        let known = [
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
            (e.any, "anyExtendedKeyUsage"),
        ];
        eku.extend(
            known
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| (*n).to_owned()),
        );
        eku.extend(e.other.iter().map(Oid::to_id_string));
    }

    let (key_type, key_bits) = key_info(cert);
    let serial = cert.raw_serial();
    let first_nonzero = serial
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        other_sans,
        serial: hex(&serial[first_nonzero..], ""),
        sha256_fingerprint: hex(&Sha256::digest(der.as_ref()), ":"),
        not_before: time_of(&cert.validity().not_before),
        not_after: time_of(&cert.validity().not_after),
        key_type,
        key_bits,
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm),
        eku,
        is_ca: cert.is_ca(),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn key_info(cert: &X509Certificate<'_>) -> (String, u32) {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| Oid::try_from(p).ok())
        .map(|o| o.to_id_string());
    let bits_of_rsa = || match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => bit_length(rsa.modulus),
        _ => 0,
    };
    match (alg.as_str(), curve.as_deref()) {
        ("1.2.840.113549.1.1.1", _) => ("rsa".into(), bits_of_rsa()),
        ("1.2.840.113549.1.1.10", _) => ("rsa-pss".into(), bits_of_rsa()),
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => ("ecdsa-p256".into(), 256),
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => ("ecdsa-p384".into(), 384),
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => ("ecdsa-p521".into(), 521),
        ("1.2.840.10045.2.1", _) => ("ecdsa".into(), 0),
        ("1.3.101.112", _) => ("ed25519".into(), 256),
        ("1.3.101.113", _) => ("ed448".into(), 456),
        _ => (alg, 0),
    }
}

/// Bits of a big-endian unsigned integer, ignoring leading zero bytes and bits.
fn bit_length(bytes: &[u8]) -> u32 {
    match bytes.iter().position(|b| *b != 0) {
        Some(i) => (bytes.len() - i) as u32 * 8 - bytes[i].leading_zeros(),
        None => 0,
    }
}

fn signature_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let name = match id.as_str() {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        _ => return id,
    };
    name.to_owned()
}

fn is_weak_signature(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("sha1") || lower.contains("md5") || lower.contains("md2")
}

pub(crate) fn hex(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// DER → `-----BEGIN CERTIFICATE-----` PEM with 64-character lines.
pub(crate) fn der_to_pem(der: &CertificateDer<'_>) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_errors_name_what_is_missing() {
        let table = [
            ("", "no certificate found in PEM input"),
            ("hello", "no certificate found in PEM input"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "no certificate found in PEM input, only a private key",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n",
                "cannot read PEM input: missing '-----END CERTIFICATE-----' line",
            ),
        ];
        for (input, expected) in table {
            assert_eq!(pem_certs(input).unwrap_err().to_string(), expected);
        }
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let der = pem_certs(garbage).unwrap();
        let err = parse_cert(&der[0], 1).unwrap_err().to_string();
        assert!(
            err.starts_with("certificate 1 in PEM input cannot be parsed: "),
            "{err}"
        );
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01, 0x00]), 9);
        assert_eq!(bit_length(&[0x00]), 0);
    }

    #[test]
    fn problems_display_one_line() {
        let all = [
            Problem::CnOnly,
            Problem::IpAsDnsSan("127.0.0.1".into()),
            Problem::Expired,
            Problem::NotYetValid,
            Problem::KeyMismatch,
            Problem::KeyUnreadable,
            Problem::WeakKey,
            Problem::ValidityOver825Days,
            Problem::KeyFileModeTooWide(0o644),
            Problem::NoServerAuthEku,
        ];
        for p in &all {
            let s = p.to_string();
            assert!(!s.contains('\n') && !s.ends_with('.'), "{s}");
        }
        assert_eq!(
            Problem::KeyFileModeTooWide(0o644).to_string(),
            "the key file mode is 0644; it should be 0600 so only its owner can read it"
        );
        assert_eq!(
            serde_json::to_string(&all[1]).unwrap(),
            r#"{"kind":"ip_as_dns_san","detail":"127.0.0.1"}"#
        );
        assert_eq!(
            serde_json::to_string(&all[2]).unwrap(),
            r#"{"kind":"expired"}"#
        );
        for p in &all {
            let v = serde_json::to_value(p).unwrap();
            assert_eq!(v["kind"], p.code(), "{p:?}");
        }
    }
}
