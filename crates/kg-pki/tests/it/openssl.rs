//! kg-pki checked against an independent implementation: the `openssl` command.
//!
//! Certificates made here are verified by `openssl verify`, and certificates and keys made by
//! `openssl` are read here. The clock is fixed (`NOW`) and handed to `openssl verify` with
//! `-attime`, so nothing depends on when the tests run.

use std::path::Path;
use std::process::Command;

use kg_pki::{
    CaMaterial, Constraints, Issued, KeyKind, PkiError, Problem, SanName, SecretPem, VerifyError,
    check_constraints, default_constraints, inspect, issue_leaf, new_local_ca, normalize_key_pem,
    plan_names, self_signed, verify,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00:00 UTC);

fn names(list: &[&str]) -> Vec<SanName> {
    plan_names(list).unwrap()
}

fn local_ca() -> CaMaterial {
    let c = default_constraints(&["testhost".to_owned()], &[]);
    new_local_ca("testhost", &c, NOW).unwrap()
}

/// Runs `openssl args...` in `dir`; returns (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the `openssl` command is needed for these tests (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// `openssl verify` at `NOW` with extra flags; returns (success, output).
fn openssl_verify(dir: &Path, ca: &str, leaf: &str, extra: &[&str]) -> (bool, String) {
    let at = NOW.unix_timestamp().to_string();
    let mut args = vec!["verify", "-attime", &at, "-purpose", "sslserver"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-CAfile", ca, leaf]);
    openssl(dir, &args)
}

#[test]
fn ca_and_leaf_pass_openssl_verify_and_show_the_right_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = local_ca();
    let planned = names(&["localhost", "127.0.0.1", "::1", "app.localhost", "testhost"]);
    check_constraints(
        &planned,
        &default_constraints(&["testhost".to_owned()], &[]),
    )
    .unwrap();
    let leaf = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 90, NOW).unwrap();
    write(d, "ca.pem", &ca.cert_pem);
    write(d, "leaf.pem", &leaf.cert_pem);
    assert_eq!(
        leaf.chain_pem, ca.cert_pem,
        "the chain is the CA certificate"
    );

    let (ok, text) = openssl_verify(d, "ca.pem", "leaf.pem", &[]);
    assert!(ok && text.contains("leaf.pem: OK"), "{text}");
    // openssl's own host and IP matching, name by name.
    for (flag, value) in [
        ("-verify_hostname", "localhost"),
        ("-verify_hostname", "app.localhost"),
        ("-verify_hostname", "testhost"),
        ("-verify_ip", "127.0.0.1"),
        ("-verify_ip", "::1"),
    ] {
        let (ok, text) = openssl_verify(d, "ca.pem", "leaf.pem", &[flag, value]);
        assert!(ok, "{flag} {value}: {text}");
    }
    let (ok, _) = openssl_verify(d, "ca.pem", "leaf.pem", &["-verify_hostname", "other.test"]);
    assert!(!ok, "openssl must refuse a name the leaf does not carry");

    let leaf_text = openssl_ok(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    for needle in [
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:localhost",
        "DNS:app.localhost",
        "TLS Web Server Authentication",
        "Digital Signature",
        "CA:FALSE",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "Subject: CN = localhost",
        "Issuer: O = keygate local CA, OU = \"created 2026-06-01, key ",
        ", CN = keygate local CA testhost",
    ] {
        assert!(
            leaf_text.contains(needle),
            "leaf lacks {needle:?}:\n{leaf_text}"
        );
    }
    assert!(
        !leaf_text.contains("DNS:127.0.0.1"),
        "IP written as DNS SAN"
    );

    let ca_text = openssl_ok(d, &["x509", "-in", "ca.pem", "-noout", "-text"]);
    for needle in [
        "X509v3 Name Constraints: critical",
        "Permitted:",
        "DNS:localhost",
        "DNS:testhost",
        "IP:127.0.0.0/255.0.0.0",
        "IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF",
        "IP:100.64.0.0/255.192.0.0",
        "IP:FC00:0:0:0:0:0:0:0/FE00:0:0:0:0:0:0:0",
        "CA:TRUE, pathlen:0",
        "Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "Subject: O = keygate local CA, OU = \"created 2026-06-01, key ",
        ", CN = keygate local CA testhost",
        "Signature Algorithm: ecdsa-with-SHA256",
        "ASN1 OID: prime256v1",
    ] {
        assert!(ca_text.contains(needle), "CA lacks {needle:?}:\n{ca_text}");
    }

    // Our own verifier agrees, and reports the facts.
    let facts = verify(&leaf.cert_pem, &leaf.key, &ca.cert_pem, &planned, NOW).unwrap();
    assert_eq!(facts.not_before, NOW - Duration::minutes(5));
    assert_eq!(facts.not_after, NOW + Duration::days(90));
    assert_eq!(facts.sans, planned);
    assert_eq!(facts.eku, ["serverAuth"]);
    assert_eq!(
        (facts.key_type.as_str(), facts.key_bits),
        ("ecdsa-p256", 256)
    );
    assert!(!facts.is_ca);

    // A full-chain file (leaf then CA) verifies too.
    let bundle = format!("{}{}", leaf.cert_pem, leaf.chain_pem);
    verify(&bundle, &leaf.key, &ca.cert_pem, &planned, NOW).unwrap();

    // The facts match what openssl computes.
    let fingerprint = openssl_ok(
        d,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    assert_eq!(
        fingerprint.trim(),
        format!("sha256 Fingerprint={}", facts.sha256_fingerprint)
    );
    let serial = openssl_ok(d, &["x509", "-in", "leaf.pem", "-noout", "-serial"]);
    assert_eq!(serial.trim(), format!("serial={}", facts.serial));

    // The CA itself: 10 years, backdated, and its key really is its key.
    let ca_facts = kg_pki::inspect(&ca.cert_pem, Some(&ca.key), None, NOW)
        .unwrap()
        .leaf;
    assert!(ca_facts.is_ca);
    assert_eq!(ca_facts.not_before, NOW - Duration::minutes(5));
    assert_eq!(ca_facts.not_after, datetime!(2036-06-01 12:00:00 UTC));
    assert!(
        ca_text.contains(&format!("key {}", &ca_ski(&ca_text)[..8])),
        "{ca_text}"
    );
    assert_eq!(ca_facts.serial.len(), 40, "20-byte CA serial");
}

/// The subject key identifier as openssl prints it, without colons.
fn ca_ski(text: &str) -> String {
    let mut lines = text.lines();
    lines
        .find(|l| l.contains("X509v3 Subject Key Identifier"))
        .unwrap();
    lines.next().unwrap().trim().replace(':', "")
}

#[test]
fn every_key_kind_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = local_ca();
    write(d, "ca.pem", &ca.cert_pem);
    let planned = names(&["localhost", "127.0.0.1"]);
    let expected = [
        (KeyKind::EcdsaP256, "ecdsa-p256", 256),
        (KeyKind::EcdsaP384, "ecdsa-p384", 384),
        (KeyKind::Ed25519, "ed25519", 256),
        (KeyKind::Rsa2048, "rsa", 2048),
        (KeyKind::Rsa3072, "rsa", 3072),
    ];
    for (kind, key_type, bits) in expected {
        let leaf = issue_leaf(&ca, &planned, kind, 30, NOW).unwrap();
        write(d, "leaf.pem", &leaf.cert_pem);
        write(d, "leaf.key", leaf.key.expose());
        let (ok, text) = openssl_verify(d, "ca.pem", "leaf.pem", &[]);
        assert!(ok, "{kind}: {text}");
        assert!(
            leaf.key.expose().starts_with("-----BEGIN PRIVATE KEY-----"),
            "{kind}: PKCS#8"
        );
        // openssl reads the key, and it is the certificate's key.
        let from_key = openssl_ok(d, &["pkey", "-in", "leaf.key", "-pubout"]);
        let from_cert = openssl_ok(d, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert, "{kind}");
        let text = openssl_ok(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
        assert_eq!(
            text.contains("Key Encipherment"),
            kind.is_rsa(),
            "{kind}: keyEncipherment only for RSA"
        );
        let facts = verify(&leaf.cert_pem, &leaf.key, &ca.cert_pem, &planned, NOW).unwrap();
        assert_eq!(
            (facts.key_type.as_str(), facts.key_bits),
            (key_type, bits),
            "{kind}"
        );
    }
}

#[test]
fn lifetime_limits() {
    let ca = local_ca();
    let planned = names(&["localhost"]);
    let longest = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 825, NOW).unwrap();
    let facts = inspect(&longest.cert_pem, None, None, NOW).unwrap();
    let lifetime = facts.leaf.not_after - facts.leaf.not_before;
    assert!(lifetime < Duration::days(825), "{lifetime}");
    assert!(lifetime > Duration::days(824));
    assert!(!facts.problems.contains(&Problem::ValidityOver825Days));

    for days in [0, 826, 100_000] {
        let err = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, days, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("certificate lifetime of {days} days is outside 1..=825")
        );
        let err = self_signed(&planned, KeyKind::EcdsaP256, days, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("certificate lifetime of {days} days is outside 1..=825")
        );
    }

    // A leaf never outlives its CA.
    let late = NOW + Duration::days(3652 - 10);
    let leaf = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 90, late).unwrap();
    let ca_end = inspect(&ca.cert_pem, None, None, NOW)
        .unwrap()
        .leaf
        .not_after;
    assert_eq!(
        inspect(&leaf.cert_pem, None, None, late)
            .unwrap()
            .leaf
            .not_after,
        ca_end
    );

    // An expired CA does not issue.
    let err = issue_leaf(
        &ca,
        &planned,
        KeyKind::EcdsaP256,
        90,
        NOW + Duration::days(4000),
    )
    .unwrap_err();
    assert!(matches!(err, PkiError::CaNotValid { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "the CA certificate is not valid now: it is valid from 2026-06-01T11:55:00Z to 2036-06-01T12:00:00Z"
    );
}

#[test]
fn hundred_leaves_have_hundred_serials() {
    let ca = local_ca();
    let planned = names(&["localhost"]);
    let mut serials = std::collections::HashSet::new();
    for _ in 0..100 {
        let leaf = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 30, NOW).unwrap();
        let facts = inspect(&leaf.cert_pem, None, None, NOW).unwrap().leaf;
        assert_eq!(facts.serial.len(), 32, "16-byte serial: {}", facts.serial);
        serials.insert(facts.serial);
    }
    assert_eq!(serials.len(), 100);
}

#[test]
fn name_constraints_are_real() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = default_constraints(&["testhost".to_owned()], &[]);
    let ca = new_local_ca("testhost", &c, NOW).unwrap();
    write(d, "ca.pem", &ca.cert_pem);

    // Refused before issuing, naming the name and the setting that widens the constraints.
    for name in ["example.com", "8.8.8.8", "*.example.org"] {
        let err = check_constraints(&names(&[name]), &c).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "name '{name}' is outside the local CA's name constraints (widen them with cert.ca_extra_names)"
            )
        );
        assert!(err.hint().contains("cert.ca_extra_names"));
    }

    // Bypass the check and sign anyway: both verifiers reject the leaf.
    for name in ["8.8.8.8", "example.com", "2001:db8::1"] {
        let planned = names(&["localhost", name]);
        let leaf = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 30, NOW).unwrap();
        write(d, "bad.pem", &leaf.cert_pem);
        let (ok, text) = openssl_verify(d, "ca.pem", "bad.pem", &[]);
        assert!(
            !ok,
            "openssl accepted a leaf for {name} outside the constraints:\n{text}"
        );
        assert!(text.contains("permitted subtree violation"), "{text}");
        let err = verify(&leaf.cert_pem, &leaf.key, &ca.cert_pem, &planned, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the certificate does not chain to the trust anchor for TLS server use: name constraints violated"
        );
    }

    // A name added with cert.ca_extra_names (here a DNS name and a network) is permitted.
    let wide = default_constraints(&[], &["example.com".into(), "203.0.113.0/24".into()]);
    let wide_ca = new_local_ca("testhost", &wide, NOW).unwrap();
    write(d, "wide.pem", &wide_ca.cert_pem);
    let planned = names(&["www.example.com", "203.0.113.9"]);
    check_constraints(&planned, &wide).unwrap();
    let leaf = issue_leaf(&wide_ca, &planned, KeyKind::EcdsaP256, 30, NOW).unwrap();
    write(d, "wide-leaf.pem", &leaf.cert_pem);
    let (ok, text) = openssl_verify(d, "wide.pem", "wide-leaf.pem", &[]);
    assert!(ok, "{text}");
    verify(&leaf.cert_pem, &leaf.key, &wide_ca.cert_pem, &planned, NOW).unwrap();
}

/// rcgen trap 8: permitting only an IPv4 range makes every IPv6 SAN fail, even `::1`.
#[test]
fn ipv4_only_constraints_break_ipv6_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v4_only = Constraints {
        dns: vec!["localhost".into()],
        ips: vec![("127.0.0.0".parse().unwrap(), 8)],
    };
    let ca = new_local_ca("testhost", &v4_only, NOW).unwrap();
    let planned = names(&["localhost", "::1"]);
    assert!(check_constraints(&planned, &v4_only).is_err());
    let leaf = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 30, NOW).unwrap();
    write(d, "ca.pem", &ca.cert_pem);
    write(d, "leaf.pem", &leaf.cert_pem);
    let (ok, _) = openssl_verify(d, "ca.pem", "leaf.pem", &[]);
    assert!(!ok);
    assert!(verify(&leaf.cert_pem, &leaf.key, &ca.cert_pem, &planned, NOW).is_err());
}

#[test]
fn self_signed_leaf_verifies_against_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let planned = names(&["localhost", "127.0.0.1", "::1", "*.app.localhost"]);
    for kind in [KeyKind::EcdsaP256, KeyKind::Rsa2048] {
        let leaf = self_signed(&planned, kind, 30, NOW).unwrap();
        assert!(leaf.chain_pem.is_empty());
        write(d, "self.pem", &leaf.cert_pem);
        let (ok, text) = openssl_verify(
            d,
            "self.pem",
            "self.pem",
            &["-verify_hostname", "x.app.localhost"],
        );
        assert!(ok, "{kind}: {text}");
        let text = openssl_ok(d, &["x509", "-in", "self.pem", "-noout", "-text"]);
        for needle in [
            "DNS:*.app.localhost",
            "IP Address:0:0:0:0:0:0:0:1",
            "TLS Web Server Authentication",
            "Digital Signature",
            "CA:FALSE",
        ] {
            assert!(text.contains(needle), "{kind}: lacks {needle:?}\n{text}");
        }
        let facts = verify(&leaf.cert_pem, &leaf.key, &leaf.cert_pem, &planned, NOW).unwrap();
        assert!(facts.self_signed);
        let report = inspect(&leaf.cert_pem, Some(&leaf.key), Some(0o600), NOW).unwrap();
        assert_eq!(report.problems, []);
    }
}

#[test]
fn verify_names_what_failed() {
    let ca = local_ca();
    let other_ca = local_ca();
    let planned = names(&["localhost", "127.0.0.1", "*.app.localhost"]);
    let leaf = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 30, NOW).unwrap();
    let other = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 30, NOW).unwrap();

    let check =
        |cert: &Issued, key: &SecretPem, trust: &str, want: &[&str], now, expected: &str| {
            let actual = match verify(&cert.cert_pem, key, trust, &names(want), now) {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.to_string(),
            };
            assert_eq!(actual, expected);
        };
    let ca_pem = ca.cert_pem.as_str();
    check(
        &leaf,
        &leaf.key,
        ca_pem,
        &["localhost", "127.0.0.1", "*.app.localhost"],
        NOW,
        "ok",
    );
    check(
        &leaf,
        &leaf.key,
        ca_pem,
        &["other.localhost"],
        NOW,
        "the certificate does not cover 'other.localhost'",
    );
    check(
        &leaf,
        &leaf.key,
        ca_pem,
        &["::1"],
        NOW,
        "the certificate does not cover '::1'",
    );
    check(
        &leaf,
        &leaf.key,
        ca_pem,
        &["*.localhost.test"],
        NOW,
        "the certificate does not cover '*.localhost.test'",
    );
    check(
        &leaf,
        &other.key,
        ca_pem,
        &["localhost"],
        NOW,
        "the private key does not match the certificate",
    );
    check(
        &leaf,
        &leaf.key,
        &other_ca.cert_pem,
        &["localhost"],
        NOW,
        "the certificate does not chain to the trust anchor for TLS server use: unknown issuer",
    );
    check(
        &leaf,
        &leaf.key,
        ca_pem,
        &["localhost"],
        NOW + Duration::days(31),
        "the certificate expired at 2026-07-01T12:00:00Z",
    );
    check(
        &leaf,
        &leaf.key,
        ca_pem,
        &["localhost"],
        NOW - Duration::hours(1),
        "the certificate is not valid until 2026-06-01T11:55:00Z",
    );
    check(
        &leaf,
        &leaf.key,
        "",
        &["localhost"],
        NOW,
        "trust anchor: no certificate found in PEM input",
    );
    let err = verify("junk", &leaf.key, ca_pem, &[], NOW).unwrap_err();
    assert!(matches!(
        err,
        VerifyError::Certificate(PkiError::NoCertificate)
    ));
    let err = verify(
        &leaf.cert_pem,
        &SecretPem::new("junk".into()),
        ca_pem,
        &[],
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "private key: no private key found in PEM input"
    );
}

#[test]
fn normalize_key_pem_reads_openssl_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (how to make the key, the PEM label openssl writes)
    let keys: [(&[&str], &str); 4] = [
        (
            &["ecparam", "-genkey", "-name", "prime256v1", "-out", "k.pem"],
            "EC PRIVATE KEY",
        ),
        (
            &[
                "ecparam",
                "-genkey",
                "-name",
                "secp384r1",
                "-noout",
                "-out",
                "k.pem",
            ],
            "EC PRIVATE KEY",
        ),
        (
            &["genrsa", "-traditional", "-out", "k.pem", "2048"],
            "RSA PRIVATE KEY",
        ),
        (
            &["genpkey", "-algorithm", "ed25519", "-out", "k.pem"],
            "PRIVATE KEY",
        ),
    ];
    for (make, label) in keys {
        openssl_ok(d, make);
        let original = read(d, "k.pem");
        assert!(
            original.contains(&format!("-----BEGIN {label}-----")),
            "{make:?}"
        );
        openssl_ok(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                "k.pem",
                "-subj",
                "/CN=k.test",
                "-days",
                "30",
                "-addext",
                "subjectAltName=DNS:k.test",
                "-addext",
                "extendedKeyUsage=serverAuth",
                "-out",
                "k.crt",
            ],
        );

        let normalized = normalize_key_pem(&original).unwrap();
        assert!(
            normalized
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{make:?}"
        );
        assert_eq!(normalized.expose().matches("-----BEGIN").count(), 1);
        // Round-trips: normalizing PKCS#8 is the identity.
        assert_eq!(
            normalize_key_pem(normalized.expose()).unwrap().expose(),
            normalized.expose()
        );
        // openssl reads the result, and it is the certificate's key.
        write(d, "n.pem", normalized.expose());
        let from_key = openssl_ok(d, &["pkey", "-in", "n.pem", "-pubout"]);
        let from_cert = openssl_ok(d, &["x509", "-in", "k.crt", "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert, "{make:?}");
        // And kg-pki agrees that the pair matches.
        let report = inspect(
            &read(d, "k.crt"),
            Some(&normalized),
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert!(
            !report.problems.contains(&Problem::KeyMismatch),
            "{make:?}: {:?}",
            report.problems
        );
    }
}

#[test]
fn inspect_finds_what_browsers_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let make = |extra: &[&str], key: &str, cert: &str| {
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(&ec);
        args.extend_from_slice(&["-keyout", key, "-out", cert, "-subj", "/CN=web.test"]);
        args.extend_from_slice(extra);
        openssl_ok(d, &args);
    };
    make(&["-days", "30"], "cn.key", "cn.crt");
    make(
        &[
            "-days",
            "30",
            "-addext",
            "subjectAltName=DNS:127.0.0.1,DNS:web.test",
        ],
        "ipdns.key",
        "ipdns.crt",
    );
    make(
        &[
            "-days",
            "3650",
            "-addext",
            "subjectAltName=DNS:web.test",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
        "long.key",
        "long.crt",
    );
    make(
        &[
            "-days",
            "30",
            "-addext",
            "subjectAltName=DNS:web.test",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
        "good.key",
        "good.crt",
    );
    openssl_ok(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-sha1",
            "-nodes",
            "-keyout",
            "weak.key",
            "-out",
            "weak.crt",
            "-subj",
            "/CN=web.test",
            "-days",
            "30",
            "-addext",
            "subjectAltName=DNS:web.test",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
    );

    let facts_now = |crt: &str| inspect(&read(d, crt), None, None, NOW).unwrap().leaf;
    let good = facts_now("good.crt");
    let real_now = good.not_before + Duration::hours(1);
    let key = |name: &str| normalize_key_pem(&read(d, name)).unwrap();

    // Each case: a certificate, the key given with it, the key file's mode, the time.
    struct Case<'a> {
        crt: &'a str,
        key: Option<SecretPem>,
        mode: Option<u32>,
        now: OffsetDateTime,
    }
    let case = |crt, key, mode, now| Case {
        crt,
        key,
        mode,
        now,
    };
    let table = [
        (
            case("good.crt", Some(key("good.key")), Some(0o100600), real_now),
            vec![],
        ),
        (
            case("cn.crt", Some(key("cn.key")), None, real_now),
            vec![Problem::CnOnly, Problem::NoServerAuthEku],
        ),
        (
            case("ipdns.crt", None, None, real_now),
            vec![
                Problem::IpAsDnsSan("127.0.0.1".into()),
                Problem::NoServerAuthEku,
            ],
        ),
        (
            case("good.crt", None, None, good.not_after + Duration::days(1)),
            vec![Problem::Expired],
        ),
        (
            case("good.crt", None, None, good.not_before - Duration::days(1)),
            vec![Problem::NotYetValid],
        ),
        (
            case("good.crt", Some(key("cn.key")), None, real_now),
            vec![Problem::KeyMismatch],
        ),
        (
            case(
                "good.crt",
                Some(SecretPem::new("junk".into())),
                None,
                real_now,
            ),
            vec![Problem::KeyUnreadable],
        ),
        (
            case("good.crt", Some(key("good.key")), Some(0o644), real_now),
            vec![Problem::KeyFileModeTooWide(0o644)],
        ),
        (
            case("good.crt", None, Some(0o100640), real_now),
            vec![Problem::KeyFileModeTooWide(0o640)],
        ),
        (
            case("long.crt", None, None, real_now),
            vec![Problem::ValidityOver825Days],
        ),
        (
            case("weak.crt", None, None, real_now),
            vec![Problem::WeakKey],
        ),
    ];
    for (c, expected) in table {
        let report = inspect(&read(d, c.crt), c.key.as_ref(), c.mode, c.now).unwrap();
        assert_eq!(report.problems, expected, "{} at {}", c.crt, c.now);
    }

    let expired = inspect(
        &read(d, "good.crt"),
        None,
        None,
        good.not_after + Duration::days(3),
    )
    .unwrap();
    assert_eq!(expired.days_left, -3);
    let weak = facts_now("weak.crt");
    assert_eq!((weak.key_type.as_str(), weak.key_bits), ("rsa", 1024));
    assert_eq!(weak.signature_algorithm, "sha1WithRSAEncryption");
}

#[test]
fn inspect_reports_our_chain_without_problems() {
    let ca = local_ca();
    let planned = names(&["localhost", "::1"]);
    let leaf = issue_leaf(&ca, &planned, KeyKind::EcdsaP256, 90, NOW).unwrap();
    let bundle = format!("{}{}", leaf.cert_pem, leaf.chain_pem);
    let report = inspect(&bundle, Some(&leaf.key), Some(0o600), NOW).unwrap();
    assert_eq!(report.problems, []);
    assert_eq!(report.days_left, 90);
    assert_eq!(report.chain.len(), 1);
    assert!(report.chain[0].is_ca);
    assert_eq!(report.leaf.issuer, report.chain[0].subject);

    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["leaf"]["names"][1], "::1");
    assert_eq!(json["leaf"]["starts_at"], "2026-06-01T11:55:00Z");
    assert_eq!(json["leaf"]["expires_at"], "2026-08-30T12:00:00Z");
    assert_eq!(json["leaf"]["eku"], serde_json::json!(["serverAuth"]));
    assert_eq!(json["days_left"], 90);
}

#[test]
fn debug_output_never_shows_keys() {
    let ca = local_ca();
    let leaf = issue_leaf(&ca, &names(&["localhost"]), KeyKind::EcdsaP256, 30, NOW).unwrap();
    let selfie = self_signed(&names(&["localhost"]), KeyKind::Rsa2048, 30, NOW).unwrap();
    let normalized = normalize_key_pem(leaf.key.expose()).unwrap();
    for debug in [
        format!("{ca:?}"),
        format!("{ca:#?}"),
        format!("{leaf:?}"),
        format!("{selfie:#?}"),
        format!("{normalized:?}"),
        format!("{:?}", ca.key),
    ] {
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        let body: String = leaf.key.expose().lines().nth(1).unwrap().to_owned();
        assert!(!debug.contains(&body));
    }
    assert_eq!(format!("{:?}", leaf.key), "SecretPem(..)");
}

#[test]
fn issuing_refuses_bad_input() {
    let ca = local_ca();
    let err = issue_leaf(&ca, &[], KeyKind::EcdsaP256, 30, NOW).unwrap_err();
    assert_eq!(err.to_string(), "no names given for the certificate");
    // Hand-built names are re-checked: nothing unvalidated reaches rcgen.
    let table = [
        ("foo bar", "invalid name 'foo bar': contains whitespace"),
        (
            "Upper.test",
            "name 'Upper.test' is not normalized; pass names through plan_names first",
        ),
        (
            "127.0.0.1",
            "name '127.0.0.1' is not normalized; pass names through plan_names first",
        ),
    ];
    for (name, expected) in table {
        let err = issue_leaf(
            &ca,
            &[SanName::Dns(name.into())],
            KeyKind::EcdsaP256,
            30,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    // A CA key that is not the CA's key.
    let other = local_ca();
    let mixed = CaMaterial {
        cert_pem: ca.cert_pem.clone(),
        key: other.key.clone(),
    };
    let err = issue_leaf(&mixed, &names(&["localhost"]), KeyKind::EcdsaP256, 30, NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the CA private key does not match the CA certificate"
    );
    // A leaf is not a CA.
    let leaf = issue_leaf(&ca, &names(&["localhost"]), KeyKind::EcdsaP256, 30, NOW).unwrap();
    let fake = CaMaterial {
        cert_pem: leaf.cert_pem,
        key: leaf.key,
    };
    let err = issue_leaf(&fake, &names(&["localhost"]), KeyKind::EcdsaP256, 30, NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the CA certificate is not a CA (basicConstraints cA is not set)"
    );
    // Constraints that verifiers would choke on are refused when creating the CA.
    let bad = Constraints {
        dns: vec!["*.test".into()],
        ips: vec![],
    };
    assert!(matches!(
        new_local_ca("h", &bad, NOW),
        Err(PkiError::InvalidConstraint { .. })
    ));
}
