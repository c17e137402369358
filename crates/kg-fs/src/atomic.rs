use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, FileMode, check_dir};

/// Temporary files are named `.<target>.<pid>.<random>.kgtmp`; the pid lets the next writer
/// tell a file left by a killed process from one that a live process is still writing.
const TEMP_SUFFIX: &str = ".kgtmp";

/// A file being written next to its target; it replaces the target only on [`commit`].
///
/// Dropping it without committing removes the temporary file, so every error path between
/// creation and commit cleans up after itself.
///
/// [`commit`]: AtomicFile::commit
#[derive(Debug)]
pub struct AtomicFile {
    temp: tempfile::NamedTempFile<File>,
    target: PathBuf,
    bits: u32,
}

impl AtomicFile {
    /// Starts writing `target` with `mode`, after checking the target and its directory.
    pub fn create(target: &Path, mode: FileMode) -> Result<AtomicFile, Error> {
        let dir = parent_of(target);
        check_dir(dir)?;
        let existing = match fs_err::symlink_metadata(target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Symlink {
                    path: target.to_owned(),
                });
            }
            Ok(meta) if !meta.is_file() => {
                return Err(Error::NotRegular {
                    path: target.to_owned(),
                });
            }
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let name = file_name_of(target);
        remove_stale_temps(dir, &name);

        // Never widen: an existing file keeps any bit it lacks. A secret is at most 0600.
        let bits = match &existing {
            Some(meta) => mode.bits() & meta.permissions().mode() & 0o777,
            None => mode.bits(),
        };
        let prefix = format!(".{name}.{}.", std::process::id());
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(TEMP_SUFFIX)
            .make_in(dir, |path| {
                // Created with its final mode (never create-then-chmod): no reader can open it
                // while it is wider than it will end up. O_EXCL also refuses any symlink.
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(bits)
                    .custom_flags(
                        (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32,
                    )
                    .open(path)
            })
            .map_err(|e| with_path(e, "create a temporary file in", dir))?;
        // The umask can only have removed bits; set the exact mode on the descriptor.
        rustix::fs::fchmod(temp.as_file(), rustix::fs::Mode::from_raw_mode(bits))
            .map_err(|e| with_path(e.into(), "set the mode of a temporary file in", dir))?;
        if rustix::process::geteuid().is_root() {
            // Running as root, the new file belongs to root:root, whoever owned the file it
            // replaces: keeping that owner let anyone who pre-created `/tmp/ci.token` receive
            // the token root wrote there (issue 13). The directory was checked above to be
            // root's, so root is also the owner of the place the file lives in. (The group is
            // set too: in a setgid directory the file would otherwise take the directory's.)
            rustix::fs::fchown(
                temp.as_file(),
                Some(rustix::fs::Uid::ROOT),
                Some(rustix::fs::Gid::ROOT),
            )
            .map_err(|e| with_path(e.into(), "set the owner of a temporary file in", dir))?;
        }
        Ok(AtomicFile {
            temp,
            target: target.to_owned(),
            bits,
        })
    }

    /// The permission bits the file is created with (the requested mode, never wider than
    /// an existing file's).
    pub(crate) fn mode_bits(&self) -> u32 {
        self.bits
    }

    /// The temporary file's path, for a writer that must open the file by name (SQLite's
    /// online backup writes a database copy into it); it already has its final mode.
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Flushes the data to disk, renames it over the target, and syncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        self.temp
            .as_file()
            .sync_all()
            .map_err(|e| with_path(e, "sync", self.temp.path()))?;
        let target = self.target;
        self.temp
            .persist(&target)
            .map_err(|e| with_path(e.error, "rename a temporary file onto", &target))?;
        sync_dir(parent_of(&target))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.as_file_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.as_file_mut().flush()
    }
}

/// Atomically replaces `target` with `contents`, created with `mode`.
///
/// Afterwards the file holds either its complete old or its complete new contents, whatever
/// happens to the process or the machine.
pub fn write_atomic(target: &Path, contents: &[u8], mode: FileMode) -> Result<(), Error> {
    let mut file = AtomicFile::create(target, mode)?;
    file.write_all(contents)
        .map_err(|e| with_path(e, "write", target))?;
    file.commit()
}

/// Makes a rename or a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| with_path(e, "sync directory", dir))
}

pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn with_path(e: io::Error, what: &str, path: &Path) -> Error {
    Error::Io(io::Error::new(
        e.kind(),
        format!("failed to {what} `{}`: {e}", path.display()),
    ))
}

/// Removes temporary files for `name` whose writer process no longer exists.
///
/// Best effort: a failure here must not stop the write that triggered it.
pub(crate) fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        if !rest.ends_with(TEMP_SUFFIX) {
            continue;
        }
        if let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<i32>().ok())
            && !process_alive(pid)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `pid` names a live process (signal 0; EPERM still means it exists).
pub(crate) fn process_alive(pid: i32) -> bool {
    if pid as u32 == std::process::id() {
        return true;
    }
    match rustix::process::Pid::from_raw(pid) {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

/// Lists temporary files in `dir` that no live process is writing (for `doctor`).
pub fn stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let body = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
            let mut parts = body.rsplitn(3, '.');
            let (_rand, pid) = (parts.next()?, parts.next()?.parse::<i32>().ok()?);
            (!process_alive(pid)).then(|| entry.path())
        })
        .collect()
}
