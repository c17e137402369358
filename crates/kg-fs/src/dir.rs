use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::Error;

/// The mode a directory is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirMode {
    /// Holds private material: `0700`.
    Private,
    /// Holds only public files: `0755`.
    Public,
}

impl DirMode {
    fn bits(self) -> u32 {
        match self {
            DirMode::Private => 0o700,
            DirMode::Public => 0o755,
        }
    }
}

/// Refuses a directory that others can write to (unless sticky) or that another user owns.
///
/// Root-owned directories are accepted: they are the normal parents of everything.
pub fn check_dir(path: &Path) -> Result<(), Error> {
    let meta = fs_err::metadata(path)?;
    if !meta.is_dir() {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason: "it is not a directory",
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason: "it is world-writable without the sticky bit",
        });
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason: "it is owned by another user",
        });
    }
    Ok(())
}

/// Creates `path` and its missing parents with `mode`, then checks each one we rely on.
///
/// Missing directories are created with the final mode set on creation. An existing
/// directory that others can write to is refused; a private one that others can merely
/// read is tightened to 0700.
pub fn create_dir_all(path: &Path, mode: DirMode) -> Result<(), Error> {
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::UnsafeDir {
                path: path.to_owned(),
                reason: "it is not a directory",
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                // Parents we create are private too: they exist only to hold this one.
                create_dir_all(parent, DirMode::Private)?;
            }
            match std::fs::DirBuilder::new().mode(mode.bits()).create(path) {
                Ok(()) => {
                    // The umask may have removed bits of a public directory; put them back.
                    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode.bits()))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("failed to create directory `{}`: {e}", path.display()),
                    )
                    .into());
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    // Refuse an unsafe directory before anything else: silently fixing one that others could
    // write to would hide that they may already have planted something in it.
    check_dir(path)?;
    let meta = fs_err::metadata(path)?;
    if mode == DirMode::Private && meta.permissions().mode() & 0o077 != 0 {
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
