//! The contract of each store trait, as tests any implementation must pass: SQLite's in
//! this crate's tests, PostgreSQL's when it comes. Each check takes a fresh, empty store
//! from `make` and panics, naming the rule, when the store breaks it.

use crate::{SessionLimits, SessionRecord, SessionStore};

/// Runs every [`SessionStore`] check.
pub fn sessions(make: &dyn Fn() -> Box<dyn SessionStore>) {
    for (name, check) in SESSION_CHECKS {
        let store = make();
        let broken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&*store)));
        if let Err(e) = broken {
            let why = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            panic!("the session store breaks \"{name}\": {why}");
        }
    }
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
