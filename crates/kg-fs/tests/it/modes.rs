//! Modes of rewritten files: never widened, secrets tightened.

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

#[test]
fn read_secret_tightens_a_wide_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pepper = tmp.path().join("pepper");
    std::fs::write(&pepper, b"p").unwrap();
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(kg_fs::read_secret(&pepper).unwrap(), b"p");
    assert_eq!(mode(&pepper), 0o600);
}
