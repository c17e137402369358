//! Making certificates: the local CA, leaves it signs, and self-signed leaves.
//!
//! Every rcgen default that bites (REFERENCE.md "rcgen 0.14 traps") is set explicitly here:
//! both validity ends, a distinct DN, a random serial, key usages, EKU, SKI/AKI.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::inspect::{key_matches, parse_cert, time_of, whole_seconds};
use crate::keys::SecretKey;
use crate::{Constraints, KeyKind, PkiError, SanName, SecretPem, pem_certs};

/// The longest leaf lifetime Apple accepts (and so the longest keygate issues).
pub const MAX_LEAF_DAYS: u32 = 825;

/// How far `not_before` is set in the past, so a client whose clock is a little behind does
/// not see a certificate from the future.
pub const BACKDATE: Duration = Duration::minutes(5);

/// Lifetime of a new local CA in calendar years, like mkcert's. Leaves never outlive it.
pub const CA_YEARS: i32 = 10;

/// A CA certificate and its private key.
#[derive(Debug, Clone)]
pub struct CaMaterial {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA private key, PKCS#8 PEM.
    pub key: SecretPem,
}

/// A freshly issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The leaf private key, PKCS#8 PEM.
    pub key: SecretPem,
    /// The issuer certificate(s), PEM, to serve after the leaf; empty for a self-signed leaf.
    pub chain_pem: String,
}

/// Creates a new local root CA for `host`.
///
/// ECDSA P-256, valid from `now` − 5 minutes until 10 years after `now`. Subject
/// `O=keygate local CA, OU=created <date>, key <first 4 SKI bytes>, CN=keygate local CA <host>`:
/// the OU makes each CA's subject unique, so a re-created CA never shares a name with the one
/// it replaces (clients pick issuers by name) and the two can be told apart in a trust store.
/// A random 20-byte serial; basicConstraints CA with path length 0 (it signs leaves only);
/// keyUsage keyCertSign + cRLSign; a subject key identifier; and the permitted subtrees of `c`
/// as a critical name constraints extension.
pub fn new_local_ca(
    host: &str,
    c: &Constraints,
    now: OffsetDateTime,
) -> Result<CaMaterial, PkiError> {
    c.validate()?;
    let now = whole_seconds(now);
    let key = SecretKey::generate(KeyKind::EcdsaP256)?;

    let mut params = CertificateParams::default();
    params.not_before = now - BACKDATE;
    // 29 February has no counterpart ten years on; 28 February will do.
    params.not_after = now
        .replace_year(now.year() + CA_YEARS)
        .or_else(|_| (now - Duration::DAY).replace_year(now.year() + CA_YEARS))
        .unwrap_or(now + Duration::days(3652));
    params.serial_number = Some(random_serial(20)?);
    params.distinguished_name = ca_name(host, now, &params.key_identifier(&*key));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = c.to_rcgen();

    let cert = params.self_signed(&*key).map_err(|source| PkiError::Sign {
        what: "CA certificate",
        source,
    })?;
    Ok(CaMaterial {
        cert_pem: cert.pem(),
        key: key.pkcs8_pem(),
    })
}

/// Issues a leaf for `names`, signed by `ca`.
///
/// `not_before` is `now` − 5 minutes and `not_after` is `now` + `days` (1..=825), cut so the
/// whole validity stays within 825 days and within the CA's own validity. Subject CN is the
/// first name; the serial is 16 random bytes; keyUsage digitalSignature (plus keyEncipherment
/// for RSA); EKU serverAuth; basicConstraints CA:FALSE; SKI and AKI; DNS names as dNSName and
/// IPs as iPAddress SANs.
///
/// The caller checks the names against the CA's constraints first ([`crate::check_constraints`]);
/// this function checks the CA itself: that it is a CA, valid at `now`, and that the key
/// belongs to the certificate.
pub fn issue_leaf(
    ca: &CaMaterial,
    names: &[SanName],
    key: KeyKind,
    days: u32,
    now: OffsetDateTime,
) -> Result<Issued, PkiError> {
    let now = whole_seconds(now);
    // Check the request before spending time on keys (RSA-3072 takes a while).
    let mut params = leaf_params(names, key, days, now)?;
    let ca_der = pem_certs(&ca.cert_pem)?.swap_remove(0);
    let ca_cert = parse_cert(&ca_der, 1)?;
    if !ca_cert.is_ca() {
        return Err(PkiError::NotACa);
    }
    let ca_not_before = time_of(&ca_cert.validity().not_before);
    let ca_not_after = time_of(&ca_cert.validity().not_after);
    if now < ca_not_before || now > ca_not_after {
        return Err(PkiError::CaNotValid {
            not_before: ca_not_before,
            not_after: ca_not_after,
        });
    }
    let ca_key = SecretKey::from_pem(ca.key.expose())?;
    if !key_matches(&ca_cert, &ca_key) {
        return Err(PkiError::CaKeyMismatch);
    }
    // Reads the CA's subject and SKI, so the leaf's issuer name and AKI match it exactly.
    let issuer = Issuer::from_ca_cert_der(&ca_der, &*ca_key).map_err(|source| PkiError::Sign {
        what: "leaf certificate",
        source,
    })?;

    let leaf_key = SecretKey::generate(key)?;
    params.not_after = params.not_after.min(ca_not_after);
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&*leaf_key, &issuer)
        .map_err(|source| PkiError::Sign {
            what: "leaf certificate",
            source,
        })?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key: leaf_key.pkcs8_pem(),
        chain_pem: crate::inspect::der_to_pem(&ca_der),
    })
}

/// A self-signed leaf for `names`: the same profile as [`issue_leaf`] (SANs, keyUsage,
/// serverAuth, CA:FALSE, SKI) but signed by its own key, so `chain_pem` is empty and a client
/// must trust this very certificate. [`crate::verify`] takes the certificate itself as the
/// trust anchor; `openssl verify -CAfile cert.pem cert.pem` accepts it too.
pub fn self_signed(
    names: &[SanName],
    key: KeyKind,
    days: u32,
    now: OffsetDateTime,
) -> Result<Issued, PkiError> {
    let now = whole_seconds(now);
    let params = leaf_params(names, key, days, now)?;
    let leaf_key = SecretKey::generate(key)?;
    let cert = params
        .self_signed(&*leaf_key)
        .map_err(|source| PkiError::Sign {
            what: "self-signed certificate",
            source,
        })?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key: leaf_key.pkcs8_pem(),
        chain_pem: String::new(),
    })
}

/// The parameters shared by CA-signed and self-signed leaves.
fn leaf_params(
    names: &[SanName],
    key: KeyKind,
    days: u32,
    now: OffsetDateTime,
) -> Result<CertificateParams, PkiError> {
    if names.is_empty() {
        return Err(PkiError::NoNames);
    }
    if days == 0 || days > MAX_LEAF_DAYS {
        return Err(PkiError::InvalidDays { days });
    }
    let mut sans = Vec::with_capacity(names.len());
    for name in names {
        sans.push(san_type(name)?);
    }

    let mut params = CertificateParams::default();
    params.not_before = now - BACKDATE;
    // RFC 5280 validity includes its last second, so "825 days" ends one second early.
    let longest = params.not_before + Duration::days(i64::from(MAX_LEAF_DAYS)) - Duration::SECOND;
    params.not_after = (now + Duration::days(i64::from(days))).min(longest);
    params.serial_number = Some(random_serial(16)?);
    params.subject_alt_names = sans;
    params.distinguished_name = leaf_name(&names[0]);
    // ExplicitNoCa writes basicConstraints CA:FALSE and, unlike NoCa, the SKI extension.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = if key.is_rsa() {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// Names reach here as `SanName`s, which anyone can construct: re-check DNS names so nothing
/// unvalidated reaches rcgen (trap 5).
fn san_type(name: &SanName) -> Result<SanType, PkiError> {
    match name {
        SanName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        SanName::Dns(dns) => {
            let planned = SanName::parse(dns)?;
            if planned.as_dns() != Some(dns.as_str()) {
                // Valid but not normalized (upper case, unicode, trailing dot) or an IP
                // written as a DNS name: either way not what the certificate should carry.
                return Err(PkiError::UnplannedName { name: dns.clone() });
            }
            let ia5 = dns.clone().try_into().map_err(|source| PkiError::Sign {
                what: "leaf certificate",
                source,
            })?;
            Ok(SanType::DnsName(ia5))
        }
    }
}

/// The leaf subject: CN = the first name. A CN is at most 64 characters (RFC 5280
/// ub-common-name); a longer first name is left out of the subject and lives in the SAN only,
/// which is where clients look anyway.
fn leaf_name(first: &SanName) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    let cn = first.to_string();
    if cn.len() <= 64 {
        dn.push(DnType::CommonName, cn);
    } else {
        dn.push(DnType::OrganizationName, "keygate");
    }
    dn
}

/// The CA subject described at [`new_local_ca`]. Without the OU, two CAs of one host would
/// share a subject: a client holding both picks the wrong one by name and fails on the
/// signature (webpki reports a bad signature rather than an unknown issuer).
fn ca_name(host: &str, now: OffsetDateTime, key_id: &[u8]) -> DistinguishedName {
    const PREFIX: &str = "keygate local CA";
    let mut host: String = host.chars().filter(|c| !c.is_control()).collect();
    while PREFIX.len() + 1 + host.len() > 64 {
        host.pop();
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, PREFIX);
    dn.push(
        DnType::OrganizationalUnitName,
        format!(
            "created {:04}-{:02}-{:02}, key {}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            crate::inspect::hex(&key_id[..key_id.len().min(4)], ""),
        ),
    );
    let cn = if host.is_empty() {
        PREFIX.to_owned()
    } else {
        format!("{PREFIX} {host}")
    };
    dn.push(DnType::CommonName, cn);
    dn
}

/// A random positive serial of `len` bytes (RFC 5280 allows up to 20). The top bit is cleared
/// so the DER INTEGER stays positive within `len` bytes, and the next bit is set so it never
/// shrinks: every serial has the same length and still carries `8 * len - 2` random bits.
/// Random serials matter: Firefox refuses two certificates from one issuer with one serial.
fn random_serial(len: usize) -> Result<SerialNumber, PkiError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| PkiError::Random {
        detail: e.to_string(),
    })?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}
