//! Files that have no name until they are complete (Linux `O_TMPFILE`).
//!
//! An [`AtomicFile`] is a named temporary file until commit: a process killed mid-write
//! leaves it behind (to be removed by the next writer). For decrypted plaintext even that is
//! too much: a truncated age stream must leave *nothing* anywhere. An unnamed file exists
//! only as an open descriptor, so SIGKILL at any moment leaves no trace; it gets a name only
//! in [`UnnamedFile::commit`], after the caller has verified everything it wrote.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::atomic::{parent_of, sync_dir, with_path};
use crate::{AtomicFile, Error, FileMode};

/// A file written without a name, published at `target` on commit.
#[derive(Debug)]
pub struct UnnamedFile {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Unnamed {
        file: File,
        target: PathBuf,
    },
    /// Filesystems without `O_TMPFILE` get the named temporary file of [`AtomicFile`].
    Named(AtomicFile),
}

impl UnnamedFile {
    /// Starts writing `target` with `mode`, after the same checks as [`AtomicFile::create`].
    pub fn create(target: &Path, mode: FileMode) -> Result<UnnamedFile, Error> {
        // The checks, the mode rules and the fallback all come from AtomicFile; creating one
        // and dropping it at once leaves nothing behind.
        let checked = AtomicFile::create(target, mode)?;
        let bits = checked.mode_bits();
        let dir = parent_of(target);
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(bits)
            .custom_flags((rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::CLOEXEC).bits() as i32)
            .open(dir);
        let inner = match opened {
            Ok(file) => {
                drop(checked);
                rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(bits))
                    .map_err(|e| with_path(e.into(), "set the mode of an unnamed file in", dir))?;
                Inner::Unnamed {
                    file,
                    target: target.to_owned(),
                }
            }
            // EOPNOTSUPP / EISDIR / EINVAL: no O_TMPFILE here.
            Err(_) => Inner::Named(checked),
        };
        Ok(UnnamedFile { inner })
    }

    /// Syncs the data, gives the file its name atomically, and syncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        let (file, target) = match self.inner {
            Inner::Named(f) => return f.commit(),
            Inner::Unnamed { file, target } => (file, target),
        };
        file.sync_all().map_err(|e| with_path(e, "sync", &target))?;
        let dir = parent_of(&target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // Named like AtomicFile's temporaries, so a crash between link and rename is cleaned
        // up the same way (and the file is then complete: it was verified before commit).
        let temp = dir.join(format!(".{name}.{}.u{nanos:x}.kgtmp", std::process::id()));
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            proc_path.as_str(),
            rustix::fs::CWD,
            &temp,
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(|e| with_path(e.into(), "give a name to the unnamed file for", &target))?;
        if let Err(e) = fs_err::rename(&temp, &target) {
            let _ = std::fs::remove_file(&temp);
            return Err(e.into());
        }
        sync_dir(dir)
    }
}

impl Write for UnnamedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Unnamed { file, .. } => file.write(buf),
            Inner::Named(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Unnamed { file, .. } => file.flush(),
            Inner::Named(f) => f.flush(),
        }
    }
}
