//! The contract of each store trait, as tests any implementation must pass: SQLite's in
//! this crate's tests, PostgreSQL's when it comes. Each check takes a fresh, empty store
//! from `make` and panics, naming the rule, when the store breaks it.

use crate::{ClientRecord, ClientStore, SecretRecord, SessionLimits, SessionRecord, SessionStore};

/// Runs every [`SessionStore`] check.
pub fn sessions(make: &dyn Fn() -> Box<dyn SessionStore>) {
    for (name, check) in SESSION_CHECKS {
        let store = make();
        run("session", name, || check(&*store));
    }
}

/// Runs every [`ClientStore`] check.
pub fn clients(make: &dyn Fn() -> Box<dyn ClientStore>) {
    for (name, check) in CLIENT_CHECKS {
        let store = make();
        run("client", name, || check(&*store));
    }
}

/// Runs one check, and names the rule when the store breaks it.
fn run(kind: &str, name: &str, check: impl FnOnce()) {
    let broken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    if let Err(e) = broken {
        let why = e
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| e.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        panic!("the {kind} store breaks \"{name}\": {why}");
    }
}

type ClientCheck = fn(&dyn ClientStore);

/// The client checks, by name.
pub const CLIENT_CHECKS: &[(&str, ClientCheck)] = &[
    ("a client and its secret read back whole", client_reads_back),
    ("a live name is unique, a revoked one is free", client_names),
    (
        "a rotation adds a secret and ends the others at the grace",
        client_rotation,
    ),
    ("revoking ends a client once", client_revoke),
    (
        "revoked tokens are listed until they expire",
        token_revocations,
    ),
];

fn client(id: &str, name: &str) -> ClientRecord {
    ClientRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        grants: vec!["client_credentials".into()],
        scopes: vec!["deploy".into(), "read".into()],
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        public: false,
        created: 1_000,
        revoked: None,
    }
}

fn secret(id: &str, n: u8, created: i64) -> SecretRecord {
    SecretRecord {
        id: id.to_owned(),
        digest: [n; 32],
        created,
        until: None,
    }
}

fn client_reads_back(s: &dyn ClientStore) {
    let c = client("kgc_AAAA", "deploy");
    s.insert_client(&c, Some(&secret("S1", 1, 1_000))).unwrap();
    assert_eq!(s.client("kgc_AAAA").unwrap(), Some(c.clone()));
    assert_eq!(s.client_named("deploy").unwrap(), Some(c.clone()));
    assert_eq!(s.client("kgc_BBBB").unwrap(), None, "an unknown id is none");
    assert_eq!(s.clients().unwrap(), vec![c]);
    assert_eq!(
        s.client_secrets("kgc_AAAA").unwrap(),
        vec![secret("S1", 1, 1_000)]
    );
    let public = ClientRecord {
        public: true,
        grants: vec![],
        scopes: vec![],
        redirect_uris: vec![],
        ..client("kgc_PPPP", "cli")
    };
    s.insert_client(&public, None).unwrap();
    assert_eq!(s.client("kgc_PPPP").unwrap(), Some(public), "empty lists");
    assert!(s.client_secrets("kgc_PPPP").unwrap().is_empty());
}

fn client_names(s: &dyn ClientStore) {
    s.insert_client(&client("kgc_AAAA", "deploy"), None)
        .unwrap();
    let err = s
        .insert_client(&client("kgc_BBBB", "deploy"), Some(&secret("S1", 1, 1)))
        .unwrap_err();
    assert!(matches!(err, crate::Error::Conflict { .. }), "{err}");
    assert_eq!(s.client("kgc_BBBB").unwrap(), None, "nothing written");
    assert!(s.client_secrets("kgc_BBBB").unwrap().is_empty());
    assert!(s.revoke_client("kgc_AAAA", 2_000).unwrap());
    s.insert_client(&client("kgc_BBBB", "deploy"), None)
        .unwrap();
    assert_eq!(s.client_named("deploy").unwrap().unwrap().id, "kgc_BBBB");
}

fn client_rotation(s: &dyn ClientStore) {
    s.insert_client(&client("kgc_AAAA", "deploy"), Some(&secret("S1", 1, 1_000)))
        .unwrap();
    assert!(
        s.add_client_secret("kgc_AAAA", &secret("S2", 2, 2_000), 5_000)
            .unwrap()
    );
    // A second rotation with a later grace does not lengthen the first secret's.
    assert!(
        s.add_client_secret("kgc_AAAA", &secret("S3", 3, 3_000), 9_000)
            .unwrap()
    );
    let until: Vec<_> = s
        .client_secrets("kgc_AAAA")
        .unwrap()
        .into_iter()
        .map(|x| (x.id, x.until))
        .collect();
    assert_eq!(
        until,
        vec![
            ("S1".into(), Some(5_000)),
            ("S2".into(), Some(9_000)),
            ("S3".into(), None)
        ]
    );
    assert!(
        !s.add_client_secret("kgc_NONE", &secret("S4", 4, 1), 1)
            .unwrap(),
        "an unknown client"
    );
    s.revoke_client("kgc_AAAA", 4_000).unwrap();
    assert!(
        !s.add_client_secret("kgc_AAAA", &secret("S5", 5, 1), 1)
            .unwrap(),
        "a revoked client"
    );
    assert_eq!(
        s.client_secrets("kgc_AAAA").unwrap().len(),
        3,
        "nothing added"
    );
}

fn client_revoke(s: &dyn ClientStore) {
    s.insert_client(&client("kgc_AAAA", "deploy"), None)
        .unwrap();
    assert!(s.revoke_client("kgc_AAAA", 2_000).unwrap(), "revoked");
    assert!(!s.revoke_client("kgc_AAAA", 3_000).unwrap(), "already");
    assert!(!s.revoke_client("kgc_NONE", 3_000).unwrap(), "unknown");
    assert_eq!(s.client("kgc_AAAA").unwrap().unwrap().revoked, Some(2_000));
    assert_eq!(s.client_named("deploy").unwrap(), None);
    assert_eq!(
        s.revocations(0).unwrap().clients,
        vec!["kgc_AAAA".to_owned()]
    );
}

fn token_revocations(s: &dyn ClientStore) {
    s.revoke_token("jti-1", "kgc_AAAA", 100).unwrap();
    s.revoke_token("jti-1", "kgc_AAAA", 100).unwrap();
    s.revoke_token("jti-2", "kgc_AAAA", 200).unwrap();
    assert_eq!(s.revocations(50).unwrap().tokens.len(), 2);
    assert_eq!(s.revocations(100).unwrap().tokens, vec!["jti-2".to_owned()]);
    assert_eq!(s.sweep_revoked_tokens(100).unwrap(), 1);
    assert_eq!(s.revocations(0).unwrap().tokens, vec!["jti-2".to_owned()]);
}

type Check = fn(&dyn SessionStore);

/// The checks, by name.
pub const SESSION_CHECKS: &[(&str, Check)] = &[
    ("a stored session reads back whole", reads_back),
    ("a use never moves back in time", touch_is_monotonic),
    ("ending a session removes it once", end_once),
    (
        "one token's sessions are bounded, others kept",
        per_token_bound,
    ),
    (
        "the total is bounded, least recently used first",
        total_bound,
    ),
    ("sweeping removes the old and the idle only", sweep),
];

const ROOMY: SessionLimits = SessionLimits {
    per_token: 100,
    total: 1000,
};

fn session(n: u8, token: &str, created: i64, used: i64) -> SessionRecord {
    SessionRecord {
        digest: [n; 32],
        token_id: token.to_owned(),
        created,
        used,
    }
}

fn reads_back(s: &dyn SessionStore) {
    let a = session(1, "AAAAAAAAAAAA", 1_000, 2_000);
    s.insert_session(&a, ROOMY).unwrap();
    assert_eq!(s.session(&a.digest).unwrap(), Some(a.clone()), "reads back");
    assert_eq!(
        s.session(&[9; 32]).unwrap(),
        None,
        "an unknown digest is none"
    );
    assert_eq!(s.session_count().unwrap(), 1);
}

fn touch_is_monotonic(s: &dyn SessionStore) {
    let a = session(1, "AAAAAAAAAAAA", 1_000, 5_000);
    s.insert_session(&a, ROOMY).unwrap();
    s.touch_session(&a.digest, 4_000).unwrap();
    assert_eq!(
        s.session(&a.digest).unwrap().unwrap().used,
        5_000,
        "not moved back"
    );
    s.touch_session(&a.digest, 9_000).unwrap();
    assert_eq!(
        s.session(&a.digest).unwrap().unwrap().used,
        9_000,
        "moved on"
    );
    // Touching one that is gone is no error.
    s.touch_session(&[7; 32], 9_000).unwrap();
}

fn end_once(s: &dyn SessionStore) {
    let a = session(1, "AAAAAAAAAAAA", 1, 1);
    s.insert_session(&a, ROOMY).unwrap();
    assert!(s.end_session(&a.digest).unwrap(), "ended");
    assert!(!s.end_session(&a.digest).unwrap(), "already ended");
    assert_eq!(s.session(&a.digest).unwrap(), None);
}

fn per_token_bound(s: &dyn SessionStore) {
    let limits = SessionLimits {
        per_token: 3,
        total: 1000,
    };
    s.insert_session(&session(100, "OTHERTOKEN00", 1, 1), limits)
        .unwrap();
    for n in 1..=5u8 {
        let used = i64::from(n) * 10;
        s.insert_session(&session(n, "AAAAAAAAAAAA", used, used), limits)
            .unwrap();
    }
    // The token's three most recently used remain; the other token's one is untouched,
    // though it is the least recently used of all.
    for (n, kept) in [(1, false), (2, false), (3, true), (4, true), (5, true)] {
        assert_eq!(s.session(&[n; 32]).unwrap().is_some(), kept, "session {n}");
    }
    assert!(
        s.session(&[100; 32]).unwrap().is_some(),
        "another token's session"
    );
}

fn total_bound(s: &dyn SessionStore) {
    let limits = SessionLimits {
        per_token: 100,
        total: 3,
    };
    for (n, used) in [(1u8, 30), (2, 10), (3, 20)] {
        s.insert_session(&session(n, &format!("TOKEN{n:07}"), 1, used), limits)
            .unwrap();
    }
    s.insert_session(&session(4, "TOKEN0000004", 1, 40), limits)
        .unwrap();
    assert_eq!(s.session_count().unwrap(), 3);
    assert_eq!(
        s.session(&[2; 32]).unwrap(),
        None,
        "the least recently used went"
    );
    for n in [1u8, 3, 4] {
        assert!(s.session(&[n; 32]).unwrap().is_some(), "session {n} stays");
    }
}

fn sweep(s: &dyn SessionStore) {
    s.insert_session(&session(1, "AAAAAAAAAAAA", 10, 100), ROOMY)
        .unwrap(); // too old
    s.insert_session(&session(2, "AAAAAAAAAAAA", 50, 60), ROOMY)
        .unwrap(); // idle
    s.insert_session(&session(3, "AAAAAAAAAAAA", 50, 100), ROOMY)
        .unwrap(); // live
    assert_eq!(s.sweep_sessions(20, 80).unwrap(), 2);
    assert_eq!(s.session_count().unwrap(), 1);
    assert!(s.session(&[3; 32]).unwrap().is_some());
}
