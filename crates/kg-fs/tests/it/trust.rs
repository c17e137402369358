//! Ownership and trust (issue 13): a secret root writes is root's, whoever owned the file it
//! replaces; what keygate acts on is refused when another user could change it; a secret is
//! read through one descriptor. These tests run as root (as CI does) and hand files to
//! uid 65534 (`nobody`); they skip themselves otherwise.
#![allow(clippy::print_stderr)] // Test code: skip notes go to the test output.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use kg_fs::trust::{check_owned_by_root, check_owned_by_us_or_root, read_trusted};
use kg_fs::{Error, FileMode, read_secret, write_atomic};

const NOBODY: u32 = 65534;

fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root to hand files to another user");
    false
}

fn give_to_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

fn chmod(path: &Path, bits: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).unwrap();
}

#[test]
fn root_writing_over_a_file_another_user_created_makes_it_roots() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("ci.token");
    std::fs::write(&target, b"").unwrap();
    give_to_nobody(&target);
    chmod(&target, 0o666);
    write_atomic(&target, b"secret", FileMode::Secret).unwrap();
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "the old owner was kept");
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(std::fs::read(&target).unwrap(), b"secret");
}

#[test]
fn a_group_writable_directory_on_the_path_is_refused_with_a_chmod_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, b"").unwrap();
    chmod(&file, 0o644);
    check_owned_by_us_or_root("config file", &file).unwrap();
    read_trusted("config file", &file, 100).unwrap();

    chmod(&dir, 0o770);
    for err in [
        check_owned_by_us_or_root("config file", &file).unwrap_err(),
        read_trusted("config file", &file, 100).unwrap_err(),
    ] {
        assert!(matches!(err, Error::Untrusted { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to use config file '{}': '{}' is writable by group or others",
                file.display(),
                dir.display()
            )
        );
        let hint = err.hint().unwrap();
        assert!(
            hint.starts_with(&format!("run `chmod go-w '{}'`", dir.display())),
            "{hint}"
        );
    }
    chmod(&dir, 0o700);
    chmod(&file, 0o664);
    let err = read_trusted("config file", &file, 100).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": it is writable by group or others"),
        "{err}"
    );
}

#[test]
fn a_file_or_directory_another_user_owns_is_refused_with_a_chown_hint() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("config.toml");
    std::fs::write(&file, b"").unwrap();
    chmod(&file, 0o644);
    give_to_nobody(&file);
    let err = read_trusted("config file", &file, 100).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "refusing to use config file '{}': it is owned by uid 65534, neither root nor this user",
            file.display()
        )
    );
    assert!(
        err.hint()
            .unwrap()
            .starts_with(&format!("run `chown root '{}'`", file.display())),
        "{err:?}"
    );
    // A directory owned by someone else refuses everything below it.
    let dir = tmp.path().join("theirs");
    std::fs::create_dir(&dir).unwrap();
    let inner = dir.join("hook.sh");
    std::fs::write(&inner, b"").unwrap();
    give_to_nobody(&dir);
    let err = check_owned_by_us_or_root("deploy hook", &inner).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("'{}' is owned by uid 65534", dir.display())),
        "{err}"
    );
}

#[test]
fn a_sticky_directory_is_fine_on_the_way_but_not_as_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let mine = shared.join("mine");
    std::fs::create_dir(&mine).unwrap();
    chmod(&mine, 0o700);
    check_owned_by_us_or_root("KEYGATE_HOME", &mine).unwrap();
    assert!(matches!(
        check_owned_by_us_or_root("KEYGATE_HOME", &shared),
        Err(Error::Untrusted { .. })
    ));
}

#[test]
fn a_link_is_judged_by_where_it_leads() {
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    let real = open.join("config.toml");
    std::fs::write(&real, b"x").unwrap();
    chmod(&real, 0o644);
    let link = tmp.path().join("config.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(read_trusted("config file", &link, 100).unwrap(), b"x");
    chmod(&open, 0o777);
    let err = read_trusted("config file", &link, 100).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("'{}' is writable", open.display())),
        "{err}"
    );
}

#[test]
fn what_a_root_job_runs_must_be_roots_even_when_we_are_someone_else() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("certctl");
    std::fs::write(&bin, b"").unwrap();
    chmod(&bin, 0o755);
    check_owned_by_root("program", &bin).unwrap();
    give_to_nobody(&bin);
    let err = check_owned_by_root("program", &bin).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("it is owned by uid 65534, not by root"),
        "{err}"
    );
}

#[test]
fn read_secret_refuses_links_fifos_and_directories_and_reports_the_mode_of_the_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key.pem");
    std::fs::write(&key, b"k").unwrap();
    chmod(&key, 0o644);
    let secret = read_secret(&key).unwrap();
    assert_eq!(secret.bytes, b"k");
    assert_eq!(secret.exposed.map(|e| e.mode), Some(0o644));
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o644);

    let link = tmp.path().join("link.pem");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let err = read_secret(&link).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "refusing to use secret '{}': it is a symbolic link, not a regular file",
            link.display()
        )
    );

    // A FIFO would block a plain open until someone writes; it is refused at once instead.
    let fifo = tmp.path().join("fifo.pem");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let err = read_secret(&fifo).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": it is a FIFO, not a regular file"),
        "{err}"
    );
    assert!(err.hint().is_some());

    let err = read_secret(tmp.path()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": it is a directory, not a regular file"),
        "{err}"
    );
}

#[test]
fn a_fifo_in_place_of_the_config_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("config.toml");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let err = read_trusted("config file", &fifo, 100).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": it is a FIFO, not a regular file"),
        "{err}"
    );
}
