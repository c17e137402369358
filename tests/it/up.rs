//! `keygate up`: the newcomer's main job, end to end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use test_support::server::free_port;
use test_support::{Env, have};

/// A running `keygate up`, killed when dropped (also when a test fails).
struct Up {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `keygate up` with its stdout piped to us, unread.
fn spawn(env: &Env, port: u16) -> Up {
    let child = env
        .cmd("keygate")
        .args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Up {
        child,
        lines: Vec::new(),
    }
}

/// Starts `keygate up` and reads its summary.
fn start(env: &Env, port: u16) -> Up {
    let mut up = spawn(env, port);
    let stdout = up.child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("stop with");
        up.lines.push(line);
        if done {
            break;
        }
    }
    up
}

fn sh(line: &str) -> (i32, String) {
    let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_printed_curl_line_works_verbatim_and_a_second_run_reuses_everything() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let port = free_port();
    let first = start(&env, port);
    assert!(
        first
            .lines
            .iter()
            .any(|l| l.contains(&format!("https://localhost:{port}/auth"))),
        "{:#?}",
        first.lines
    );
    assert!(
        first
            .lines
            .iter()
            .any(|l| l.contains("certificate  local-ca (new")),
        "{:#?}",
        first.lines
    );
    assert!(
        first
            .lines
            .iter()
            .any(|l| l.contains("not trusted by this system yet") && l.contains("certctl trust")),
        "{:#?}",
        first.lines
    );
    let curl = first
        .lines
        .iter()
        .find(|l| l.contains("| curl "))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(sh(&curl), (0, "200\n".to_owned()), "{curl}");
    // Without the token the same request is refused.
    let anonymous = curl.split_once("| ").unwrap().1.replace("--config - ", "");
    assert_ne!(sh(&anonymous).0, 0);
    let generation = std::fs::read_link(env.root().join("private/certs/default/current")).unwrap();
    let token = std::fs::read(env.root().join("private/client/default.token")).unwrap();
    drop(first);

    let port = free_port();
    let second = start(&env, port);
    assert!(
        second
            .lines
            .iter()
            .any(|l| l.contains("certificate  local-ca (reused")),
        "{:#?}",
        second.lines
    );
    assert!(
        second
            .lines
            .iter()
            .any(|l| l.contains("token") && l.contains("(reused")),
        "{:#?}",
        second.lines
    );
    assert_eq!(
        std::fs::read_link(env.root().join("private/certs/default/current")).unwrap(),
        generation
    );
    assert_eq!(
        std::fs::read(env.root().join("private/client/default.token")).unwrap(),
        token
    );
    let curl = second
        .lines
        .iter()
        .find(|l| l.contains("| curl "))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(sh(&curl), (0, "200\n".to_owned()));
}

/// `keygate up | head -3`: a closed stdout ends the summary, not the server. The summary used
/// `println!`, which panics on a closed pipe: `up` exited 101 and took the server it had just
/// started with it.
#[test]
fn a_closed_stdout_ends_the_summary_not_the_server() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    let port = free_port();
    let mut up = spawn(&env, port);
    // The only read end is gone before the first line is written.
    drop(up.child.stdout.take());
    let health = || {
        sh(&format!(
            "curl --silent --insecure -o /dev/null -w '%{{http_code}}' https://127.0.0.1:{port}/health"
        ))
        .1
    };
    let since = std::time::Instant::now();
    while health() != "200" {
        if let Some(status) = up.child.try_wait().unwrap() {
            panic!("keygate up exited ({status}) with its stdout closed");
        }
        assert!(since.elapsed().as_secs() < 30, "keygate up never answered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The summary follows the first listener within microseconds; give it ample time.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(health(), "200");
    // Still serving, and SIGTERM stops it cleanly (a process that already died keeps its
    // own exit code, which the assertion shows).
    let _ = Command::new("kill")
        .args(["-TERM", &up.child.id().to_string()])
        .status();
    assert_eq!(up.child.wait().unwrap().code(), Some(0));
}

/// Issue 14: after `certctl ensure app.internal 10.0.0.5`, `keygate up` re-issued the
/// certificate with the default names, and the running server served the narrower one.
/// `up` now keeps what is published (and served) when no names are configured.
#[test]
fn up_keeps_the_names_the_user_chose() {
    if !have("openssl") {
        return;
    }
    let env = Env::new();
    env.run(
        "certctl",
        &["ensure", "app.internal", "10.0.0.5", "localhost"],
    )
    .code(0);
    let cert = env.root().join("private/certs/default/current/cert.pem");
    let serial = |path: &std::path::Path| {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-ext", "subjectAltName", "-in"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = serial(&cert);
    assert!(
        before.contains("DNS:app.internal") && before.contains("IP Address:10.0.0.5"),
        "{before}"
    );
    let up = start(&env, free_port());
    assert!(
        up.lines
            .iter()
            .any(|l| l.contains("certificate") && l.contains("reused")),
        "{:?}",
        up.lines
    );
    drop(up);
    assert_eq!(serial(&cert), before, "the certificate was re-issued");
}

/// With `--public`, `up` names the LAN address other hosts would use when the certificate
/// does not cover it, and the command that adds it (in a network namespace of its own with a
/// default route, so the address is known).
#[test]
fn up_public_offers_the_lan_address() {
    if !have("unshare") || !have("ip") {
        return;
    }
    let env = Env::new();
    let keygate = env.cmd("keygate");
    let script = "set -e\n\
                  ip link set lo up\n\
                  ip link add kg0 type veth peer name kg1\n\
                  ip addr add 192.168.77.5/24 dev kg0\n\
                  ip link set kg1 up\n\
                  ip link set kg0 up\n\
                  ip route add default dev kg0\n\
                  exec \"$KG_BIN\" up --public\n";
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--", "sh", "-c", script]);
    for (k, v) in keygate.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let child = cmd
        .env("KG_BIN", keygate.get_program())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = Up {
        child,
        lines: Vec::new(),
    };
    let stdout = up.child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("stop with");
        up.lines.push(line);
        if done {
            break;
        }
    }
    assert!(
        up.lines.iter().any(|l| l.contains("LAN")
            && l.contains("192.168.77.5")
            && l.contains("certctl ensure")),
        "{:?}",
        up.lines
    );
}
