//! [`Proc`]: a child process that is stopped when dropped, even when a test fails or a
//! benchmark bails out.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process that is stopped when dropped; its stdout and stderr go to `log`.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` (stdin closed, output to `log`); panics when it cannot.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        Proc::start(name, &mut cmd, log).unwrap_or_else(|e| panic!("cannot spawn {name}: {e}"))
    }

    /// Starts `cmd` (stdin closed, output to `log`), for callers that report errors.
    pub fn start(name: &str, cmd: &mut Command, log: &Path) -> std::io::Result<Proc> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// What the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `addr` accepts connections; panics with the log if the process exits.
    pub fn wait_port(&mut self, addr: SocketAddr) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.output());
            }
            // A connection to itself is no listener: a port taken from the ephemeral range
            // (`free_port`) can be the one the kernel picks for this connect, and Linux then
            // completes a TCP self-connect. Seen once in CI: the relay was not up yet and
            // the next curl was refused.
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                && s.local_addr().ok() != s.peer_addr().ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!(
            "{} does not listen on {addr}:\n{}",
            self.name,
            self.output()
        );
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by pid (`kill -TERM`), for graceful-shutdown tests.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    /// SIGTERM first, so nginx's master takes its workers down with it (SIGKILL would
    /// orphan them, still listening); SIGKILL if it has not exited within 5 s.
    fn drop(&mut self) {
        if self.running() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if !self.running() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
