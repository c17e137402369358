//! Advisory locks: fail-now and wait modes.

use std::time::{Duration, Instant};

use kg_fs::lock::{Wait, acquire};

#[test]
fn second_holder_fails_now_then_gets_in_after_release() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("renew.lock");
    let first = acquire(&path, Wait::No).unwrap();

    let err = acquire(&path, Wait::No).unwrap_err();
    assert!(err.is_locked());
    assert_eq!(
        err.to_string(),
        format!(
            "another keygate process holds the lock '{}'",
            path.display()
        )
    );

    let started = Instant::now();
    let err = acquire(&path, Wait::Up(Duration::from_millis(200))).unwrap_err();
    assert!(err.is_locked());
    assert!(started.elapsed() >= Duration::from_millis(200));

    let waiter = std::thread::spawn({
        let path = path.clone();
        move || acquire(&path, Wait::Up(Duration::from_secs(30))).map(|_| ())
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(first);
    waiter
        .join()
        .unwrap()
        .expect("the waiter gets the lock after release");
    // The lock file stays where it is: it is never renamed or removed.
    assert!(path.exists());
}
