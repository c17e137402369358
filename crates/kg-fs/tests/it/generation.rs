//! Generation publication: readers never see a mixed set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kg_fs::FileMode;
use kg_fs::generation::{self, Item};

fn publish(dir: &std::path::Path, n: u64, keep: usize) -> generation::Generation {
    let cert = format!("cert of generation {n}\n");
    let key = format!("key of generation {n}\n");
    generation::publish(
        dir,
        &[
            Item {
                name: "cert.pem",
                contents: cert.as_bytes(),
                mode: FileMode::Public,
            },
            Item {
                name: "key.pem",
                contents: key.as_bytes(),
                mode: FileMode::Secret,
            },
        ],
        keep,
    )
    .unwrap()
}

#[test]
fn readers_never_see_a_cert_beside_a_key_of_another_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs/default");
    publish(&dir, 0, 3);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let (dir, stop) = (dir.clone(), stop.clone());
        move || {
            let mut n = 1;
            while !stop.load(Ordering::Relaxed) {
                publish(&dir, n, 3);
                n += 1;
            }
            n
        }
    });
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10_000 {
        // Resolve `current` once, then read both files from the resolved directory. A
        // generation may be pruned between the two steps; that is a retry, never a mix.
        let g = generation::current(&dir).unwrap().unwrap();
        let (Ok(cert), Ok(key)) = (
            std::fs::read_to_string(g.file("cert.pem")),
            std::fs::read_to_string(g.file("key.pem")),
        ) else {
            continue;
        };
        let cert_gen = cert.trim().rsplit(' ').next().unwrap().to_owned();
        let key_gen = key.trim().rsplit(' ').next().unwrap().to_owned();
        assert_eq!(cert_gen, key_gen, "mixed set in {}", g.path.display());
        seen.insert(cert_gen);
    }
    stop.store(true, Ordering::Relaxed);
    let published = writer.join().unwrap();
    assert!(
        published > 2,
        "the writer must actually have raced the reader"
    );
    assert!(
        seen.len() > 1,
        "the reader must have seen several generations"
    );
}

#[test]
fn old_generations_are_pruned_and_current_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    for n in 0..6 {
        publish(&dir, n, 3);
    }
    let numbers: Vec<u64> = generation::list(&dir)
        .unwrap()
        .iter()
        .map(|g| g.number)
        .collect();
    assert_eq!(numbers, [4, 5, 6]);
    let current = generation::current(&dir).unwrap().unwrap();
    assert_eq!(current.number, 6);
    assert_eq!(
        std::fs::read_link(dir.join("current")).unwrap(),
        std::path::Path::new("g000006")
    );
    assert_eq!(
        std::fs::read_to_string(current.file("key.pem")).unwrap(),
        "key of generation 5\n"
    );
}

#[test]
fn a_failed_publication_leaves_the_previous_generation_live() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    publish(&dir, 1, 3);
    // A name with a slash cannot be created inside the staging directory: the write fails.
    let err = generation::publish(
        &dir,
        &[Item {
            name: "no/such/dir",
            contents: b"x",
            mode: FileMode::Secret,
        }],
        3,
    );
    assert!(err.is_err());
    let current = generation::current(&dir).unwrap().unwrap();
    assert_eq!(current.number, 1);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

/// Security review: when switching `current` failed after the new generation was renamed
/// into place, the generation (with its key) stayed behind, one more per failing run.
#[test]
fn a_failed_switch_leaves_no_generation_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    publish(&dir, 1, 3);
    std::fs::remove_file(dir.join("current")).unwrap();
    std::fs::create_dir(dir.join("current")).unwrap();
    std::fs::write(dir.join("current/blocker"), b"x").unwrap();
    for _ in 0..3 {
        let items = [Item {
            name: "key.pem",
            contents: b"k",
            mode: FileMode::Secret,
        }];
        assert!(generation::publish(&dir, &items, 3).is_err());
    }
    let numbers: Vec<u64> = generation::list(&dir)
        .unwrap()
        .iter()
        .map(|g| g.number)
        .collect();
    assert_eq!(numbers, [1]);
}
