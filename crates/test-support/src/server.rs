//! Helpers of the server scenarios (`server*.rs`, `proxy.rs`, `browser.rs`): keygate as a
//! [`Proc`], free ports, tokens and certificates, and HTTP through curl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Env, Proc, Run};

/// A port nothing listens on right now, and never handed out before in this test process:
/// the kernel may give a port just released to the next caller, and two tests of the same
/// run binding it (one for keygate, one for Caddy, say) would collide.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// `http://ADDR/PATH`.
pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The `Authorization` header line that carries `token`, for `curl -H`.
pub fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// Writes keygate's config file for `env` (`KEYGATE_HOME/config.toml`).
pub fn config(env: &Env, toml: &str) {
    std::fs::write(env.root().join("config.toml"), toml).unwrap();
}

/// Starts `keygate serve` with `args` and waits for its first listen address.
pub fn keygate(env: &Env, addr: SocketAddr, args: &[&str]) -> Proc {
    let mut cmd = env.cmd("keygate");
    cmd.arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .args(args);
    let mut p = Proc::spawn("keygate", cmd, &env.root().join("keygate.log"));
    p.wait_port(addr);
    p
}

/// A loopback address with a free port.
pub fn local_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Starts nginx in the foreground with `http` as the inside of its `http {}` block, keeping
/// its configuration, logs and temporary files in `KEYGATE_HOME/nginx`, and waits until it
/// listens on `listen`.
pub fn nginx(env: &Env, http: &str, listen: SocketAddr) -> Proc {
    let dir = env.root().join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         {http}}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-g")
        .arg(format!("daemon off; pid {d}/nginx.pid;"));
    let mut p = Proc::spawn("nginx", cmd, &dir.join("stderr.log"));
    p.wait_port(listen);
    p
}

/// Creates a token with tokenctl (real clock) and returns it.
pub fn token(env: &Env, name: &str, scopes: &[&str]) -> String {
    let mut args = vec!["create", "--name", name];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let run = env.run("tokenctl", &args);
    run.code(0);
    let t = run.stdout.trim().to_owned();
    assert!(t.starts_with("kg_"), "{}", run.stdout);
    t
}

/// Publishes a certificate with certctl's local CA; returns the CA file.
pub fn cert(env: &Env) -> PathBuf {
    env.run("certctl", &["ensure", "--method", "local-ca"])
        .code(0);
    env.root().join("private/certs/default/current/ca.pem")
}

/// An HTTP response as curl saw it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs curl with `args` (URL included) and returns the final response.
pub fn curl(args: &[&str]) -> Resp {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_response(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `curl -i` output (the last response, if there were several).
pub fn parse_response(text: &str) -> Resp {
    let mut rest = text;
    loop {
        let (head, body) = rest
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {text:?}"));
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        if status == 100 {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        return Resp {
            status,
            headers,
            body: body.to_owned(),
        };
    }
}

/// Sends raw bytes on a new connection and returns everything the server answers until it
/// closes (or 5 s pass).
pub fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The serial of the certificate a TLS server presents, as `openssl x509 -serial` prints it.
pub fn served_serial(addr: SocketAddr, sni: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()]);
    if let Some(name) = sni {
        cmd.args(["-servername", name]);
    } else {
        cmd.arg("-noservername");
    }
    let out = cmd.stdin(Stdio::null()).output().expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    x509.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = x509.wait_with_output().unwrap();
    let serial = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        serial.starts_with("serial="),
        "no certificate served: {text}"
    );
    serial.trim_start_matches("serial=").to_owned()
}

/// The serial of a PEM certificate file.
pub fn file_serial(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}

/// The audit lines (JSON) a keygate log holds, in order.
pub fn audit_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("decision").is_some())
        .collect()
}

/// Polls `f` until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Runs a command of ours and returns its outcome (for `keygate check`).
pub fn run(env: &Env, name: &str, args: &[&str]) -> Run {
    env.run(name, args)
}

/// Runs `keygate ARGS` with `input` on stdin.
pub fn keygate_with_stdin(env: &Env, args: &[&str], input: &str) -> Run {
    let mut child = env
        .cmd("keygate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keygate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// A TOTP code (RFC 6238: SHA-1, six digits, 30 s) for `secret` (base32) at `unix`, by an
/// implementation of our own in Python's standard library: an oracle independent of
/// totp-rs.
pub fn totp_code(secret: &str, unix: u64) -> String {
    let script = "import base64,hashlib,hmac,struct,sys\n\
        s=sys.argv[1]; key=base64.b32decode(s+'='*(-len(s)%8))\n\
        h=hmac.new(key,struct.pack('>Q',int(sys.argv[2])//30),hashlib.sha1).digest()\n\
        o=h[-1]&15\n\
        print('%06d'%((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000))";
    let out = std::process::Command::new("python3")
        .args(["-c", script, secret, &unix.to_string()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Adds the person `name` with `password` (set from stdin, as a script would).
pub fn add_person(env: &Env, name: &str, password: &str) {
    env.run("keygate", &["users", "add", name]).code(0);
    keygate_with_stdin(
        env,
        &["users", "passwd", name, "--password-stdin"],
        &format!("{password}\n"),
    )
    .code(0);
}
