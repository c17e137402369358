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
/// directory that others can write to is refused (for a private one, the group too); a
/// private one that others can merely read is tightened to 0700.
pub fn create_dir_all(path: &Path, mode: DirMode) -> Result<(), Error> {
    // Follows symlinks: a symlinked ancestor (`~/.local -> /data/...`) is common and safe,
    // since what matters is the directory it leads to, which is checked below.
    match fs_err::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::UnsafeDir {
                path: path.to_owned(),
                reason: "it is not a directory",
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                ensure_parent(parent)?;
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
    if mode == DirMode::Private && meta.permissions().mode() & 0o020 != 0 {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason: "it is group-writable, and it holds private material",
        });
    }
    if mode == DirMode::Private && meta.permissions().mode() & 0o077 != 0 {
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Makes sure the parent of a directory about to be created exists and is safe to create in.
///
/// A missing parent is created private (it exists only to hold ours). An existing one is
/// the user's: it is checked (no other user may own it, nobody may write to it without the
/// sticky bit) but never changed. Tightening it, as an earlier version did, turned a
/// `KEYGATE_HOME=~/projects/x` into a 0700 `~/projects`, and refused `/tmp` (sticky and
/// world-writable, which is safe for a directory we create inside it with mode 0700).
fn ensure_parent(parent: &Path) -> Result<(), Error> {
    match fs_err::metadata(parent) {
        Ok(meta) if meta.is_dir() => check_dir(parent),
        Ok(_) => Err(Error::UnsafeDir {
            path: parent.to_owned(),
            reason: "it is not a directory",
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dir_all(parent, DirMode::Private)
        }
        Err(e) => Err(e.into()),
    }
}

/// A private scratch directory in `parent`, created 0700 whatever the umask and removed when
/// dropped; for tools (mkcert, tailscale) that write keys before we have verified them.
///
/// Its name carries our pid, so that [`stale_private_tempdirs`] can tell one left by a
/// killed process from one in use.
pub fn private_tempdir(parent: &Path) -> Result<tempfile::TempDir, Error> {
    create_dir_all(parent, DirMode::Private)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!(".{}.", std::process::id()))
        .suffix(SCRATCH_SUFFIX)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(|e| crate::atomic::with_path(e, "create a private directory in", parent))?;
    fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

const SCRATCH_SUFFIX: &str = ".scratch";

/// Scratch directories in `parent` whose creating process is gone.
pub fn stale_private_tempdirs(parent: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid = name
                .strip_prefix('.')?
                .strip_suffix(SCRATCH_SUFFIX)?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            (!crate::atomic::process_alive(pid)).then(|| e.path())
        })
        .collect()
}

/// Whether this process could create files in `path`: the directory, or when it does not
/// exist yet the nearest ancestor that does, grants it write and search access (the
/// kernel's own answer, `access(2)`, so root, ACLs and read-only mounts count). For a
/// server that would run read-only (a secret volume) rather than fail.
pub fn writable_dir(path: &Path) -> bool {
    use rustix::fs::{Access, access};
    let mut dir = Some(path);
    while let Some(d) = dir {
        if d.exists() {
            return access(d, Access::WRITE_OK | Access::EXEC_OK).is_ok();
        }
        dir = d.parent();
    }
    false
}
