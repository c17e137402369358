//! What the secure file layer refuses, and that a refusal writes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kg_fs::{Error, FileMode, write_atomic};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn a_symlink_target_is_refused_and_its_target_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = tmp.path().join("key.pem");
    std::os::unix::fs::symlink(&victim, &link).unwrap();

    let err = write_atomic(&link, b"attacker", FileMode::Secret).unwrap_err();
    assert!(matches!(err, Error::Symlink { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "refusing to write '{}': it is a symbolic link",
            link.display()
        )
    );
    assert!(err.hint().is_some());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(names(tmp.path()), ["key.pem", "victim"]);
    // A dangling link is refused too (O_EXCL would otherwise create its target).
    let dangling = tmp.path().join("dangling");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
    assert!(matches!(
        write_atomic(&dangling, b"x", FileMode::Secret),
        Err(Error::Symlink { .. })
    ));
    assert!(!tmp.path().join("nowhere").exists());
}

#[test]
fn a_directory_target_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("key.pem");
    std::fs::create_dir(&dir).unwrap();
    let err = write_atomic(&dir, b"x", FileMode::Secret).unwrap_err();
    assert!(matches!(err, Error::NotRegular { .. }), "{err}");
}

#[test]
fn a_world_writable_parent_without_sticky_bit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = write_atomic(&open.join("key.pem"), b"x", FileMode::Secret).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "refusing to use directory '{}': it is world-writable without the sticky bit",
            open.display()
        )
    );
    assert!(names(&open).is_empty(), "nothing may be written");

    // With the sticky bit (like /tmp) it is fine.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    write_atomic(&open.join("key.pem"), b"x", FileMode::Secret).unwrap();
}

#[test]
fn a_parent_owned_by_another_user_is_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root can hand a directory to another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
    let err = write_atomic(&theirs.join("key.pem"), b"x", FileMode::Secret).unwrap_err();
    assert!(
        err.to_string().ends_with("it is owned by another user"),
        "{err}"
    );
    assert!(names(&theirs).is_empty());
}

#[test]
fn a_failed_write_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("state.json");
    std::fs::write(&target, b"old").unwrap();
    {
        let mut file = kg_fs::AtomicFile::create(&target, FileMode::Secret).unwrap();
        std::io::Write::write_all(&mut file, b"half").unwrap();
        // Dropped without commit: an error path.
    }
    assert_eq!(names(tmp.path()), ["state.json"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
}
