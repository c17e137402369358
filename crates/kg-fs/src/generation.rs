//! Publishing a set of files that must change together.
//!
//! A certificate and its key are useless apart: a server that reads a new certificate beside
//! an old key fails every handshake. So each set is written into a fresh directory
//! `gNNNNNN/`, synced, and then one symlink `current -> gNNNNNN` is replaced atomically (the
//! Kubernetes secret-volume `..data` pattern). A reader that resolves `current` once and reads
//! every file from the resolved directory always sees one matching set.
//!
//! ```text
//! <dir>/g000001/{cert.pem,key.pem,...}
//! <dir>/g000002/{cert.pem,key.pem,...}
//! <dir>/current -> g000002
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::atomic::{process_alive, sync_dir, with_path};
use crate::{DirMode, Error, FileMode, check_dir, create_dir_all};

/// The name of the symlink that selects the live generation.
pub const CURRENT: &str = "current";

/// One published generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Increases by one with every publication in the same directory.
    pub number: u64,
    /// The generation's own directory (not the `current` link).
    pub path: PathBuf,
}

impl Generation {
    /// The path of one file of this generation.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// One file to publish.
#[derive(Debug)]
pub struct Item<'a> {
    pub name: &'a str,
    pub contents: &'a [u8],
    pub mode: FileMode,
}

/// Resolves `current` once; `Ok(None)` when nothing was published yet.
pub fn current(dir: &Path) -> Result<Option<Generation>, Error> {
    let link = dir.join(CURRENT);
    let target = match std::fs::read_link(&link) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(Error::Damaged {
                path: dir.to_owned(),
                reason: "`current` is not a symlink".into(),
            });
        }
        Err(e) => return Err(with_path(e, "read link", &link)),
    };
    let number = target
        .to_str()
        .and_then(parse_generation)
        .filter(|_| target.components().count() == 1)
        .ok_or_else(|| Error::Damaged {
            path: dir.to_owned(),
            reason: format!(
                "`current` points to '{}', not to a generation",
                target.display()
            ),
        })?;
    let path = dir.join(&target);
    if !path.is_dir() {
        return Err(Error::Damaged {
            path: dir.to_owned(),
            reason: format!("`current` points to missing '{}'", target.display()),
        });
    }
    Ok(Some(Generation { number, path }))
}

/// Every generation directory present, oldest first.
pub fn list(dir: &Path) -> Result<Vec<Generation>, Error> {
    let mut found = Vec::new();
    let entries = match fs_err::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        if let Some(number) = entry.file_name().to_str().and_then(parse_generation) {
            found.push(Generation {
                number,
                path: entry.path(),
            });
        }
    }
    found.sort_by_key(|g| g.number);
    Ok(found)
}

/// Writes `items` as a new generation, makes it `current`, and prunes all but the newest
/// `keep` generations (at least the new one is always kept).
///
/// Until the final rename of the link nothing a reader sees has changed, and any failure
/// before it leaves the previous generation live and removes the partial one.
pub fn publish(dir: &Path, items: &[Item<'_>], keep: usize) -> Result<Generation, Error> {
    let private = items.iter().any(|i| i.mode == FileMode::Secret);
    create_dir_all(
        dir,
        if private {
            DirMode::Private
        } else {
            DirMode::Public
        },
    )?;
    remove_stale_staging(dir);

    let number = list(dir)?.last().map_or(1, |g| g.number + 1);
    let name = generation_name(number);
    let staging = dir.join(format!(".{name}.{}.staging", std::process::id()));
    let result = write_staging(&staging, items, private).and_then(|()| {
        let final_path = dir.join(&name);
        fs_err::rename(&staging, &final_path)?;
        // No sync of `dir` here: both this rename and the link switch are entries of `dir`,
        // and switch_current syncs it once after both. A crash in between leaves an unused
        // generation directory and the old `current`, which is safe.
        if let Err(e) = switch_current(dir, &name) {
            // Never live: remove it, or each failing run would leave a generation (and a key).
            let _ = std::fs::remove_dir_all(&final_path);
            return Err(e);
        }
        Ok(Generation {
            number,
            path: final_path,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    let generation = result?;
    prune(dir, keep.max(1))?;
    Ok(generation)
}

/// Removes generations beyond the newest `keep`, never the current one.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<Generation>, Error> {
    let current = current(dir)?.map(|g| g.number);
    let all = list(dir)?;
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for g in all.into_iter().take(excess) {
        if Some(g.number) != current {
            fs_err::remove_dir_all(&g.path)?;
            removed.push(g);
        }
    }
    Ok(removed)
}

fn write_staging(staging: &Path, items: &[Item<'_>], private: bool) -> Result<(), Error> {
    let mode = if private { 0o700 } else { 0o755 };
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(staging)
        .map_err(|e| with_path(e, "create directory", staging))?;
    fs_err::set_permissions(staging, std::fs::Permissions::from_mode(mode))?;
    let mut files = Vec::with_capacity(items.len());
    for item in items {
        let path = staging.join(item.name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(item.mode.bits())
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32,
            )
            .open(&path)
            .map_err(|e| with_path(e, "create", &path))?;
        rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(item.mode.bits()))
            .map_err(|e| with_path(e.into(), "set the mode of", &path))?;
        file.write_all(item.contents)
            .map_err(|e| with_path(e, "write", &path))?;
        files.push((file, path));
    }
    // Sync every file and the directory at once: the filesystem can then commit them in one
    // journal transaction instead of one per file, which is most of the cost of publishing.
    std::thread::scope(|scope| {
        let syncs: Vec<_> = files
            .iter()
            .map(|(file, path)| {
                scope.spawn(move || file.sync_all().map_err(|e| with_path(e, "sync", path)))
            })
            .collect();
        let dir = sync_dir(staging);
        syncs
            .into_iter()
            .try_for_each(|h| h.join().expect("fsync does not panic"))
            .and(dir)
    })
}

fn switch_current(dir: &Path, name: &str) -> Result<(), Error> {
    check_dir(dir)?;
    let temp_link = dir.join(format!(".{CURRENT}.{}.link", std::process::id()));
    let _ = std::fs::remove_file(&temp_link);
    std::os::unix::fs::symlink(name, &temp_link)
        .map_err(|e| with_path(e, "create link", &temp_link))?;
    // rename(2) over the old link is the single atomic step readers can observe.
    if let Err(e) = fs_err::rename(&temp_link, dir.join(CURRENT)) {
        let _ = std::fs::remove_file(&temp_link);
        return Err(e.into());
    }
    sync_dir(dir)
}

/// Removes staging directories and temporary links left by processes that died mid-publish.
fn remove_stale_staging(dir: &Path) {
    for path in stale_staging(dir) {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// Staging leftovers of dead processes in `dir` (for `doctor`).
pub fn stale_staging(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let body = name.strip_prefix('.')?;
            let body = body
                .strip_suffix(".staging")
                .or_else(|| body.strip_suffix(".link"))?;
            let pid = body.rsplit('.').next()?.parse::<i32>().ok()?;
            (!process_alive(pid)).then(|| entry.path())
        })
        .collect()
}

fn generation_name(number: u64) -> String {
    format!("g{number:06}")
}

fn parse_generation(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('g')?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
