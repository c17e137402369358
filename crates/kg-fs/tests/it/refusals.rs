//! What the secure file layer refuses, and that a refusal writes nothing.
#![allow(clippy::print_stderr)] // Test code: progress and skip notes go to the test output.

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

/// Security review: a group-writable private directory was silently tightened and used,
/// keeping whatever group members had put in it.
#[test]
fn a_group_writable_private_directory_is_refused() {
    use kg_fs::{DirMode, create_dir_all};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    let err = create_dir_all(&dir, DirMode::Private).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("it is group-writable, and it holds private material"),
        "{err}"
    );
    // Readable by others only: tightened, as before.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    create_dir_all(&dir, DirMode::Private).unwrap();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// Security review: a symlinked ancestor (`~/.local -> /data/...`) was refused as "not a
/// directory".
#[test]
fn a_symlinked_ancestor_is_followed() {
    use kg_fs::{DirMode, create_dir_all};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("real")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
    create_dir_all(&tmp.path().join("link/keygate/private"), DirMode::Private).unwrap();
    assert!(tmp.path().join("real/keygate/private").is_dir());
}

/// Security review: the scratch directory external tools write keys into was created with
/// the umask's mode; it must be 0700 whatever the umask, and findable when left behind.
#[test]
fn scratch_directories_are_private_and_found_when_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("private");
    let dir = kg_fs::private_tempdir(&parent).unwrap();
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(
        kg_fs::stale_private_tempdirs(&parent).is_empty(),
        "ours is in use"
    );
    let left = parent.join(".999999.AbC.scratch");
    std::fs::create_dir(&left).unwrap();
    assert_eq!(kg_fs::stale_private_tempdirs(&parent), [left]);
}

/// Security review: `--wait` with a huge value overflowed `Instant + Duration` and panicked.
#[test]
fn a_huge_wait_does_not_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let guard = kg_fs::lock::acquire(
        &tmp.path().join("x.lock"),
        kg_fs::lock::Wait::Up(std::time::Duration::MAX),
    )
    .unwrap();
    drop(guard);
}

/// Security review: plaintext written through a named temporary file survived a killed
/// process. An unnamed file leaves nothing unless committed.
#[test]
fn an_uncommitted_unnamed_file_leaves_nothing_and_a_committed_one_is_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("plain.txt");
    {
        let mut f = kg_fs::UnnamedFile::create(&target, FileMode::Secret).unwrap();
        std::io::Write::write_all(&mut f, b"partial plaintext").unwrap();
        assert!(
            names(tmp.path()).is_empty(),
            "an unnamed file must not appear: {:?}",
            names(tmp.path())
        );
    }
    assert!(names(tmp.path()).is_empty());
    let mut f = kg_fs::UnnamedFile::create(&target, FileMode::Secret).unwrap();
    std::io::Write::write_all(&mut f, b"whole").unwrap();
    f.commit().unwrap();
    assert_eq!(names(tmp.path()), ["plain.txt"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"whole");
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// An existing parent of a directory keygate creates is the user's: it is checked, never
/// changed. An earlier version made `KEYGATE_HOME=~/projects/kg` turn `~/projects` 0700, and
/// refused a home under `/tmp` (sticky and world-writable).
#[test]
fn existing_parents_are_left_as_they_are() {
    use kg_fs::{DirMode, create_dir_all};
    let tmp = tempfile::tempdir().unwrap();
    let projects = tmp.path().join("projects");
    std::fs::create_dir(&projects).unwrap();
    std::fs::set_permissions(&projects, std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = projects.join("kg/private");
    create_dir_all(&private, DirMode::Private).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&projects), 0o755);
    // What keygate created itself is private.
    assert_eq!(mode(&projects.join("kg")), 0o700);
    assert_eq!(mode(&private), 0o700);

    // A sticky, world-writable parent (like /tmp) is fine to create a private directory in.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    create_dir_all(&shared.join("home"), DirMode::Private).unwrap();
    assert_eq!(mode(&shared), 0o1777);
    // Without the sticky bit, anyone could swap the directory: refused.
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = create_dir_all(&open.join("home"), DirMode::Private).unwrap_err();
    assert!(err.to_string().contains("without the sticky bit"), "{err}");
}
