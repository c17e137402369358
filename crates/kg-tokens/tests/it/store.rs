//! The token store: lifecycle under a fixed clock, verification, the JSON file form.

use hmac::{Hmac, Mac};
use kg_tokens::{
    Entry, Pepper, Prefix, Reason, STORE_VERSION, Status, Store, StoreError, TokenSecret, parse,
};
use sha2::Sha256;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::spec_token;

const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

fn pepper() -> Pepper {
    Pepper::from_bytes(std::array::from_fn(|i| i as u8))
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn create(store: &mut Store, name: &str, expires: Option<OffsetDateTime>) -> (Entry, TokenSecret) {
    store
        .create(&pepper(), name, scopes(&["read"]), expires, T0)
        .unwrap()
}

fn verify(store: &Store, token: &TokenSecret, now: OffsetDateTime) -> Result<String, Reason> {
    store
        .verify(&pepper(), token.expose_secret(), now)
        .map(|info| info.id.to_owned())
}

#[test]
fn create_then_verify() {
    let mut store = Store::default();
    let expires = T0 + Duration::days(30);
    let (entry, token) = store
        .create(
            &pepper(),
            "ci-deploy",
            scopes(&["deploy", "logs:read", "deploy"]),
            Some(expires),
            T0,
        )
        .unwrap();
    assert_eq!(entry.name, "ci-deploy");
    assert_eq!(
        entry.scopes,
        ["deploy", "logs:read"],
        "repeats dropped, order kept"
    );
    assert_eq!(entry.created, T0);
    assert_eq!(entry.expires, Some(expires));
    assert_eq!(entry.status, Status::Active);
    assert_eq!(store.list(), std::slice::from_ref(&entry));
    assert_eq!(store.find_active("ci-deploy"), Some(&entry));

    let info = store
        .verify(&pepper(), token.expose_secret(), T0 + Duration::days(1))
        .unwrap();
    assert_eq!(info.id, entry.id);
    assert_eq!(info.name, "ci-deploy");
    assert!(info.has_scope("logs:read"));
    assert!(!info.has_scope("logs"));
    assert_eq!(info.expires, Some(expires));
}

#[test]
fn digest_is_hmac_sha256_of_the_whole_token_under_the_pepper() {
    let mut store = Store::default();
    let (entry, token) = create(&mut store, "a", None);
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper().as_bytes()).unwrap();
    mac.update(token.expose_secret().as_bytes());
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    assert_eq!(entry.digest.as_bytes(), &expected);
}

#[test]
fn verify_reasons_in_order() {
    let mut store = Store::default();
    let (entry, token) = create(&mut store, "a", Some(T0 + Duration::hours(1)));
    let t = token.expose_secret().to_owned();
    let (_, stranger) = kg_tokens::generate(&Prefix::default());
    // Same id, another secret, valid checksum: must look exactly like an unknown token.
    let same_id_wrong_secret = spec_token("kg", &entry.id, &"A".repeat(32));
    let mut bad_checksum = t.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == '0' { '1' } else { '0' });

    let now = T0 + Duration::minutes(1);
    let cases: Vec<(&str, Result<(), Reason>)> = vec![
        (&t, Ok(())),
        ("", Err(Reason::Malformed)),
        ("Bearer x", Err(Reason::Malformed)),
        (&t[..t.len() - 1], Err(Reason::Malformed)),
        (&bad_checksum, Err(Reason::BadChecksum)),
        (stranger.expose_secret(), Err(Reason::Unknown)),
        (&same_id_wrong_secret, Err(Reason::Unknown)),
    ];
    for (input, want) in cases {
        let got = store.verify(&pepper(), input, now).map(|_| ());
        assert_eq!(got, want, "input {input:?}");
    }
    // Another pepper: nothing matches.
    let other = Pepper::from_bytes([9; 32]);
    assert_eq!(store.verify(&other, &t, now).unwrap_err(), Reason::Unknown);
    // Another prefix's store does not accept kg tokens.
    let acme = Store::new(Prefix::new("acme").unwrap());
    assert_eq!(
        acme.verify(&pepper(), &t, now).unwrap_err(),
        Reason::Malformed
    );
}

#[test]
fn expiry() {
    let mut store = Store::default();
    let expires = T0 + Duration::hours(1);
    let (_, token) = create(&mut store, "a", Some(expires));
    assert!(verify(&store, &token, expires - Duration::nanoseconds(1)).is_ok());
    assert_eq!(verify(&store, &token, expires), Err(Reason::Expired));
    assert_eq!(
        verify(&store, &token, expires + Duration::days(400)),
        Err(Reason::Expired)
    );
    // No expiry: valid for ever.
    let (_, forever) = create(&mut store, "b", None);
    assert!(verify(&store, &forever, T0 + Duration::days(10_000)).is_ok());
}

#[test]
fn rotate_with_grace() {
    let mut store = Store::default();
    let (old_entry, old) = create(&mut store, "svc", Some(T0 + Duration::days(30)));
    let t1 = T0 + Duration::days(10);
    let grace = Duration::hours(24);
    let (new_entry, new) = store.rotate(&pepper(), "svc", grace, t1).unwrap();

    assert_ne!(new_entry.id, old_entry.id);
    assert_eq!(new_entry.name, "svc");
    assert_eq!(new_entry.scopes, old_entry.scopes);
    assert_eq!(new_entry.created, t1);
    assert_eq!(
        new_entry.expires,
        Some(t1 + Duration::days(30)),
        "same lifetime, from now"
    );
    let until = t1 + grace;
    assert_eq!(
        store.get(&old_entry.id).unwrap().status,
        Status::Retiring { until }
    );
    assert_eq!(store.find_active("svc").unwrap().id, new_entry.id);

    // Both work during the grace period; verify reports when the old one stops.
    let info = store.verify(&pepper(), old.expose_secret(), t1).unwrap();
    assert_eq!(info.expires, Some(until));
    assert!(verify(&store, &old, until - Duration::seconds(1)).is_ok());
    assert!(verify(&store, &new, t1).is_ok());
    // After it, only the new one.
    assert_eq!(verify(&store, &old, until), Err(Reason::Expired));
    assert!(verify(&store, &new, until).is_ok());

    // A retiring entry's own expiry still applies if it comes first.
    let mut store = Store::default();
    let (_, short) = create(&mut store, "s", Some(T0 + Duration::hours(1)));
    store.rotate(&pepper(), "s", Duration::days(7), T0).unwrap();
    assert_eq!(
        verify(&store, &short, T0 + Duration::hours(1)),
        Err(Reason::Expired)
    );
}

#[test]
fn rotate_with_zero_grace_revokes_at_once() {
    let mut store = Store::default();
    let (old_entry, old) = create(&mut store, "svc", None);
    let t1 = T0 + Duration::days(1);
    let (new_entry, new) = store.rotate(&pepper(), "svc", Duration::ZERO, t1).unwrap();
    assert_eq!(
        store.get(&old_entry.id).unwrap().status,
        Status::Revoked { at: t1 }
    );
    assert_eq!(new_entry.expires, None);
    assert_eq!(verify(&store, &old, t1), Err(Reason::Revoked));
    assert!(verify(&store, &new, t1).is_ok());
}

#[test]
fn rotate_refusals() {
    let mut store = Store::default();
    assert!(matches!(
        store.rotate(&pepper(), "nobody", Duration::ZERO, T0),
        Err(StoreError::NoActiveToken { .. })
    ));
    create(&mut store, "svc", None);
    assert!(matches!(
        store.rotate(&pepper(), "svc", Duration::seconds(-1), T0),
        Err(StoreError::NegativeGrace)
    ));
    store
        .create_additional(&pepper(), "svc", vec![], None, T0)
        .unwrap();
    assert!(matches!(
        store.rotate(&pepper(), "svc", Duration::ZERO, T0),
        Err(StoreError::AmbiguousName { count: 2, .. })
    ));
    assert_eq!(store.list().len(), 2, "refused operations change nothing");
    // A retiring entry is not active: rotating again rotates the new one.
    let mut store = Store::default();
    create(&mut store, "svc", None);
    store
        .rotate(&pepper(), "svc", Duration::hours(1), T0)
        .unwrap();
    store
        .rotate(&pepper(), "svc", Duration::hours(1), T0)
        .unwrap();
    assert_eq!(store.list().len(), 3);
}

#[test]
fn create_refusals() {
    let mut store = Store::default();
    create(&mut store, "svc", None);
    let err = store
        .create(&pepper(), "svc", vec![], None, T0)
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateName { .. }));
    assert!(err.hint().unwrap().contains("tokenctl rotate --name svc"));

    // Revoked names may be reused.
    store.revoke_name("svc", T0).unwrap();
    create(&mut store, "svc", None);

    let name_cases = [
        ("a", true),
        ("alice.laptop", true),
        ("CI_deploy-2", true),
        (&*"n".repeat(64), true),
        ("", false),
        (&*"n".repeat(65), false),
        ("has space", false),
        ("slash/", false),
        ("ünï", false),
        ("colon:x", false),
    ];
    for (name, ok) in name_cases {
        let got = store.create(&pepper(), name, vec![], None, T0);
        assert_eq!(got.is_ok(), ok, "name {name:?}: {:?}", got.err());
    }
    let scope_cases = [
        ("read", true),
        ("logs:write", true),
        ("https://x/y", true),
        ("", false),
        ("a b", false),
        ("quote\"", false),
        ("back\\slash", false),
        ("tab\t", false),
        (&*"s".repeat(65), false),
    ];
    for (i, (scope, ok)) in scope_cases.into_iter().enumerate() {
        let got = store.create(
            &pepper(),
            &format!("scope{i}"),
            scopes(&["ok", scope]),
            None,
            T0,
        );
        assert_eq!(got.is_ok(), ok, "scope {scope:?}");
        if !ok {
            assert!(matches!(got, Err(StoreError::InvalidScope { number: 2 })));
        }
    }

    assert!(matches!(
        store.create(&pepper(), "late", vec![], Some(T0), T0),
        Err(StoreError::ExpiryNotInFuture { .. })
    ));
    // RFC 3339 has four-digit years only; `time` stops at 9999 unless `large-dates` is on.
    assert!(matches!(
        store.create(
            &pepper(),
            "bc",
            vec![],
            Some(datetime!(-0001-01-01 0:00 UTC)),
            T0
        ),
        Err(StoreError::TimeOutOfRange)
    ));
    assert!(matches!(
        store.rotate(&pepper(), "svc", Duration::MAX, T0),
        Err(StoreError::TimeOutOfRange)
    ));
}

/// A token pasted where a name belongs must not be stored or echoed.
#[test]
fn name_that_is_a_token_is_refused_and_not_echoed() {
    let mut store = Store::default();
    let (_, token) = create(&mut store, "svc", None);
    let t = token.expose_secret();
    let err = store.create(&pepper(), t, vec![], None, T0).unwrap_err();
    assert!(matches!(err, StoreError::NameLooksLikeToken));
    for text in [err.to_string(), err.hint().unwrap(), format!("{err:?}")] {
        assert!(!text.contains(t));
    }
    // The same for revocation by id and by name.
    for err in [
        store.revoke_id(t, T0).unwrap_err(),
        store.revoke_name(t, T0).unwrap_err(),
        store
            .rotate(&pepper(), &format!("{t} "), Duration::ZERO, T0)
            .unwrap_err(),
    ] {
        let parsed = parse(t, store.prefix()).unwrap();
        for text in [
            err.to_string(),
            err.hint().unwrap_or_default(),
            format!("{err:?}"),
        ] {
            assert!(!text.contains(parsed.expose_secret()), "{text}");
        }
    }
}

#[test]
fn revoke() {
    let mut store = Store::default();
    let (a, ta) = create(&mut store, "a", None);
    let (_, tb) = create(&mut store, "b", None);
    let t1 = T0 + Duration::hours(1);

    assert!(store.revoke_id(&a.id, t1).unwrap(), "changed");
    assert!(
        !store.revoke_id(&a.id, t1 + Duration::hours(1)).unwrap(),
        "already revoked"
    );
    assert_eq!(
        store.get(&a.id).unwrap().status,
        Status::Revoked { at: t1 },
        "first revocation kept"
    );
    assert_eq!(verify(&store, &ta, t1), Err(Reason::Revoked));
    assert!(verify(&store, &tb, t1).is_ok());
    assert!(matches!(
        store.revoke_id("0123456789AB", t1),
        Err(StoreError::UnknownId { .. })
    ));

    // By name: active and retiring entries alike.
    let (_, tb2) = store.rotate(&pepper(), "b", Duration::days(1), t1).unwrap();
    assert_eq!(store.revoke_name("b", t1).unwrap(), 2);
    assert_eq!(store.revoke_name("b", t1).unwrap(), 0);
    assert_eq!(verify(&store, &tb, t1), Err(Reason::Revoked));
    assert_eq!(verify(&store, &tb2, t1), Err(Reason::Revoked));
    assert!(matches!(
        store.revoke_name("nobody", t1),
        Err(StoreError::UnknownName { .. })
    ));
}

#[test]
fn revoked_wins_over_expired() {
    let mut store = Store::default();
    let (a, ta) = create(&mut store, "a", Some(T0 + Duration::hours(1)));
    store.revoke_id(&a.id, T0).unwrap();
    assert_eq!(
        verify(&store, &ta, T0 + Duration::days(1)),
        Err(Reason::Revoked)
    );
}

#[test]
fn prune() {
    let day = Duration::days(1);
    let mut store = Store::default();
    let (revoked, _) = create(&mut store, "revoked", None);
    store.revoke_id(&revoked.id, T0 + day).unwrap();
    let (_, _) = create(&mut store, "expired", Some(T0 + 2 * day));
    let (_, _) = create(&mut store, "retired", None);
    store.rotate(&pepper(), "retired", 3 * day, T0).unwrap(); // old retiring until T0+3d
    let (_, keep) = create(&mut store, "keep", None);
    assert_eq!(store.list().len(), 5);

    let retention = Duration::days(7);
    // Nothing has been dead for more than 7 days yet.
    assert_eq!(store.prune(retention, T0 + 8 * day), 0);
    // Exactly at the retention boundary: kept ("more than retention ago").
    assert_eq!(
        store.prune(retention, T0 + 8 * day + Duration::seconds(1)),
        1
    );
    assert!(store.list().iter().all(|e| e.name != "revoked"));
    assert_eq!(
        store.prune(retention, T0 + 10 * day + Duration::seconds(1)),
        2
    );
    let names: Vec<&str> = store.list().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["retired", "keep"],
        "the rotated-in token and the live one remain"
    );
    // The index was rebuilt: lookups still work.
    assert!(verify(&store, &keep, T0 + 100 * day).is_ok());
    assert_eq!(store.prune(Duration::ZERO, T0 + 1000 * day), 0);
    // Negative retention counts as zero.
    let mut store = Store::default();
    let (a, _) = create(&mut store, "a", None);
    store.revoke_id(&a.id, T0).unwrap();
    assert_eq!(store.prune(Duration::days(-5), T0), 0);
    assert_eq!(
        store.prune(Duration::days(-5), T0 + Duration::seconds(1)),
        1
    );
}

#[test]
fn json_round_trip_is_stable() {
    let mut store = Store::new(Prefix::new("acme").unwrap());
    store
        .create(
            &pepper(),
            "a",
            scopes(&["x", "y:z"]),
            Some(T0 + Duration::days(1)),
            T0,
        )
        .unwrap();
    store.create(&pepper(), "b", vec![], None, T0).unwrap();
    store
        .rotate(&pepper(), "b", Duration::hours(2), T0)
        .unwrap();
    let (c, _) = store.create(&pepper(), "c", vec![], None, T0).unwrap();
    store.revoke_id(&c.id, T0).unwrap();

    let text = store.to_json();
    assert!(text.ends_with("}\n"));
    let again = Store::from_json(&text).unwrap();
    assert_eq!(again.list(), store.list());
    assert_eq!(again.prefix().as_str(), "acme");
    assert_eq!(again.version(), STORE_VERSION);
    assert_eq!(again.to_json(), text);
}

#[test]
fn json_holds_no_plaintext() {
    let mut store = Store::default();
    let mut tokens = Vec::new();
    for name in ["a", "b", "c"] {
        tokens.push(create(&mut store, name, None).1);
    }
    tokens.push(
        store
            .rotate(&pepper(), "a", Duration::hours(1), T0)
            .unwrap()
            .1,
    );
    let text = store.to_json();
    for token in &tokens {
        let t = token.expose_secret();
        let parsed = parse(t, store.prefix()).unwrap();
        assert!(!text.contains(t));
        assert!(!text.contains(parsed.expose_secret()));
        assert!(!text.contains(&parsed.expose_secret()[..12]));
        assert!(!text.contains(&t[t.len() - 6..]), "not even the checksum");
        assert!(text.contains(parsed.id()), "the id is not secret");
    }
}

/// The file format, pinned: a change here is a format change and needs a version bump.
const GOLDEN: &str = r#"{
  "version": 1,
  "prefix": "kg",
  "entries": [
    {
      "id": "0123456789AB",
      "name": "ci-deploy",
      "scopes": [
        "deploy",
        "logs:read"
      ],
      "created": "2026-11-01T12:00:00Z",
      "expires": "2026-12-01T12:00:00Z",
      "status": {
        "state": "active"
      },
      "digest": "DIGEST"
    },
    {
      "id": "ZYXWVUTSRQPO",
      "name": "old",
      "scopes": [],
      "created": "2026-10-01T00:00:00Z",
      "expires": null,
      "status": {
        "state": "retiring",
        "until": "2026-11-02T12:00:00Z"
      },
      "digest": "0000000000000000000000000000000000000000000000000000000000000000"
    },
    {
      "id": "abcdefghijkl",
      "name": "gone",
      "scopes": [],
      "created": "2026-10-01T00:00:00Z",
      "expires": null,
      "status": {
        "state": "revoked",
        "at": "2026-10-02T00:00:00Z"
      },
      "digest": "1111111111111111111111111111111111111111111111111111111111111111"
    }
  ]
}
"#;

#[test]
fn golden_file_reads_verifies_and_writes_back_identically() {
    let token = spec_token("kg", "0123456789AB", "abcdefghijklmnopqrstuvwxyzABCDEF");
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper().as_bytes()).unwrap();
    mac.update(token.as_bytes());
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text = GOLDEN.replace("DIGEST", &digest);
    let store = Store::from_json(&text).unwrap();
    assert_eq!(store.to_json(), text);
    let info = store
        .verify(&pepper(), &token, datetime!(2026-11-15 0:00 UTC))
        .unwrap();
    assert_eq!(info.name, "ci-deploy");
    assert_eq!(info.scopes, ["deploy", "logs:read"]);
    assert_eq!(
        store.get("ZYXWVUTSRQPO").unwrap().status,
        Status::Retiring {
            until: datetime!(2026-11-02 12:00 UTC)
        }
    );
}

#[test]
fn corrupt_json_names_the_line() {
    let good = GOLDEN.replace("DIGEST", &"a".repeat(64));
    // Drop the comma at the end of line 5 ("id": ...,).
    let lines: Vec<&str> = good.lines().collect();
    assert!(lines[5].ends_with(','));
    let mut broken: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    broken[5].pop();
    let err = Store::from_json(&broken.join("\n")).unwrap_err();
    match &err {
        StoreError::Json { line, .. } => assert_eq!(*line, 7, "{err}"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("line 7"), "{err}");
    assert!(err.hint().unwrap().contains("line 7"));

    for (text, what) in [
        ("", "empty"),
        ("{", "cut short"),
        ("[]", "not an object"),
        (r#"{"version": 1, "prefix": "kg"}"#, "missing entries"),
        (
            r#"{"version": 1, "prefix": "kg", "entries": [], "extra": 1}"#,
            "unknown field",
        ),
    ] {
        assert!(
            matches!(Store::from_json(text), Err(StoreError::Json { .. })),
            "{what}"
        );
    }
    // A missing field inside an entry still gives a position.
    let missing = good.replacen("      \"name\": \"old\",\n", "", 1);
    match Store::from_json(&missing).unwrap_err() {
        StoreError::Json { line, .. } => assert!(line > 20, "line {line}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_entries_are_named() {
    let good = GOLDEN.replace("DIGEST", &"a".repeat(64));
    assert!(Store::from_json(&good).is_ok());

    let dup = good.replace("ZYXWVUTSRQPO", "0123456789AB");
    let err = Store::from_json(&dup).unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidEntry { number: 2, id: Some(id), .. } if id == "0123456789AB"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "entry #2 (id 0123456789AB) in the token store is invalid: its id is also used by entry #1"
    );

    let short = good.replace(&"1".repeat(64), &"1".repeat(63));
    let err = Store::from_json(&short).unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidEntry { number: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("63 characters"), "{err}");
    let not_hex = good.replace(&"1".repeat(64), &"g".repeat(64));
    assert!(matches!(
        Store::from_json(&not_hex),
        Err(StoreError::InvalidEntry { number: 3, .. })
    ));

    let bad_id = good.replace("abcdefghijkl", "abc-efghijkl");
    let err = Store::from_json(&bad_id).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidEntry {
                number: 3,
                id: None,
                ..
            }
        ),
        "{err:?}"
    );

    let bad_name = good.replace("\"gone\"", "\"has space\"");
    assert!(matches!(
        Store::from_json(&bad_name),
        Err(StoreError::InvalidEntry { number: 3, .. })
    ));

    let bad_prefix = good.replace("\"prefix\": \"kg\"", "\"prefix\": \"K_G\"");
    assert!(matches!(
        Store::from_json(&bad_prefix),
        Err(StoreError::BadPrefix(_))
    ));

    let odd_status = good.replacen(
        "\"state\": \"active\"",
        "\"state\": \"active\", \"x\": 1",
        1,
    );
    assert!(matches!(
        Store::from_json(&odd_status),
        Err(StoreError::Json { .. })
    ));
    let odd_retiring = good.replacen(
        "\"state\": \"retiring\",",
        "\"state\": \"retiring\", \"x\": 1,",
        1,
    );
    assert!(matches!(
        Store::from_json(&odd_retiring),
        Err(StoreError::Json { .. })
    ));
    let unknown_state = good.replacen("\"state\": \"active\"", "\"state\": \"paused\"", 1);
    assert!(matches!(
        Store::from_json(&unknown_state),
        Err(StoreError::Json { .. })
    ));

    let newer = good.replace("\"version\": 1", "\"version\": 2");
    let newer = newer.replace("\"entries\"", "\"new_field\": true, \"entries\"");
    assert!(matches!(
        Store::from_json(&newer),
        Err(StoreError::UnsupportedVersion { found: 2 })
    ));
}

#[test]
fn times_are_stored_in_utc() {
    let mut store = Store::default();
    let local = T0.to_offset(time::macros::offset!(+2));
    let (entry, _) = store
        .create(
            &pepper(),
            "a",
            vec![],
            Some(local + Duration::days(1)),
            local,
        )
        .unwrap();
    assert_eq!(entry.created.offset(), time::UtcOffset::UTC);
    assert!(
        store
            .to_json()
            .contains("\"created\": \"2026-11-01T12:00:00Z\"")
    );
}

#[test]
fn pepper_text_round_trip() {
    use secrecy::ExposeSecret;
    let p = Pepper::generate();
    let text = p.to_text();
    assert_eq!(text.expose_secret().len(), 65);
    assert!(text.expose_secret().ends_with('\n'));
    let back = Pepper::from_text(text.expose_secret()).unwrap();
    assert_eq!(back.as_bytes(), p.as_bytes());
    assert_eq!(
        Pepper::from_text(&text.expose_secret().to_uppercase())
            .unwrap()
            .as_bytes(),
        p.as_bytes()
    );
    assert_ne!(Pepper::generate().as_bytes(), p.as_bytes());
    for bad in ["", "abc", &"g".repeat(64), &"a".repeat(66)] {
        let err = Pepper::from_text(bad).unwrap_err();
        assert!(bad.is_empty() || !err.to_string().contains(bad));
    }
}

/// A scope is stored and listed in the clear, so a token pasted as a scope is refused like a
/// token pasted as a name, and not echoed.
#[test]
fn scope_that_is_a_token_is_refused_and_not_echoed() {
    let mut store = Store::default();
    let (_, token) = create(&mut store, "svc", None);
    let err = store
        .create(
            &pepper(),
            "other",
            scopes(&["read", token.expose_secret()]),
            None,
            T0,
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ScopeLooksLikeToken { number: 2 }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(token.expose_secret()));
    assert!(!format!("{err:?}").contains(token.expose_secret()));
    assert!(store.find_active("other").is_none());
}

/// Stores over 4 MB are parsed in two halves on two threads; the result, and every error,
/// must be exactly what one pass gives: the same entries in the same order, tokens from both
/// halves verifying, and problems in the second half (or an id repeated across the halves)
/// named by their entry number.
#[test]
fn large_stores_read_in_halves_as_in_one_pass() {
    let mut store = Store::default();
    let tokens: Vec<(Entry, TokenSecret)> = (0..16_000)
        .map(|i| {
            store
                .create_additional(
                    &pepper(),
                    &format!("client-{i}"),
                    scopes(&["read"]),
                    None,
                    T0,
                )
                .unwrap()
        })
        .collect();
    let text = store.to_json();
    assert!(
        text.len() > 4 << 20,
        "{} bytes: the halves path is not taken",
        text.len()
    );
    let again = Store::from_json(&text).unwrap();
    assert_eq!(again.list(), store.list());
    assert_eq!(again.to_json(), text);
    for (entry, token) in [&tokens[0], &tokens[7_999], &tokens[8_000], &tokens[15_999]] {
        let info = again.verify(&pepper(), token.expose_secret(), T0).unwrap();
        assert_eq!(info.id, entry.id);
        assert_eq!(again.get(&entry.id).unwrap().name, entry.name);
    }

    // A bad name in entry 15,000 (second half).
    let bad = text.replacen("\"client-14999\"", "\"client 14999\"", 1);
    match Store::from_json(&bad).unwrap_err() {
        StoreError::InvalidEntry { number, .. } => assert_eq!(number, 15_000),
        other => panic!("{other:?}"),
    }
    // The id of entry 2 repeated in entry 12,000.
    let (id2, id12k) = (&tokens[1].0.id, &tokens[11_999].0.id);
    let dup = text.replacen(
        &format!("\"id\": \"{id12k}\""),
        &format!("\"id\": \"{id2}\""),
        1,
    );
    match Store::from_json(&dup).unwrap_err() {
        StoreError::InvalidEntry {
            number, problem, ..
        } => {
            assert_eq!(number, 12_000);
            assert!(problem.contains("entry #2"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    // A syntax error late in the file keeps its line.
    let cut = &text[..text.len() - 10];
    match Store::from_json(cut).unwrap_err() {
        StoreError::Json { line, .. } => assert!(line > 100_000, "line {line}"),
        other => panic!("{other:?}"),
    }
}
