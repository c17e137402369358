//! The harness of the end-to-end scenarios: run a real binary in an isolated home.
//!
//! Every [`Env`] gets its own `KEYGATE_HOME` and a scrubbed environment, so scenarios never
//! touch the user's files and never depend on the developer's shell.
#![allow(clippy::print_stderr)] // Test code: progress and skip notes go to the test output.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The directory holding the workspace's built binaries (`target/<profile>`): the one the
/// running test binary lives in (`target/<profile>/deps/<test-binary>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_owned()
}

/// The path of one of our binaries. The first call in a process builds the workspace's
/// binaries (see `build_binaries`), so `cargo test` needs no build step before it and never
/// runs stale binaries.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(build_binaries) {
        panic!("{e}");
    }
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing after building the workspace's binaries",
        path.display()
    );
    path
}

/// Runs `$CARGO build --workspace --bins --quiet` into the target directory and profile of
/// the running test binary, so the binaries land in [`bin_dir`].
///
/// Cargo has released its lock on the target directory by the time it runs tests, so this
/// nested build does not wait on the `cargo test` that started us. It runs from the
/// workspace root without the variables cargo sets for the test process only (the test
/// package's `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...): a build script that tracks one of
/// them (ring tracks `CARGO_MANIFEST_DIR`) would otherwise run again, and everything above
/// it be rebuilt, at every switch between this build and the developer's own.
fn build_binaries() -> Result<(), String> {
    const PER_PACKAGE: [&str; 6] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_BIN_NAME",
        "OUT_DIR",
    ];
    let profile_dir = bin_dir();
    let target_dir = profile_dir.parent().ok_or("no target dir")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--workspace", "--bins", "--quiet", "--target-dir"])
        .arg(target_dir)
        .current_dir(&root)
        .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_") || PER_PACKAGE.contains(&&*key) {
            cmd.env_remove(&*key);
        }
    }
    match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => return Err(format!("no profile in {}", profile_dir.display())),
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !status.success() {
        return Err(format!(
            "building the workspace's binaries failed ({status}): {cmd:?}"
        ));
    }
    Ok(())
}

/// Whether a peer tool is on PATH. Under `CI=true` a missing tool fails the run instead.
pub fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{tool} is not installed, and CI=true requires every peer tool (.ci/run installs it)"
        );
    }
    if !found {
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// `fixtures/` in the repository.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .canonicalize()
        .expect("the repository's fixtures directory")
}

/// Whether python3 imports `module` (from `fixtures/python/requirements.txt`, which
/// `.ci/run` installs). Under `CI=true` a missing one fails the run instead.
pub fn have_python_module(module: &str) -> bool {
    let found = have("python3")
        && Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
    peer_found(found, &format!("the Python module {module}"))
}

/// Whether the npm fixture `fixtures/DIR` has its locked packages installed (`.ci/run` runs
/// `npm ci --prefix fixtures/DIR`), with `node` on PATH. Under `CI=true` a missing one fails
/// the run instead.
pub fn have_npm_fixture(dir: &str) -> bool {
    let found = have("node") && fixtures().join(dir).join("node_modules").is_dir();
    peer_found(found, &format!("fixtures/{dir}/node_modules (npm ci)"))
}

fn peer_found(found: bool, what: &str) -> bool {
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not installed, and CI=true requires every peer (.ci/run installs it)");
    }
    if !found {
        eprintln!("skipped: {what} is not installed");
    }
    found
}

/// A `CAROOT` under `env`'s home holding a CA made by the real mkcert (which signs one
/// throwaway certificate to create it).
pub fn mkcert_caroot(env: &Env) -> PathBuf {
    let caroot = env.root().join("mkcert-ca");
    std::fs::create_dir_all(&caroot).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new("mkcert")
        .env("CAROOT", &caroot)
        .current_dir(scratch.path())
        .arg("bootstrap.test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(caroot.join("rootCA-key.pem").exists());
    caroot
}

/// An isolated keygate home and the environment to run binaries in.
#[derive(Debug)]
pub struct Env {
    pub home: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let home = tempfile::tempdir().expect("tempdir");
        Env {
            home,
            vars: Vec::new(),
        }
    }

    /// The `KEYGATE_HOME` of this environment.
    pub fn root(&self) -> &Path {
        self.home.path()
    }

    /// Sets a variable for every command run in this environment.
    pub fn set(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Env {
        self.vars.push((
            key.to_owned(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// A command for one of our binaries, with a scrubbed environment.
    pub fn cmd(&self, name: &str) -> Command {
        let mut cmd = Command::new(bin(name));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root())
            .env("KEYGATE_HOME", self.root())
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a binary with `args` and returns its output.
    pub fn run(&self, name: &str, args: &[&str]) -> Run {
        Run::from(self.cmd(name).args(args).output().expect("spawn"))
    }
}

/// The outcome of a command, with text accessors that make assertions read well.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing both streams when it is wrong.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// The permission bits of a file as `stat` reports them (octal text, e.g. "600").
pub fn stat_mode(path: &Path) -> String {
    let out = Command::new("stat")
        .args(["-c", "%a"])
        .arg(path)
        .output()
        .expect("stat");
    assert!(
        out.status.success(),
        "stat {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The uid (and gid) of `nobody`, the other user of the ownership scenarios.
pub const NOBODY: u32 = 65534;

/// Whether this process can act as another user (runs as root, and `setpriv` is there): the
/// ownership scenarios need it, and skip themselves otherwise.
pub fn can_be_nobody() -> bool {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("skipped: needs root to act as another user");
        return false;
    }
    have("setpriv")
}

/// Hands `path` to `nobody` (`chown 65534:65534`), as another user on the machine would own it.
pub fn give_to_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// Runs `program args` as `nobody`, without root's groups.
pub fn as_nobody(program: &str, args: &[&OsStr]) -> Run {
    Run::from(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                program,
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn setpriv"),
    )
}
