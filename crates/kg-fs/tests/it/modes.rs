//! Modes of files: rewriting never widens and makes a secret 0600; reading changes nothing.

use std::os::unix::fs::PermissionsExt;

use kg_fs::{FileMode, write_atomic};

use crate::mode;

#[test]
fn rewriting_a_0644_secret_yields_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key.pem");
    std::fs::write(&key, b"old").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_atomic(&key, b"new", FileMode::Secret).unwrap();
    assert_eq!(mode(&key), 0o600);
    assert_eq!(std::fs::read(&key).unwrap(), b"new");
}

#[test]
fn an_existing_narrower_mode_is_never_widened() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = tmp.path().join("cert.pem");
    std::fs::write(&cert, b"old").unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&cert, b"new", FileMode::Public).unwrap();
    assert_eq!(mode(&cert), 0o640);
}

/// Issue 14 item 7: reading a secret chmodded it, so `keygate check` wrote, and a read-only
/// 0644 secret (a Kubernetes secret volume) could not be read at all. Reading reports the
/// exposure and leaves the file as it is.
#[test]
fn read_secret_reports_a_wide_file_and_leaves_it_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let pepper = tmp.path().join("pepper");
    std::fs::write(&pepper, b"p").unwrap();
    for bits in [0o644, 0o640, 0o604, 0o620, 0o400] {
        std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(bits)).unwrap();
        let secret = kg_fs::read_secret(&pepper).unwrap();
        assert_eq!(secret.bytes, b"p");
        assert_eq!(mode(&pepper), bits, "reading changed the mode");
        let expected = (bits & 0o077 != 0).then(|| kg_fs::Exposed {
            path: pepper.clone(),
            mode: bits,
        });
        assert_eq!(secret.exposed, expected, "{bits:o}");
    }
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exposed = kg_fs::read_secret(&pepper).unwrap().exposed.unwrap();
    assert_eq!(
        exposed.to_string(),
        format!(
            "'{}' has mode 0644: its group or others can read it",
            pepper.display()
        )
    );
    assert!(
        exposed
            .hint()
            .starts_with(&format!("run `chmod 600 '{}'`", pepper.display()))
    );
}

/// `narrow_secret` (doctor's fix) is the one place an existing file's mode is narrowed: to
/// 0600, reporting what it was; a 0600 file is left alone, and a link is refused, its target
/// untouched (a chmod by path would have followed it).
#[test]
fn narrow_secret_narrows_to_0600_and_never_through_a_link() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("app.token");
    std::fs::write(&token, b"t").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(kg_fs::narrow_secret(&token).unwrap(), Some(0o644));
    assert_eq!(mode(&token), 0o600);
    assert_eq!(kg_fs::narrow_secret(&token).unwrap(), None);

    let target = tmp.path().join("elsewhere");
    std::fs::write(&target, b"x").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = tmp.path().join("link.token");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = kg_fs::narrow_secret(&link).unwrap_err();
    assert!(err.to_string().contains("it is a symbolic link"), "{err}");
    assert_eq!(mode(&target), 0o644);
}
