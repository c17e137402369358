//! The SQLite store: the conformance suite, in memory and on disk, and what only a file has
//! (its mode, migrations, a newer schema, a damaged file, backups).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kg_store::{Error, SCHEMA_VERSION, SessionLimits, SessionRecord, SessionStore, SqliteStore};

#[test]
fn sqlite_in_memory_passes_the_session_conformance_suite() {
    kg_store::conformance::sessions(&|| Box::new(SqliteStore::memory().unwrap()));
}

#[test]
fn sqlite_on_disk_passes_the_session_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    kg_store::conformance::sessions(&|| {
        n.set(n.get() + 1);
        Box::new(SqliteStore::open(&dir.path().join(format!("s{}.db", n.get()))).unwrap())
    });
    assert_eq!(n.get(), kg_store::conformance::SESSION_CHECKS.len());
}

#[test]
fn sqlite_passes_the_client_conformance_suite_in_memory_and_on_disk() {
    kg_store::conformance::clients(&|| Box::new(SqliteStore::memory().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    kg_store::conformance::clients(&|| {
        n.set(n.get() + 1);
        Box::new(SqliteStore::open(&dir.path().join(format!("c{}.db", n.get()))).unwrap())
    });
    assert_eq!(n.get(), kg_store::conformance::CLIENT_CHECKS.len());
}

#[test]
fn sqlite_passes_the_grant_conformance_suite_in_memory_and_on_disk() {
    kg_store::conformance::grants(&|| Box::new(SqliteStore::memory().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    kg_store::conformance::grants(&|| {
        n.set(n.get() + 1);
        Box::new(SqliteStore::open(&dir.path().join(format!("g{}.db", n.get()))).unwrap())
    });
    assert_eq!(n.get(), kg_store::conformance::GRANT_CHECKS.len());
}

#[test]
fn sqlite_passes_the_user_conformance_suite_in_memory_and_on_disk() {
    kg_store::conformance::users(&|| Box::new(SqliteStore::memory().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    kg_store::conformance::users(&|| {
        n.set(n.get() + 1);
        Box::new(SqliteStore::open(&dir.path().join(format!("u{}.db", n.get()))).unwrap())
    });
    assert_eq!(n.get(), kg_store::conformance::USER_CHECKS.len());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn one(n: u8) -> SessionRecord {
    SessionRecord {
        digest: [n; 32],
        token_id: "AAAAAAAAAAAA".into(),
        user_id: None,
        service: None,
        created: 1,
        used: 1,
    }
}

const LIMITS: SessionLimits = SessionLimits {
    per_token: 10,
    total: 10,
};

/// Bounds no test here reaches.
const ROOMY: SessionLimits = SessionLimits {
    per_token: 1000,
    total: 1000,
};

#[test]
fn a_new_store_is_private_and_keeps_its_sessions_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_session(&one(1), LIMITS).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    }
    assert_eq!(mode(&path), 0o600);
    for side in ["keygate.db-wal", "keygate.db-shm"] {
        let p = dir.path().join(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.session(&[1; 32]).unwrap(), Some(one(1)));
    let seen = SqliteStore::inspect(&path).unwrap().unwrap();
    assert_eq!((seen.schema_version, seen.sessions), (SCHEMA_VERSION, 1));
    assert!(seen.exposed.is_none());
}

#[test]
fn inspecting_writes_nothing_and_reports_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.db");
    assert!(SqliteStore::inspect(&path).unwrap().is_none());
    assert!(!path.exists(), "inspect created the store");
    drop(SqliteStore::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let seen = SqliteStore::inspect(&path).unwrap().unwrap();
    assert_eq!(seen.exposed.map(|e| e.mode), Some(0o644));
}

/// The file of a newer keygate, simulated by its `user_version`, is refused, named, and
/// left as it was (a downgrade must not migrate or truncate anything).
#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_session(&one(1), LIMITS).unwrap();
    }
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 7)
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    for e in [
        SqliteStore::open(&path).unwrap_err(),
        SqliteStore::inspect(&path).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::TooNew { found, .. } if found == SCHEMA_VERSION + 7),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.contains("keygate.db") && text.contains("newer"),
            "{text}"
        );
        assert!(e.hint().unwrap().contains("backup"));
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
}

#[test]
fn a_file_that_is_not_a_database_is_named_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(e, Error::NotADatabase { .. }), "{e:?}");
    assert!(e.to_string().contains("keygate.db"));
    assert_eq!(std::fs::read(&path).unwrap(), vec![b'x'; 4096]);
    // A symlink in the store's place is refused, not followed.
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(SqliteStore::open(&link).is_err());
}

/// A backup is a complete, private database taken while the store is written to, and
/// opens as a store with the same sessions.
#[test]
fn a_backup_is_a_private_consistent_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.db");
    let s = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    for n in 0..50u8 {
        s.insert_session(&one(n), ROOMY).unwrap();
    }
    let writer = {
        let s = std::sync::Arc::clone(&s);
        std::thread::spawn(move || {
            for n in 50..200u8 {
                s.insert_session(&one(n), ROOMY).unwrap();
            }
        })
    };
    let copy = dir.path().join("backup.db");
    s.backup(&copy).unwrap();
    writer.join().unwrap();
    assert_eq!(mode(&copy), 0o600);
    let b = SqliteStore::open(&copy).unwrap();
    let n = b.session_count().unwrap();
    assert!((50..=200).contains(&n), "{n}");
    // Every session in the copy is whole.
    for d in 0..200u8 {
        if let Some(r) = b.session(&[d; 32]).unwrap() {
            assert_eq!(r, one(d));
        }
    }
    // Backing up over an existing file replaces it whole.
    s.backup(&copy).unwrap();
    assert_eq!(
        SqliteStore::open(&copy).unwrap().session_count().unwrap(),
        200
    );
}

#[test]
fn another_process_s_commit_moves_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keygate.db");
    let server = SqliteStore::open(&path).unwrap();
    let cli = SqliteStore::open(&path).unwrap();
    let before = server.version().unwrap();
    cli.insert_session(
        &one(7),
        SessionLimits {
            per_token: 10,
            total: 10,
        },
    )
    .unwrap();
    assert_ne!(
        server.version().unwrap(),
        before,
        "the other connection's commit went unseen"
    );
}

#[test]
fn a_new_password_or_disabling_ends_the_grants_a_person_signed_in_for() {
    use kg_store::{GrantRecord, GrantStore, RefreshRecord, UserRecord, UserStore};
    let s = SqliteStore::memory().unwrap();
    let user = UserRecord {
        id: "U1".into(),
        name: "alice".into(),
        email: None,
        password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        must_change: false,
        disabled: false,
        totp: None,
        totp_step: None,
        revision: 1,
        created: 1,
        changed: 1,
    };
    s.insert_user(&user).unwrap();
    let grant = |id: &str, token_id: &str| GrantRecord {
        id: id.into(),
        client_id: "kgc_cli".into(),
        subject: "alice".into(),
        scope: "openid".into(),
        resource: None,
        auth_time: 1,
        created: 1,
        expires: 1_000_000,
        revoked: None,
        token_id: Some(token_id.into()),
    };
    let first = |n: u8, g: &str| RefreshRecord {
        digest: [n; 32],
        grant_id: g.into(),
        created: 1,
    };
    s.insert_grant(&grant("g1", "u:U1"), &first(1, "g1"))
        .unwrap();
    s.insert_grant(&grant("g2", "AAAAAAAAAAAA"), &first(2, "g2"))
        .unwrap();
    let read = s.user("U1").unwrap().unwrap();
    s.update_user(
        &UserRecord {
            changed: 50,
            ..read.clone()
        },
        false,
    )
    .unwrap();
    assert_eq!(
        s.grant("g1").unwrap().unwrap().revoked,
        None,
        "an edit that ends nothing"
    );
    let read = s.user("U1").unwrap().unwrap();
    s.update_user(
        &UserRecord {
            changed: 99,
            ..read
        },
        true,
    )
    .unwrap();
    assert_eq!(
        s.grant("g1").unwrap().unwrap().revoked,
        Some(99),
        "her grant outlived her new password"
    );
    assert_eq!(
        s.grant("g2").unwrap().unwrap().revoked,
        None,
        "a token's grant is not hers"
    );
}
