//! The contract of each store trait, as tests any implementation must pass: SQLite's in
//! this crate's tests, PostgreSQL's when it comes. Each check takes a fresh, empty store
//! from `make` and panics, naming the rule, when the store breaks it.

use crate::{
    Approval, ClientRecord, ClientStore, CodeRecord, CodeTake, DevicePoll, DeviceRecord,
    GrantRecord, GrantStore, RefreshRecord, RefreshUse, SecretRecord, SessionLimits, SessionRecord,
    SessionStore, UserRecord, UserStore,
};

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

/// Runs every [`UserStore`] check.
pub fn users(make: &dyn Fn() -> Box<dyn UserStore>) {
    for (name, check) in USER_CHECKS {
        let store = make();
        run("user", name, || check(&*store));
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
    ("the version moves with every write", version_moves),
];

fn version_moves(s: &dyn SessionStore) {
    let v0 = s.version().unwrap();
    assert_eq!(s.version().unwrap(), v0, "a read moves nothing");
    let a = session(1, "AAAAAAAAAAAA", 1_000, 2_000);
    s.insert_session(&a, ROOMY).unwrap();
    let v1 = s.version().unwrap();
    assert_ne!(v1, v0, "an insert");
    s.session(&a.digest).unwrap();
    assert_eq!(s.version().unwrap(), v1);
    s.touch_session(&a.digest, 3_000).unwrap();
    let v2 = s.version().unwrap();
    assert_ne!(v2, v1, "a touch");
    s.end_session(&a.digest).unwrap();
    assert_ne!(s.version().unwrap(), v2, "an end");
}

const ROOMY: SessionLimits = SessionLimits {
    per_token: 100,
    total: 1000,
};

fn session(n: u8, token: &str, created: i64, used: i64) -> SessionRecord {
    SessionRecord {
        digest: [n; 32],
        token_id: token.to_owned(),
        user_id: None,
        service: None,
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

/// Runs every [`GrantStore`] check.
pub fn grants(make: &dyn Fn() -> Box<dyn GrantStore>) {
    for (name, check) in GRANT_CHECKS {
        let store = make();
        run("grant", name, || check(&*store));
    }
}

type GrantCheck = fn(&dyn GrantStore);

/// The grant checks, by name.
pub const GRANT_CHECKS: &[(&str, GrantCheck)] = &[
    ("a code is redeemed once, then seen as a replay", code_once),
    ("an expired code is unknown", code_expiry),
    (
        "a refresh token rotates once; a quick identical retry is a retry",
        refresh_rotation,
    ),
    (
        "a spent refresh token used outside the grace revokes its grant",
        refresh_reuse,
    ),
    (
        "a device authorization polls, slows down and pays out once",
        device_flow,
    ),
    (
        "a denied or foreign device authorization gives nothing",
        device_denied,
    ),
];

fn code(n: u8, expires: i64) -> CodeRecord {
    CodeRecord {
        digest: [n; 32],
        client_id: "kgc_AAAA".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        subject: "alice".into(),
        scope: "openid".into(),
        resource: None,
        challenge: Some("challenge".into()),
        nonce: Some("n".into()),
        auth_time: 1,
        expires,
        used: None,
        grant_id: None,
        token_id: Some("TOKENID00001".into()),
    }
}

fn code_once(s: &dyn GrantStore) {
    s.insert_code(&code(1, 1_000)).unwrap();
    assert_eq!(
        s.take_code(&[1; 32], "kgc_OTHER", 400).unwrap(),
        CodeTake::Unknown,
        "another client's code"
    );
    let CodeTake::Fresh(c) = s.take_code(&[1; 32], "kgc_AAAA", 500).unwrap() else {
        panic!("the first redemption, untouched by the other client's try");
    };
    assert_eq!(c.challenge.as_deref(), Some("challenge"));
    assert_eq!(c.token_id.as_deref(), Some("TOKENID00001"));
    s.set_code_grant(&[1; 32], "G1").unwrap();
    match s.take_code(&[1; 32], "kgc_AAAA", 600).unwrap() {
        CodeTake::Replayed(c) => assert_eq!(c.grant_id.as_deref(), Some("G1")),
        other => panic!("a replay: {other:?}"),
    }
    assert_eq!(
        s.take_code(&[1; 32], "kgc_OTHER", 600).unwrap(),
        CodeTake::Unknown,
        "another client learns nothing of a replay"
    );
    assert_eq!(
        s.take_code(&[9; 32], "kgc_AAAA", 600).unwrap(),
        CodeTake::Unknown
    );
}

fn code_expiry(s: &dyn GrantStore) {
    s.insert_code(&code(1, 1_000)).unwrap();
    assert_eq!(
        s.take_code(&[1; 32], "kgc_AAAA", 1_000).unwrap(),
        CodeTake::Unknown
    );
}

fn grant(id: &str) -> GrantRecord {
    GrantRecord {
        id: id.into(),
        client_id: "kgc_AAAA".into(),
        subject: "alice".into(),
        scope: "openid".into(),
        resource: None,
        auth_time: 1,
        created: 1,
        expires: 1_000_000,
        revoked: None,
        token_id: Some("TOKENID00001".into()),
    }
}

fn rt(n: u8, grant: &str) -> RefreshRecord {
    RefreshRecord {
        digest: [n; 32],
        grant_id: grant.into(),
        created: 1,
    }
}

fn refresh_rotation(s: &dyn GrantStore) {
    s.insert_grant(&grant("G1"), &rt(1, "G1")).unwrap();
    assert!(matches!(
        s.use_refresh(&[1; 32], &rt(2, "G1"), 100, 5_000).unwrap(),
        RefreshUse::Rotated(_)
    ));
    // The same request again a moment later, its successor still unspent.
    assert!(matches!(
        s.use_refresh(&[1; 32], &rt(2, "G1"), 2_000, 5_000).unwrap(),
        RefreshUse::Retried(_)
    ));
    assert!(matches!(
        s.use_refresh(&[2; 32], &rt(3, "G1"), 2_100, 5_000).unwrap(),
        RefreshUse::Rotated(_)
    ));
    assert_eq!(s.refresh_grant(&[3; 32]).unwrap().unwrap().id, "G1");
    assert_eq!(
        s.use_refresh(&[8; 32], &rt(9, "G1"), 2_100, 5_000).unwrap(),
        RefreshUse::Unknown
    );
    assert!(s.revoked_grants(0).unwrap().is_empty());
}

fn refresh_reuse(s: &dyn GrantStore) {
    s.insert_grant(&grant("G1"), &rt(1, "G1")).unwrap();
    s.use_refresh(&[1; 32], &rt(2, "G1"), 100, 5_000).unwrap();
    s.use_refresh(&[2; 32], &rt(3, "G1"), 200, 5_000).unwrap();
    // Token 1 again, within the grace but its successor is spent: a replay.
    assert!(matches!(
        s.use_refresh(&[1; 32], &rt(2, "G1"), 300, 5_000).unwrap(),
        RefreshUse::Reused(_)
    ));
    assert_eq!(s.revoked_grants(0).unwrap(), vec!["G1".to_owned()]);
    assert_eq!(
        s.use_refresh(&[3; 32], &rt(4, "G1"), 400, 5_000).unwrap(),
        RefreshUse::Ended,
        "the whole family is gone"
    );
    s.insert_grant(&grant("G2"), &rt(5, "G2")).unwrap();
    s.use_refresh(&[5; 32], &rt(6, "G2"), 100, 5_000).unwrap();
    assert!(
        matches!(
            s.use_refresh(&[5; 32], &rt(6, "G2"), 5_101, 5_000).unwrap(),
            RefreshUse::Reused(_)
        ),
        "outside the grace"
    );
    assert!(s.revoke_grant("G1", 1).is_ok_and(|changed| !changed));
}

const ALICE: Approval<'static> = Approval {
    subject: "alice",
    token_id: "TOKENID00001",
    auth_time: 26_000,
};

fn device(n: u8, user_code: &str) -> DeviceRecord {
    DeviceRecord {
        digest: [n; 32],
        user_code: user_code.into(),
        client_id: "kgc_AAAA".into(),
        scope: "openid".into(),
        resource: None,
        expires: 100_000,
        interval_ms: 5_000,
        next_poll: 5_000,
        subject: None,
        auth_time: None,
        denied: None,
        used: None,
        token_id: None,
    }
}

fn device_flow(s: &dyn GrantStore) {
    s.insert_device(&device(1, "BCDFGHJK")).unwrap();
    assert!(matches!(
        s.insert_device(&device(2, "BCDFGHJK")),
        Err(crate::Error::Conflict { .. })
    ));
    let poll = |now| s.poll_device(&[1; 32], "kgc_AAAA", now, 5_000).unwrap();
    assert_eq!(poll(1_000), DevicePoll::SlowDown, "before the interval");
    // The interval grew to 10 s, counted from that poll.
    assert_eq!(poll(10_999), DevicePoll::SlowDown);
    assert_eq!(poll(25_999), DevicePoll::Pending);
    assert!(s.device_by_user_code("BCDFGHJK", 26_000).unwrap().is_some());
    assert!(s.decide_device("BCDFGHJK", Some(ALICE), 26_000).unwrap());
    match poll(41_000) {
        DevicePoll::Approved(d) => {
            assert_eq!(d.subject.as_deref(), Some("alice"));
            assert_eq!(d.token_id.as_deref(), Some("TOKENID00001"));
        }
        other => panic!("approved: {other:?}"),
    }
    assert_eq!(poll(56_000), DevicePoll::Used, "tokens are issued once");
    let mut short = device(3, "ZXCVBNMQ");
    short.expires = 10_000;
    s.insert_device(&short).unwrap();
    assert_eq!(
        s.poll_device(&[3; 32], "kgc_AAAA", 10_000, 5_000).unwrap(),
        DevicePoll::Expired
    );
    assert!(s.device_by_user_code("ZXCVBNMQ", 10_000).unwrap().is_none());
}

fn device_denied(s: &dyn GrantStore) {
    s.insert_device(&device(1, "BCDFGHJK")).unwrap();
    assert_eq!(
        s.poll_device(&[1; 32], "kgc_OTHER", 6_000, 5_000).unwrap(),
        DevicePoll::Unknown,
        "another client's device code"
    );
    assert!(s.decide_device("BCDFGHJK", None, 100).unwrap());
    assert!(
        !s.decide_device("BCDFGHJK", Some(ALICE), 100).unwrap(),
        "decided once"
    );
    assert_eq!(
        s.poll_device(&[1; 32], "kgc_AAAA", 6_000, 5_000).unwrap(),
        DevicePoll::Denied
    );
}

type UserCheck = fn(&dyn UserStore);

/// The user checks, by name.
pub const USER_CHECKS: &[(&str, UserCheck)] = &[
    (
        "a person reads back whole, by id and by name",
        user_reads_back,
    ),
    ("a name is unique", user_names),
    (
        "an edit of a stale revision is refused and writes nothing",
        user_stale_edit,
    ),
    (
        "a TOTP step is accepted once, never an earlier one",
        totp_steps,
    ),
    ("a recovery code works once", recovery_codes),
    (
        "groups hold members; removal takes memberships along",
        groups,
    ),
    (
        "a person's sessions are theirs, and end with a new password or removal",
        user_sessions,
    ),
    (
        "the store version moves with every change to people",
        people_version,
    ),
    ("a launch ticket is spent once", tickets),
    (
        "a reset link works once, before it expires, and ends its siblings",
        resets,
    ),
    (
        "the audit trail reads back newest first, by person, and is pruned",
        audit_trail,
    ),
];

fn audit_trail(s: &dyn UserStore) {
    let ev = |at: i64, event: &str, user: Option<&str>| crate::AuditEvent {
        at,
        event: event.into(),
        user: user.map(str::to_owned),
        client: Some("127.0.0.1".into()),
        detail: None,
    };
    s.record_event(&ev(10, "signed_in", Some("alice"))).unwrap();
    s.record_event(&ev(20, "bad_password", Some("bob")))
        .unwrap();
    s.record_event(&ev(30, "unknown_user", None)).unwrap();
    let all: Vec<String> = s
        .events(0, None, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(all, ["unknown_user", "bad_password", "signed_in"]);
    assert_eq!(
        s.events(0, Some("alice"), 10).unwrap(),
        vec![ev(10, "signed_in", Some("alice"))]
    );
    assert_eq!(s.events(15, None, 10).unwrap().len(), 2, "since");
    assert_eq!(s.events(0, None, 1).unwrap().len(), 1, "limit");
    assert_eq!(s.prune_events(25).unwrap(), 2);
    assert_eq!(s.events(0, None, 10).unwrap().len(), 1);
}

fn resets(s: &dyn UserStore) {
    s.insert_user(&person("u1", "alice")).unwrap();
    s.insert_reset(&[1; 32], "u1", 100, 10).unwrap();
    s.insert_reset(&[2; 32], "u1", 100, 10).unwrap();
    assert_eq!(s.reset_user(&[1; 32], 50).unwrap().as_deref(), Some("u1"));
    assert_eq!(s.reset_user(&[1; 32], 100).unwrap(), None, "expired");
    assert_eq!(s.take_reset(&[9; 32], 50).unwrap(), None);
    assert_eq!(s.take_reset(&[1; 32], 50).unwrap().as_deref(), Some("u1"));
    assert_eq!(s.take_reset(&[1; 32], 51).unwrap(), None, "used");
    assert_eq!(
        s.take_reset(&[2; 32], 52).unwrap(),
        None,
        "ended with its sibling"
    );
    s.insert_reset(&[3; 32], "u1", 100, 60).unwrap();
    assert!(s.remove_user("u1").unwrap());
    assert_eq!(s.reset_user(&[3; 32], 61).unwrap(), None, "gone with her");
}

fn tickets(s: &dyn UserStore) {
    assert!(s.spend_ticket(&[1; 32], 100, 10).unwrap());
    assert!(!s.spend_ticket(&[1; 32], 100, 20).unwrap(), "spent");
    assert!(s.spend_ticket(&[2; 32], 100, 20).unwrap());
    // Past its expiry a spent ticket may be forgotten: it would be refused as expired.
    assert!(!s.spend_ticket(&[1; 32], 100, 99).unwrap());
}

fn person(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        email: Some(format!("{name}@example.com")),
        password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        must_change: true,
        disabled: false,
        totp: None,
        totp_step: None,
        revision: 1,
        created: 1_000,
        changed: 1_000,
    }
}

fn user_reads_back(s: &dyn UserStore) {
    let a = person("u1", "alice");
    s.insert_user(&a).unwrap();
    assert_eq!(s.user("u1").unwrap(), Some(a.clone()));
    assert_eq!(s.user_named("alice").unwrap(), Some(a.clone()));
    assert_eq!(s.user("u2").unwrap(), None);
    assert_eq!(s.user_named("bob").unwrap(), None);
    let b = UserRecord {
        email: None,
        totp: Some(vec![7; 20]),
        totp_step: Some(5),
        ..person("u2", "bob")
    };
    s.insert_user(&b).unwrap();
    assert_eq!(s.users().unwrap(), vec![a, b], "by name");
}

fn user_names(s: &dyn UserStore) {
    s.insert_user(&person("u1", "alice")).unwrap();
    let err = s.insert_user(&person("u2", "alice")).unwrap_err();
    assert!(matches!(err, crate::Error::Conflict { .. }), "{err}");
    assert_eq!(s.user("u2").unwrap(), None, "nothing written");
    s.insert_user(&person("u2", "bob")).unwrap();
    let renamed = UserRecord {
        name: "alice".into(),
        ..s.user("u2").unwrap().unwrap()
    };
    let err = s.update_user(&renamed, false).unwrap_err();
    assert!(matches!(err, crate::Error::Conflict { .. }), "{err}");
}

fn user_stale_edit(s: &dyn UserStore) {
    s.insert_user(&person("u1", "alice")).unwrap();
    let read = s.user("u1").unwrap().unwrap();
    let first = UserRecord {
        disabled: true,
        changed: 2_000,
        ..read.clone()
    };
    let stored = s.update_user(&first, false).unwrap();
    assert_eq!(stored.revision, 2);
    assert_eq!(s.user("u1").unwrap(), Some(stored.clone()));
    let second = UserRecord {
        email: None,
        ..read
    };
    let err = s.update_user(&second, false).unwrap_err();
    assert!(matches!(err, crate::Error::Stale { .. }), "{err}");
    assert_eq!(s.user("u1").unwrap(), Some(stored), "nothing written");
    let ghost = person("u9", "ghost");
    let err = s.update_user(&ghost, false).unwrap_err();
    assert!(matches!(err, crate::Error::NotFound { .. }), "{err}");
}

fn totp_steps(s: &dyn UserStore) {
    s.insert_user(&person("u1", "alice")).unwrap();
    assert!(!s.advance_totp("u1", 10).unwrap(), "no secret, no step");
    let u = UserRecord {
        totp: Some(vec![1; 20]),
        ..s.user("u1").unwrap().unwrap()
    };
    s.update_user(&u, false).unwrap();
    assert!(s.advance_totp("u1", 10).unwrap());
    assert!(!s.advance_totp("u1", 10).unwrap(), "the same step twice");
    assert!(!s.advance_totp("u1", 9).unwrap(), "an earlier step");
    assert!(s.advance_totp("u1", 11).unwrap());
    assert_eq!(s.user("u1").unwrap().unwrap().totp_step, Some(11));
    assert!(!s.advance_totp("u2", 12).unwrap(), "nobody");
}

fn recovery_codes(s: &dyn UserStore) {
    s.insert_user(&person("u1", "alice")).unwrap();
    s.insert_user(&person("u2", "bob")).unwrap();
    s.set_recovery_codes("u1", &[[1; 32], [2; 32]]).unwrap();
    assert_eq!(s.recovery_codes_left("u1").unwrap(), 2);
    assert!(!s.use_recovery_code("u2", &[1; 32]).unwrap(), "not bob's");
    assert!(s.use_recovery_code("u1", &[1; 32]).unwrap());
    assert!(!s.use_recovery_code("u1", &[1; 32]).unwrap(), "spent");
    assert_eq!(s.recovery_codes_left("u1").unwrap(), 1);
    s.set_recovery_codes("u1", &[[3; 32]]).unwrap();
    assert!(!s.use_recovery_code("u1", &[2; 32]).unwrap(), "replaced");
    assert!(s.remove_user("u1").unwrap());
    assert_eq!(s.recovery_codes_left("u1").unwrap(), 0);
}

fn groups(s: &dyn UserStore) {
    s.insert_user(&person("u1", "alice")).unwrap();
    s.insert_user(&person("u2", "bob")).unwrap();
    s.insert_group("ops", "the pager", 5).unwrap();
    s.insert_group("dev", "", 6).unwrap();
    let err = s.insert_group("ops", "", 7).unwrap_err();
    assert!(matches!(err, crate::Error::Conflict { .. }), "{err}");
    assert!(s.add_member("ops", "u1").unwrap());
    assert!(!s.add_member("ops", "u1").unwrap(), "already in");
    assert!(s.add_member("ops", "u2").unwrap());
    assert!(s.add_member("dev", "u1").unwrap());
    let err = s.add_member("nope", "u1").unwrap_err();
    assert!(matches!(err, crate::Error::NotFound { .. }), "{err}");
    let err = s.add_member("ops", "u9").unwrap_err();
    assert!(matches!(err, crate::Error::NotFound { .. }), "{err}");
    assert_eq!(s.groups_of("u1").unwrap(), vec!["dev", "ops"]);
    let all = s.groups().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].name.as_str(), all[0].members.clone()),
        ("dev", vec!["u1".to_owned()])
    );
    assert_eq!(all[1].members, vec!["u1", "u2"]);
    assert_eq!(all[1].description, "the pager");
    assert!(s.remove_member("ops", "u1").unwrap());
    assert!(!s.remove_member("ops", "u1").unwrap());
    assert_eq!(s.groups_of("u1").unwrap(), vec!["dev"]);
    assert!(s.remove_group("dev").unwrap());
    assert!(s.groups_of("u1").unwrap().is_empty());
    assert!(s.remove_user("u2").unwrap());
    assert!(s.groups().unwrap()[0].members.is_empty(), "bob left ops");
}

fn user_sessions(s: &dyn UserStore) {
    s.insert_user(&person("u1", "alice")).unwrap();
    s.insert_user(&person("u2", "bob")).unwrap();
    let of = |n: u8, user: &str, used: i64| SessionRecord {
        digest: [n; 32],
        token_id: String::new(),
        user_id: Some(user.to_owned()),
        service: (n == 2).then(|| "grafana".to_owned()),
        created: 1,
        used,
    };
    s.insert_session(&of(1, "u1", 10), ROOMY).unwrap();
    s.insert_session(&of(2, "u1", 20), ROOMY).unwrap();
    s.insert_session(&of(3, "u2", 30), ROOMY).unwrap();
    s.insert_session(&session(4, "AAAAAAAAAAAA", 1, 40), ROOMY)
        .unwrap();
    let alice: Vec<_> = s
        .sessions_of_user("u1")
        .unwrap()
        .iter()
        .map(|r| r.digest[0])
        .collect();
    assert_eq!(alice, vec![2, 1], "hers, most recent first");
    assert_eq!(s.session(&[1; 32]).unwrap(), Some(of(1, "u1", 10)));
    assert_eq!(s.all_sessions().unwrap().len(), 4);
    // A person's bound counts their sessions only, not a token's.
    let tight = SessionLimits {
        per_token: 2,
        total: 100,
    };
    s.insert_session(&of(5, "u1", 50), tight).unwrap();
    let alice: Vec<_> = s
        .sessions_of_user("u1")
        .unwrap()
        .iter()
        .map(|r| r.digest[0])
        .collect();
    assert_eq!(alice, vec![5, 2]);
    assert!(s.session(&[4; 32]).unwrap().is_some());
    let u = s.user("u1").unwrap().unwrap();
    s.update_user(&u, false).unwrap();
    assert_eq!(s.sessions_of_user("u1").unwrap().len(), 2, "kept");
    let u = s.user("u1").unwrap().unwrap();
    s.update_user(&u, true).unwrap();
    assert!(s.sessions_of_user("u1").unwrap().is_empty(), "ended");
    assert_eq!(s.end_user_sessions("u2").unwrap(), 1);
    s.insert_session(&of(6, "u2", 60), ROOMY).unwrap();
    assert!(s.remove_user("u2").unwrap());
    assert_eq!(s.session(&[6; 32]).unwrap(), None, "removal ends them");
    assert!(s.session(&[4; 32]).unwrap().is_some(), "a token's stays");
}

fn people_version(s: &dyn UserStore) {
    let mut last = s.version().unwrap();
    let mut moved = |what: &str, s: &dyn UserStore| {
        let now = s.version().unwrap();
        assert!(now != last, "{what} moves the version");
        last = now;
    };
    s.insert_user(&person("u1", "alice")).unwrap();
    moved("a person added", s);
    let u = s.user("u1").unwrap().unwrap();
    s.update_user(
        &UserRecord {
            disabled: true,
            ..u
        },
        false,
    )
    .unwrap();
    moved("a person changed", s);
    s.insert_group("ops", "", 1).unwrap();
    moved("a group made", s);
    s.add_member("ops", "u1").unwrap();
    moved("a member added", s);
    s.remove_member("ops", "u1").unwrap();
    moved("a member removed", s);
    s.remove_group("ops").unwrap();
    moved("a group removed", s);
    s.remove_user("u1").unwrap();
    moved("a person removed", s);
}
