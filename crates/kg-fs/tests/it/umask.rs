//! File and directory modes under extreme umasks.
//!
//! The umask is per process and the other tests' threads share it, so the test re-executes
//! this binary to run alone in a child (`KG_FS_UMASK_CHILD` set), as `crash.rs` does.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use kg_fs::{DirMode, FileMode, create_dir_all, write_atomic};

use crate::mode;

#[test]
fn modes_are_exact_under_any_umask() {
    if std::env::var_os("KG_FS_UMASK_CHILD").is_none() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "umask::modes_are_exact_under_any_umask",
                "--test-threads=1",
                "--nocapture",
            ])
            .env("KG_FS_UMASK_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the child failed or ran no test ({})\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    for umask in [0o000, 0o077, 0o022] {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask));
        let tmp = tempfile::tempdir().unwrap();
        // Under umask 000 the scratch directory itself is 0777, which the layer rightly refuses.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let private = tmp.path().join("a/b/private");
        create_dir_all(&private, DirMode::Private).unwrap();
        assert_eq!(mode(&private), 0o700, "private dir under umask {umask:03o}");
        assert_eq!(
            mode(&tmp.path().join("a")),
            0o700,
            "created parent under umask {umask:03o}"
        );
        let public = tmp.path().join("pub");
        create_dir_all(&public, DirMode::Public).unwrap();
        assert_eq!(mode(&public), 0o755, "public dir under umask {umask:03o}");

        let key = private.join("key.pem");
        write_atomic(&key, b"secret", FileMode::Secret).unwrap();
        assert_eq!(mode(&key), 0o600, "secret under umask {umask:03o}");
        let cert = public.join("cert.pem");
        write_atomic(&cert, b"cert", FileMode::Public).unwrap();
        assert_eq!(mode(&cert), 0o644, "public file under umask {umask:03o}");

        let generation = kg_fs::generation::publish(
            &private.join("gen"),
            &[
                kg_fs::generation::Item {
                    name: "cert.pem",
                    contents: b"c",
                    mode: FileMode::Public,
                },
                kg_fs::generation::Item {
                    name: "key.pem",
                    contents: b"k",
                    mode: FileMode::Secret,
                },
            ],
            3,
        )
        .unwrap();
        assert_eq!(mode(&generation.path), 0o700);
        assert_eq!(mode(&generation.file("cert.pem")), 0o644);
        assert_eq!(mode(&generation.file("key.pem")), 0o600);
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
}
