//! Crash safety: a writer killed with SIGKILL at random moments never leaves a torn file.
//!
//! The test binary re-executes itself as the writer (`KG_FS_CRASH_CHILD` set), so the child
//! runs exactly the library code, in a separate process that the parent can kill.
#![allow(clippy::print_stderr)] // Test code: progress and skip notes go to the test output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kg_fs::{FileMode, write_atomic};

const SIZE: usize = 256 * 1024;

/// Contents that are self-checking: `SIZE` bytes all equal to one letter.
fn contents(n: u64) -> Vec<u8> {
    vec![b'a' + (n % 26) as u8; SIZE]
}

#[test]
fn child_writer_loop() {
    let Ok(target) = std::env::var("KG_FS_CRASH_CHILD") else {
        return;
    };
    let target = Path::new(&target);
    let mut n = 0;
    loop {
        write_atomic(target, &contents(n), FileMode::Secret).unwrap();
        n += 1;
    }
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

#[test]
fn sigkill_at_random_moments_never_tears_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("store.json");
    write_atomic(&target, &contents(0), FileMode::Secret).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut stale_seen = 0;
    for round in 0..200 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::child_writer_loop",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KG_FS_CRASH_CHILD", &target)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(2_000 + random_below(20_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let data = std::fs::read(&target).unwrap();
        assert_eq!(data.len(), SIZE, "round {round}: torn length");
        assert!(
            data.iter().all(|&b| b == data[0]),
            "round {round}: mixed contents"
        );
        stale_seen += kg_fs::stale_temps(tmp.path()).len();

        // The next write removes whatever temporary file the killed writer left.
        write_atomic(&target, &contents(round), FileMode::Secret).unwrap();
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["store.json"],
            "round {round}: stale temporary files remain"
        );
    }
    // Proves the kills land mid-write; otherwise this test could not fail.
    assert!(stale_seen > 0, "no kill ever interrupted a write");
    eprintln!("{stale_seen} stale temporary files were left by killed writers and cleaned up");
}
