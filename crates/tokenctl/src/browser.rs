//! Starting the person's browser for `tokenctl login`, and telling when there is none to
//! start. These follow other tools' conventions, so they read the environment directly:
//! `BROWSER` (a command to run with the URL), `DISPLAY` and `WAYLAND_DISPLAY` (a graphical
//! session), `SSH_CONNECTION` (a remote shell, whose browser is on another machine).

use std::process::{Command, Stdio};

/// Whether a browser started here could be seen by the person: a graphical session, not
/// over SSH.
pub(crate) fn usable() -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    (set("DISPLAY") || set("WAYLAND_DISPLAY")) && !set("SSH_CONNECTION")
}

/// Starts `$BROWSER URL`, else `xdg-open URL`, without waiting for it and without a shell;
/// whether one started. (The URL holds no secret: a PKCE challenge and a state.)
pub(crate) fn open(url: &str) -> bool {
    let program = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "xdg-open".into());
    let mut words = program.split_whitespace();
    let Some(first) = words.next() else {
        return false;
    };
    Command::new(first)
        .args(words)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}
