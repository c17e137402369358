//! The store on disk: transactions under the lock, the pepper's first use, the cheap reload
//! for long-running readers, corrupt files, and `Debug` output of the handles.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use kg_fs::lock::Wait;
use kg_tokens::files::{FileError, StorePaths, client_token_file, read_token};
use kg_tokens::{Prefix, Reason, TokenSecret};
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

fn paths(root: &Path) -> StorePaths {
    StorePaths::new(&root.join("state"), &root.join("private"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn create(p: &StorePaths, name: &str) -> TokenSecret {
    let mut txn = p.begin(Wait::No, &Prefix::default()).unwrap();
    let (store, pepper) = txn.parts();
    let (_, token) = store.create(pepper, name, vec![], None, T0).unwrap();
    assert!(txn.commit().unwrap());
    token
}

#[test]
fn first_use_creates_private_pepper_and_0600_store() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    let token = create(&p, "ci");
    assert_eq!(mode(&p.store), 0o600);
    assert_eq!(mode(&p.pepper), 0o600);
    assert_eq!(mode(&dir.path().join("private")), 0o700);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(p.store, dir.path().join("state/tokens.json"));
    assert_eq!(p.lock, dir.path().join("state/tokens.lock"));
    let text = std::fs::read_to_string(&p.store).unwrap();
    assert!(!text.contains(token.expose_secret()));
    // The pepper is kept: a second change uses the same one, so the first token still works.
    let pepper_before = std::fs::read(&p.pepper).unwrap();
    create(&p, "other");
    assert_eq!(std::fs::read(&p.pepper).unwrap(), pepper_before);
    let loaded = p.load(&Prefix::default()).unwrap();
    assert_eq!(loaded.verify(token.expose_secret(), T0).unwrap().name, "ci");
}

#[test]
fn an_uncommitted_or_unchanged_txn_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    create(&p, "ci");
    let before = std::fs::metadata(&p.store).unwrap();
    {
        let mut txn = p.begin(Wait::No, &Prefix::default()).unwrap();
        let (store, pepper) = txn.parts();
        store.create(pepper, "dropped", vec![], None, T0).unwrap();
        // dropped without commit
    }
    let txn = p.begin(Wait::No, &Prefix::default()).unwrap();
    assert!(!txn.commit().unwrap(), "nothing changed, nothing written");
    let after = std::fs::metadata(&p.store).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    let loaded = p.load(&Prefix::default()).unwrap();
    assert!(loaded.store().find_active("dropped").is_none());
}

#[test]
fn the_lock_is_held_for_the_whole_txn() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    let txn = p.begin(Wait::No, &Prefix::default()).unwrap();
    let err = p.begin(Wait::No, &Prefix::default()).unwrap_err();
    assert!(err.is_locked(), "{err}");
    let err = p
        .begin(Wait::Up(Duration::from_millis(100)), &Prefix::default())
        .unwrap_err();
    assert!(err.is_locked(), "{err}");
    drop(txn);
    p.begin(Wait::No, &Prefix::default()).unwrap();
}

#[test]
fn reload_if_changed_rereads_only_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    // A reader that starts before any store exists sees an empty one.
    let mut loaded = p.load(&Prefix::default()).unwrap();
    assert!(loaded.store().list().is_empty());
    assert!(!loaded.reload_if_changed().unwrap());

    let first = create(&p, "first");
    assert_eq!(
        loaded.verify(first.expose_secret(), T0).unwrap_err(),
        Reason::Unknown,
        "not reloaded yet"
    );
    assert!(loaded.reload_if_changed().unwrap());
    assert_eq!(
        loaded.verify(first.expose_secret(), T0).unwrap().name,
        "first"
    );
    assert!(!loaded.reload_if_changed().unwrap(), "nothing changed");

    let second = create(&p, "second");
    assert!(loaded.reload_if_changed().unwrap());
    assert!(loaded.verify(second.expose_secret(), T0).is_ok());

    // A hand edit in place (same inode, same size) is seen through mtime and ctime.
    std::thread::sleep(Duration::from_millis(20));
    let text = std::fs::read_to_string(&p.store).unwrap();
    let edited = text.replacen("\"first\"", "\"fir5t\"", 1);
    assert_eq!(edited.len(), text.len());
    std::fs::write(&p.store, &edited).unwrap();
    assert!(loaded.reload_if_changed().unwrap());
    assert_eq!(
        loaded.verify(first.expose_secret(), T0).unwrap().name,
        "fir5t"
    );

    // A bad edit: the error names the file and line; the last good store stays in use.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&p.store, edited.replacen("\"fir5t\",", "\"fir5t\"", 1)).unwrap();
    let err = loaded.reload_if_changed().unwrap_err();
    assert!(matches!(err, FileError::Corrupt { line: 8, .. }), "{err}");
    assert!(err.to_string().contains("tokens.json' line 8"), "{err}");
    assert_eq!(
        loaded.verify(first.expose_secret(), T0).unwrap().name,
        "fir5t"
    );
    assert!(loaded.verify(second.expose_secret(), T0).is_ok());
}

#[test]
fn a_corrupt_store_names_file_and_line_and_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    create(&p, "one");
    create(&p, "two");
    let good = std::fs::read_to_string(&p.store).unwrap();
    // (edit, expected line): syntax, a bad second entry, an unknown version, a bad prefix.
    let second_entry_line = good
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "    {")
        .nth(1)
        .unwrap()
        .0
        + 1;
    let cases = [
        (good.replacen("\"one\",", "\"one\"", 1), 8),
        (
            good.replacen("\"name\": \"two\"", "\"name\": \"t w o\"", 1),
            second_entry_line,
        ),
        (good.replacen("\"version\": 1", "\"version\": 9", 1), 2),
        (
            good.replacen("\"prefix\": \"kg\"", "\"prefix\": \"K\"", 1),
            3,
        ),
    ];
    for (text, line) in cases {
        std::fs::write(&p.store, &text).unwrap();
        let err = p.load(&Prefix::default()).unwrap_err();
        assert!(err.is_usage());
        match &err {
            FileError::Corrupt { path, line: l, .. } => {
                assert_eq!((path, *l), (&p.store, line), "{err}")
            }
            other => panic!("{other}"),
        }
        let err = p.begin(Wait::No, &Prefix::default()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "token store '{}' line {line}: ",
                p.store.display()
            )),
            "{err}"
        );
        assert!(err.hint().is_some());
        assert_eq!(std::fs::read_to_string(&p.store).unwrap(), text);
    }
}

#[test]
fn a_store_that_is_not_utf8_is_corrupt_with_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    create(&p, "one");
    let mut bytes = std::fs::read(&p.store).unwrap();
    let at = bytes.windows(5).position(|w| w == b"\"one\"").unwrap() + 1;
    bytes[at] = 0xff;
    std::fs::write(&p.store, &bytes).unwrap();
    let err = p.load(&Prefix::default()).unwrap_err();
    assert!(matches!(err, FileError::Corrupt { line: 7, .. }), "{err}");
    assert!(err.is_usage());
    assert_eq!(std::fs::read(&p.store).unwrap(), bytes);
}

#[test]
fn a_missing_pepper_is_an_error_not_a_new_pepper() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    create(&p, "one");
    std::fs::remove_file(&p.pepper).unwrap();
    let err = p.begin(Wait::No, &Prefix::default()).unwrap_err();
    assert!(matches!(err, FileError::MissingPepper { .. }), "{err}");
    assert!(err.is_usage());
    assert!(!p.pepper.exists(), "no new pepper was made");
    assert!(matches!(
        p.load(&Prefix::default()).unwrap_err(),
        FileError::MissingPepper { .. }
    ));
    std::fs::write(&p.pepper, "not a pepper\n").unwrap();
    let err = p.load(&Prefix::default()).unwrap_err();
    assert!(matches!(err, FileError::BadPepper { .. }), "{err}");
    assert!(!err.to_string().contains("not a pepper"), "{err}");
}

/// Issue 14: a token's files are written before the store that knows it, so a crash never
/// leaves an entry whose token reached no file; a file refused by the secure file layer
/// writes nothing at all, neither the other files nor the store.
#[test]
fn token_files_are_written_0600_before_the_store_and_a_refused_one_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    create(&p, "first");
    let client = client_token_file(dir.path(), "ci");
    assert_eq!(client, dir.path().join("client/ci.token"));
    let target = dir.path().join("ci.token");
    let link = dir.path().join("link.token");
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
    let store_before = std::fs::read(&p.store).unwrap();

    let mut txn = p.begin(Wait::No, &Prefix::default()).unwrap();
    let (store, pepper) = txn.parts();
    let (_, token) = store.create(pepper, "ci", vec![], None, T0).unwrap();
    let err = txn
        .commit_delivering(&token, &[&target, &link])
        .unwrap_err();
    assert!(
        matches!(err, FileError::Fs(kg_fs::Error::Symlink { .. })),
        "{err}"
    );
    assert!(!target.exists(), "no file was renamed into place");
    assert!(!dir.path().join("elsewhere").exists());
    assert_eq!(
        std::fs::read(&p.store).unwrap(),
        store_before,
        "store unchanged"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");

    let mut txn = p.begin(Wait::No, &Prefix::default()).unwrap();
    let (store, pepper) = txn.parts();
    let (_, token) = store.create(pepper, "ci", vec![], None, T0).unwrap();
    assert!(txn.commit_delivering(&token, &[&target]).unwrap());
    assert_eq!(mode(&target), 0o600);
    let back = read_token(std::fs::File::open(&target).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(back.expose_secret(), token.expose_secret());
    let loaded = p.load(&Prefix::default()).unwrap();
    assert_eq!(loaded.verify(back.expose_secret(), T0).unwrap().name, "ci");
}

#[test]
fn read_token_trims_and_bounds() {
    assert!(read_token(&b"  \n"[..]).unwrap().is_none());
    assert_eq!(
        read_token(&b" kg_x \r\n"[..])
            .unwrap()
            .unwrap()
            .expose_secret(),
        "kg_x"
    );
    let big = vec![b'a'; 5000];
    let err = read_token(&big[..]).unwrap_err();
    assert!(!err.to_string().contains("aaaa"));
    assert!(read_token(&[0xff, 0xfe][..]).is_err());
}

/// Regression guard for the "secrets never reach Debug" invariant: the handles that hold the
/// store and the pepper print neither a token, its secret part, nor the pepper.
#[test]
fn debug_of_the_handles_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    let token = create(&p, "ci");
    let pepper_hex = std::fs::read_to_string(&p.pepper).unwrap();
    let pepper_hex = pepper_hex.trim();
    let secret = &token.expose_secret()[16..48];
    let mut txn = p.begin(Wait::No, &Prefix::default()).unwrap();
    let (store, pepper) = txn.parts();
    let (_, second) = store.create(pepper, "other", vec![], None, T0).unwrap();
    let loaded = p.load(&Prefix::default()).unwrap();
    for text in [
        format!("{txn:?}"),
        format!("{loaded:?}"),
        format!("{token:?}"),
        format!("{second:?}"),
        format!("{:?}", loaded.verify(token.expose_secret(), T0)),
        format!("{:?}", p.begin(Wait::No, &Prefix::default()).unwrap_err()),
    ] {
        for s in [
            token.expose_secret(),
            secret,
            second.expose_secret(),
            pepper_hex,
        ] {
            assert!(!text.contains(s), "Debug output carries a secret: {text}");
        }
        // First 16 hex digits of the pepper: not even a fragment.
        assert!(!text.contains(&pepper_hex[..16]), "{text}");
    }
    assert!(format!("{loaded:?}").contains("Pepper([REDACTED])"));
}
