//! The token format: generation, parsing, the checksum, the scanner regex and redaction.
//!
//! `crate::spec_token` builds tokens from the written format (crate docs) without the
//! crate's code, so the two implementations check each other.

use kg_tokens::{Pepper, Prefix, Reason, Store, format_regex, generate, parse};
use proptest::prelude::*;

use crate::{BASE62, spec_token};

fn kg() -> Prefix {
    Prefix::default()
}

#[test]
fn generated_tokens_round_trip() {
    for prefix in ["kg", "acme2", "abcdefghij", "00"] {
        let prefix = Prefix::new(prefix).unwrap();
        let (id, token) = generate(&prefix);
        let text = token.expose_secret();
        assert_eq!(text.len(), prefix.as_str().len() + 1 + 12 + 1 + 32 + 6);
        assert!(text.starts_with(&format!("{prefix}_{id}_")));
        let parsed = parse(text, &prefix).expect("a generated token parses");
        assert_eq!(parsed.id(), id);
        assert_eq!(parsed.expose_token(), text);
        assert_eq!(parsed.expose_secret().len(), 32);
        // The crate's checksum is the one the format describes.
        assert_eq!(
            spec_token(prefix.as_str(), &id, parsed.expose_secret()),
            text
        );
    }
}

#[test]
fn generated_tokens_differ() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let (id, token) = generate(&kg());
        assert!(seen.insert(id));
        assert!(seen.insert(token.expose_secret().to_owned()));
    }
}

#[test]
fn prefix_rules() {
    let cases = [
        ("kg", true),
        ("k9", true),
        ("42", true),
        ("abcdefghij", true),
        ("k", false),
        ("", false),
        ("abcdefghijk", false),
        ("KG", false),
        ("k-g", false),
        ("kg_", false),
        ("kg ", false),
        ("ké", false),
    ];
    for (prefix, ok) in cases {
        assert_eq!(Prefix::new(prefix).is_ok(), ok, "prefix {prefix:?}");
    }
    assert_eq!(Prefix::default().as_str(), "kg");
}

#[test]
fn parse_rejects_malformed_shapes() {
    let good = spec_token("kg", "0123456789AB", &"x".repeat(32));
    assert!(parse(&good, &kg()).is_ok());
    let cases: Vec<(String, Reason)> = vec![
        (String::new(), Reason::Malformed),
        ("kg_".to_owned(), Reason::Malformed),
        (format!("Bearer {good}"), Reason::Malformed),
        (format!("{good} "), Reason::Malformed),
        (format!(" {good}"), Reason::Malformed),
        (good.replacen("kg_", "kh_", 1), Reason::Malformed),
        (good.replacen("kg_", "KG_", 1), Reason::Malformed),
        (good.replacen("kg_", "kg-", 1), Reason::Malformed),
        (good[..good.len() - 1].to_owned(), Reason::Malformed),
        (format!("{good}0"), Reason::Malformed),
        (
            spec_token("kg", "0123456789A", &"x".repeat(33)),
            Reason::Malformed,
        ),
        (
            spec_token("kg", "0123456789AB", &"x".repeat(31)),
            Reason::Malformed,
        ),
        (
            spec_token("kg", "0123456789A-", &"x".repeat(32)),
            Reason::Malformed,
        ),
        (
            spec_token("ab", "0123456789AB", &"x".repeat(32)),
            Reason::Malformed,
        ),
        // Right shape, checksum of a different body.
        (
            format!(
                "{}{}",
                &good[..good.len() - 6],
                &spec_token("kg", "0123456789AB", &"y".repeat(32))[good.len() - 6..]
            ),
            Reason::BadChecksum,
        ),
    ];
    for (token, reason) in cases {
        assert_eq!(parse(&token, &kg()).unwrap_err(), reason, "token {token:?}");
    }
}

/// Every single-character substitution of a valid token is rejected: checked exhaustively
/// over the base62 alphabet, '_' and a few others for a sample of tokens.
#[test]
fn every_substitution_is_rejected_exhaustively() {
    let mut alphabet: Vec<char> = BASE62.iter().map(|&b| char::from(b)).collect();
    alphabet.extend(['_', '-', ' ', '\0', 'é']);
    for _ in 0..20 {
        let (_, token) = generate(&kg());
        let token = token.expose_secret().to_owned();
        for (pos, original) in token.char_indices() {
            for &c in &alphabet {
                if c == original {
                    continue;
                }
                let mut changed = token.clone();
                changed.replace_range(pos..pos + 1, c.encode_utf8(&mut [0; 4]));
                let got = parse(&changed, &kg());
                assert!(
                    matches!(got, Err(Reason::BadChecksum | Reason::Malformed)),
                    "substituting {c:?} at {pos} was accepted"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // Integration tests have no lib.rs beside them for proptest's regression file.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The same property over arbitrary ids, secrets and replacement characters.
    #[test]
    fn single_substitution_never_accepted(
        id in "[0-9A-Za-z]{12}",
        secret in "[0-9A-Za-z]{32}",
        pos in 0usize..54,
        c in prop_oneof![
            3 => proptest::sample::select(BASE62.iter().map(|&b| char::from(b)).collect::<Vec<_>>()),
            1 => any::<char>(),
        ],
    ) {
        let token = spec_token("kg", &id, &secret);
        prop_assert!(parse(&token, &kg()).is_ok());
        let original = token.as_bytes()[pos] as char;
        prop_assume!(c != original);
        let mut changed = token.clone();
        changed.replace_range(pos..pos + 1, c.encode_utf8(&mut [0; 4]));
        let got = parse(&changed, &kg());
        prop_assert!(matches!(got, Err(Reason::BadChecksum | Reason::Malformed)), "{:?}", got.map(|p| p.id()));
    }

    /// Whatever the input, parse and verify never panic.
    #[test]
    fn parse_never_panics(s in ".{0,80}") {
        let _ = parse(&s, &kg());
        let _ = Store::default().verify(&Pepper::from_bytes([1; 32]), &s, time::OffsetDateTime::UNIX_EPOCH);
    }
}

#[test]
fn regex_matches_generated_tokens() {
    for prefix in ["kg", "acme2"] {
        let prefix = Prefix::new(prefix).unwrap();
        let re = regex::Regex::new(&format_regex(&prefix)).unwrap();
        for _ in 0..1000 {
            let (_, token) = generate(&prefix);
            let t = token.expose_secret();
            let m = re.find(t).expect("regex matches a generated token");
            assert_eq!(m.as_str(), t);
            // Found inside text too, as a scanner sees it.
            for text in [
                format!("Authorization: Bearer {t}\n"),
                format!("TOKEN=\"{t}\""),
                format!("{t}."),
            ] {
                assert_eq!(re.find(&text).map(|m| m.as_str()), Some(t), "in {text:?}");
            }
        }
    }
}

#[test]
fn regex_rejects_near_misses() {
    assert_eq!(
        format_regex(&kg()),
        r"\bkg_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b"
    );
    let re = regex::Regex::new(&format_regex(&kg())).unwrap();
    for _ in 0..100 {
        let (_, token) = generate(&kg());
        let t = token.expose_secret();
        let near_misses = [
            t.replacen("kg_", "kh_", 1),
            t.replacen("kg_", "KG_", 1),
            format!("x{t}"),
            format!("_{t}"),
            format!("{t}a"),
            format!("{t}_"),
            t[..t.len() - 1].to_owned(),
            t[..14].to_owned() + &t[15..], // id one short
            t.replacen('_', "-", 1),
            {
                let mut s = t.to_owned();
                s.replace_range(15..16, "-");
                s
            },
        ];
        for miss in near_misses {
            assert!(!re.is_match(&miss), "matched near-miss {miss:?}");
        }
    }
}

#[test]
fn debug_never_shows_secrets() {
    let pepper = Pepper::generate();
    let mut store = Store::default();
    let now = time::macros::datetime!(2026-11-01 12:00 UTC);
    let (entry, token) = store
        .create(&pepper, "ci", vec!["deploy".into()], None, now)
        .unwrap();
    let t = token.expose_secret();
    let parsed = parse(t, &kg()).unwrap();
    let secret = parsed.expose_secret();
    let pepper_hex = {
        use secrecy::ExposeSecret;
        pepper.to_text().expose_secret().trim().to_owned()
    };
    let info = store.verify(&pepper, t, now).unwrap();
    let outputs = [
        format!("{token:?}"),
        format!("{token:#?}"),
        format!("{parsed:?}"),
        format!("{parsed:#?}"),
        format!("{pepper:?}"),
        format!("{store:?}"),
        format!("{store:#?}"),
        format!("{entry:?}"),
        format!("{info:?}"),
    ];
    assert_eq!(outputs[0], "TokenSecret([REDACTED])");
    assert_eq!(outputs[4], "Pepper([REDACTED])");
    assert!(outputs[2].contains(parsed.id()), "ParsedToken shows its id");
    for out in &outputs {
        assert!(!out.contains(t), "{out}");
        assert!(!out.contains(secret), "{out}");
        assert!(!out.contains(&secret[..16]), "{out}");
        assert!(!out.contains(&pepper_hex), "{out}");
        assert!(!out.contains(&pepper_hex[..16]), "{out}");
    }
}

#[test]
fn reason_codes_are_stable() {
    let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        codes,
        ["malformed", "bad_checksum", "unknown", "expired", "revoked"]
    );
    for r in Reason::ALL {
        let text = r.to_string();
        assert!(!text.is_empty() && text == text.to_lowercase(), "{text}");
    }
}
