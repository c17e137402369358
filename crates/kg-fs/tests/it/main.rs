//! kg-fs's integration tests: one binary (`tests/it`), one module per concern.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

// A writer killed with SIGKILL mid-write never leaves a torn file.
mod crash;
// Generation publication: readers never see a mixed set; pruning and failed switches.
mod generation;
// Advisory locks, fail-now and wait.
mod lock;
// Files' modes: rewriting never widens, reading never changes.
mod modes;
// What the layer refuses (symlinks, unsafe parents), and that a refusal writes nothing.
mod refusals;
// Ownership of what root writes, trust in what keygate acts on, reading secrets by descriptor.
mod trust;
// Exact modes under extreme umasks (in a child process of its own: the umask is per process).
mod umask;

/// The permission bits of `path` itself (a symlink is not followed).
fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}
