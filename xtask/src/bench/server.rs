//! `cargo xtask bench server`: keygate's `/auth` under wrk, beside nginx in the same run.
//!
//! Issue 6. wrk runs 32 connections for 5 s per case, pinned to CPU 1; the server (keygate,
//! or nginx answering `/auth` itself from a `map` on the Authorization header, the
//! practical limit of a trivial responder) is pinned to CPU 0. Behind `auth_request`, the
//! front nginx and keygate share CPU 0, beside the same path with no auth at all.
//!
//! Per case: requests/s and p50/p99 latency (wrk), the server's peak RSS (`VmHWM`) and its
//! CPU time per request: user+sys from `/proc/PID/stat` (all threads, and every nginx
//! process), before and after, divided by the requests wrk counted. The cases run in
//! rounds (`KEYGATE_BENCH_ROUNDS`, 3 by default), keygate and nginx alternating; the table
//! gives medians, the CPU column its range too, and the ratios to nginx follow it. The
//! last column is the CPU time the hypervisor took from the machine during the case
//! (`steal` in `/proc/stat`): on a VM it comes in bursts of milliseconds, which no server
//! can hide from a p99.
//!
//! keygate runs with the rate limiter off, so every wrong token is verified (the worst
//! case); with it on, a flooding client gets the cheaper throttled 401 after its burst.
//! Denials are audit-logged (to a file), as they always are in production.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use test_support::{Proc, with_checksum};

use super::tool;

const CONNECTIONS: &str = "32";
const DURATION: &str = "5s";

pub(crate) fn run(root: &Path) -> Result<()> {
    let rounds = rounds()?;
    for t in ["wrk", "nginx", "taskset", "openssl"] {
        tool(t)?;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        bail!("this benchmark pins the server and wrk to two different CPUs; it needs 2");
    }
    let Setup {
        bin,
        scratch,
        home,
        token,
        _cleanup,
    } = setup(root, "server")?;
    let bin = |name: &str| bin.join(name);
    // An attacker's guess: the right id, a wrong secret, a valid checksum (CRC32 is no
    // secret). This is the costly denial: the HMAC is computed before the refusal.
    let wrong = {
        let mut w = token.clone();
        let at = w.len() - 10;
        w.replace_range(
            at..at + 1,
            if &token[at..at + 1] == "A" { "B" } else { "A" },
        );
        with_checksum(&w)
    };
    let current = home.join("private/certs/default/current");
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[server]\nrate_limit_burst = 0\naudit_log = \"{}\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
            scratch.join("audit.log").display()
        ),
    )?;

    let port = |n: u16| 20_000 + (std::process::id() % 20_000) as u16 + n;
    let (kg_http, kg_https, nx_http, nx_https, front, app) =
        (port(0), port(1), port(2), port(3), port(4), port(5));

    // nginx answering /auth from a map, HTTP and HTTPS, and the auth_request front.
    let nginx_dir = scratch.join("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    let example = std::fs::read_to_string(root.join("examples/nginx/keygate.conf"))?;
    let site = example
        .replace("server 127.0.0.1:9180;", &format!("server 127.0.0.1:{kg_http};"))
        .replace("listen 8080;", &format!("listen 127.0.0.1:{front};"))
        .replace(
            "proxy_pass http://127.0.0.1:3000;",
            &format!("proxy_pass http://127.0.0.1:{app};"),
        )
        .replace(
            "    location = /_keygate {",
            "    location /noauth {\n        proxy_pass http://app_up;\n        \
                 proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n    }\n\n    \
                 location = /_keygate {",
        )
        .replace(
            &format!("proxy_pass http://127.0.0.1:{app};"),
            "proxy_pass http://app_up;\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";",
        );
    let d = nginx_dir.display();
    let c = current.display();
    let conf = format!(
        "worker_processes 1;\nerror_log {d}/error.log error;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  map_hash_bucket_size 128;\n  client_body_temp_path {d}/b;\n  \
         proxy_temp_path {d}/p;\n  fastcgi_temp_path {d}/f;\n  uwsgi_temp_path {d}/u;\n  scgi_temp_path {d}/s;\n  \
         map $http_authorization $kg_ok {{\n    default 0;\n    \"Bearer {token}\" 1;\n  }}\n  \
         server {{\n    listen 127.0.0.1:{nx_http};\n    listen 127.0.0.1:{nx_https} ssl;\n    \
         ssl_certificate {c}/fullchain.pem;\n    ssl_certificate_key {c}/key.pem;\n    \
         location = /auth {{\n      if ($kg_ok) {{ return 200; }}\n      \
         add_header WWW-Authenticate 'Bearer realm=\"keygate\", error=\"invalid_token\"' always;\n      \
         return 401;\n    }}\n  }}\n  \
         upstream app_up {{ server 127.0.0.1:{app}; keepalive 16; }}\n  \
         server {{\n    listen 127.0.0.1:{app};\n    location / {{ return 200; }}\n  }}\n{site}\n}}\n"
    );
    std::fs::write(nginx_dir.join("nginx.conf"), conf)?;

    let mut nginx = nginx_on_cpu0(&nginx_dir, &scratch.join("nginx.log"))?;
    let mut keygate = Server::spawn(
        "keygate",
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(bin("keygate"))
            .args(["serve", "--plain-http", "--listen"])
            .arg(format!("127.0.0.1:{kg_http}"))
            .env("KEYGATE_HOME", &home),
        &scratch.join("keygate-http.log"),
    )?;
    let mut keygate_tls = Server::spawn(
        "keygate (TLS)",
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(bin("keygate"))
            .args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{kg_https}"))
            .env("KEYGATE_HOME", &home),
        &scratch.join("keygate-https.log"),
    )?;
    for p in [kg_http, kg_https, nx_http, nx_https, front, app] {
        if let Err(e) = wait_port(p) {
            let mut logs = String::new();
            for f in [
                "nginx.log",
                "nginx/error.log",
                "keygate-http.log",
                "keygate-https.log",
            ] {
                let text = std::fs::read_to_string(scratch.join(f)).unwrap_or_default();
                let _ = writeln!(logs, "--- {f}\n{text}");
            }
            bail!("{e}\n{logs}");
        }
    }

    let good = format!("Authorization: Bearer {token}");
    let bad = format!("Authorization: Bearer {wrong}");
    let kg = |p: u16, s: &str| format!("{s}://127.0.0.1:{p}/auth");
    let site = |path: &str| format!("http://127.0.0.1:{front}{path}");
    // Which processes a case runs on: keygate, nginx, keygate (TLS), or nginx + keygate.
    let cases: Vec<(&str, String, Option<&str>, usize, u16)> = vec![
        (
            "keygate HTTP, valid token",
            kg(kg_http, "http"),
            Some(&good),
            0,
            200,
        ),
        (
            "nginx map HTTP, valid token",
            kg(nx_http, "http"),
            Some(&good),
            1,
            200,
        ),
        (
            "keygate HTTP, wrong token",
            kg(kg_http, "http"),
            Some(&bad),
            0,
            401,
        ),
        (
            "nginx map HTTP, wrong token",
            kg(nx_http, "http"),
            Some(&bad),
            1,
            401,
        ),
        (
            "keygate HTTPS, valid token",
            kg(kg_https, "https"),
            Some(&good),
            2,
            200,
        ),
        (
            "nginx map HTTPS, valid token",
            kg(nx_https, "https"),
            Some(&good),
            1,
            200,
        ),
        (
            "keygate HTTPS, wrong token",
            kg(kg_https, "https"),
            Some(&bad),
            2,
            401,
        ),
        (
            "nginx map HTTPS, wrong token",
            kg(nx_https, "https"),
            Some(&bad),
            1,
            401,
        ),
        (
            "nginx auth_request + keygate, valid token",
            site("/app"),
            Some(&good),
            3,
            200,
        ),
        (
            "nginx auth_request + keygate, wrong token",
            site("/app"),
            Some(&bad),
            3,
            401,
        ),
        (
            "nginx, same path without auth",
            site("/noauth"),
            None,
            1,
            200,
        ),
    ];
    // Every case once per round, keygate and nginx alternating, so that a disturbance of
    // the machine lands on both; the table gives each case's median.
    let mut runs: Vec<Vec<Figures>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        for (i, (name, url, header, on, want)) in cases.iter().enumerate() {
            let servers: &mut [&mut Server] = match on {
                0 => &mut [&mut keygate],
                1 => &mut [&mut nginx],
                2 => &mut [&mut keygate_tls],
                _ => &mut [&mut nginx, &mut keygate],
            };
            let r = wrk(url, *header, servers, *want)?;
            eprintln!(
                "  {name}: {:.0} req/s, p50 {:.0} us, p99 {:.0} us, {:.1} us CPU/req, steal {:.1}%",
                r.rps,
                r.p50_us,
                r.p99_us,
                r.cpu_us,
                r.steal * 100.0
            );
            runs[i].push(r);
        }
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| case | requests/s | p50 | p99 | server RSS (peak) | server CPU per request (range) | steal |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    let mut cpu = Vec::new();
    for ((name, ..), r) in cases.iter().zip(&runs) {
        let m = |f: fn(&Figures) -> f64| median(r.iter().map(f).collect());
        let (lo, hi) = r
            .iter()
            .map(|f| f.cpu_us)
            .fold((f64::MAX, 0f64), |(lo, hi), c| (lo.min(c), hi.max(c)));
        let rss = r.iter().map(|f| f.rss_kib).max().unwrap_or(0);
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.0} us | {:.2} ms | {:.1} MiB | {:.1} us ({lo:.1}-{hi:.1}) | {:.1}% |",
            m(|f| f.rps),
            m(|f| f.p50_us),
            m(|f| f.p99_us) / 1000.0,
            rss as f64 / 1024.0,
            m(|f| f.cpu_us),
            m(|f| f.steal) * 100.0,
        );
        cpu.push(m(|f| f.cpu_us));
    }
    println!("\n{table}");
    println!(
        "keygate / nginx, CPU per request (medians): HTTP valid {:.2}, HTTP wrong {:.2}, \
         HTTPS valid {:.2}, HTTPS wrong {:.2}; behind auth_request, wrong / valid {:.2}",
        cpu[0] / cpu[1],
        cpu[2] / cpu[3],
        cpu[4] / cpu[5],
        cpu[6] / cpu[7],
        cpu[9] / cpu[8],
    );
    println!(
        "wrk -t1 -c{CONNECTIONS} -d{DURATION} --latency on CPU 1; servers on CPU 0; \
         median of {rounds} rounds; {}",
        cpu_model()
    );
    Ok(())
}

/// What the server benchmarks start from: release binaries, a scratch directory (removed
/// when this drops) with a keygate home holding a local-CA certificate, and a token.
pub(super) struct Setup {
    /// Where the release binaries are.
    pub bin: PathBuf,
    pub scratch: PathBuf,
    pub home: PathBuf,
    /// A valid token with the scope `read`.
    pub token: String,
    pub _cleanup: RemoveOnDrop,
}

/// Builds the release binaries and prepares a home in a fresh scratch directory named
/// after the benchmark.
pub(super) fn setup(root: &Path, name: &str) -> Result<Setup> {
    crate::run(
        "cargo",
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "keygate",
            "-p",
            "certctl",
            "-p",
            "tokenctl",
        ],
    )?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let bin = target.join("release");
    let scratch = std::env::temp_dir().join(format!("keygate-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let cleanup = RemoveOnDrop(scratch.clone());
    let home = scratch.join("home");
    std::fs::create_dir_all(&home)?;
    let ours = |name: &str| {
        let mut c = Command::new(bin.join(name));
        c.env("KEYGATE_HOME", &home);
        c
    };
    check(
        ours("certctl")
            .args(["ensure", "--method", "local-ca"])
            .output()?,
    )?;
    let out = ours("tokenctl")
        .args(["create", "--name", "bench", "--scope", "read"])
        .output()?;
    let token = String::from_utf8(check(out)?.stdout)?.trim().to_owned();
    Ok(Setup {
        bin,
        scratch,
        home,
        token,
        _cleanup: cleanup,
    })
}

/// How many rounds a benchmark runs: `KEYGATE_BENCH_ROUNDS`, 3 by default.
pub(super) fn rounds() -> Result<usize> {
    match std::env::var("KEYGATE_BENCH_ROUNDS") {
        Ok(n) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .context("KEYGATE_BENCH_ROUNDS must be a positive whole number"),
        Err(_) => Ok(3),
    }
}

/// An nginx.conf for `dir`: one worker, no access log, its temporary files in `dir`, and
/// `http` (directives of the `http` block, indented by two).
pub(super) fn nginx_conf(dir: &Path, http: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\nerror_log {d}/error.log crit;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/b;\n  proxy_temp_path {d}/p;\n  \
         fastcgi_temp_path {d}/f;\n  uwsgi_temp_path {d}/u;\n  scgi_temp_path {d}/s;\n{http}}}\n"
    )
}

/// nginx on CPU 0 in the foreground, from `dir/nginx.conf`, its pid file in `dir`.
pub(super) fn nginx_on_cpu0(dir: &Path, log: &Path) -> Result<Server> {
    Server::spawn(
        "nginx",
        Command::new("taskset")
            .args(["-c", "0", "nginx", "-p"])
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-g")
            .arg(format!("daemon off; pid {}/nginx.pid;", dir.display())),
        log,
    )
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A wrk latency such as `192.00us`, `3.07ms` or `1.20s`, in microseconds.
pub(super) fn micros(text: &str) -> f64 {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        (text, 1.0)
    };
    number.trim().parse::<f64>().map_or(f64::NAN, |n| n * scale)
}

/// One wrk run's figures.
pub(super) struct Figures {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub rss_kib: u64,
    pub cpu_us: f64,
    /// The share of the machine's CPU time the hypervisor took meanwhile.
    pub steal: f64,
}

/// The CPU time stolen by the hypervisor so far, all CPUs (`/proc/stat`, in clock ticks).
pub(super) fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let cpu = t.lines().find(|l| l.starts_with("cpu "))?;
            cpu.split_whitespace().nth(8)?.parse().ok()
        })
        .unwrap_or(0)
}

pub(super) fn wrk(
    url: &str,
    header: Option<&str>,
    servers: &mut [&mut Server],
    want: u16,
) -> Result<Figures> {
    // A warm-up request checks the case answers what it should.
    let mut probe = Command::new("curl");
    probe.args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"]);
    if let Some(h) = header {
        probe.args(["-H", h]);
    }
    let got = String::from_utf8(probe.arg(url).output()?.stdout)?;
    if got != want.to_string() {
        bail!("{url} answered {got}, expected {want}");
    }
    let before: u64 = servers.iter_mut().map(|s| s.cpu_ticks()).sum();
    let steal_before = steal_ticks();
    let started = Instant::now();
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        "1",
        "wrk",
        "-t1",
        "-c",
        CONNECTIONS,
        "-d",
        DURATION,
        "--latency",
    ]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().context("cannot run wrk")?;
    let after: u64 = servers.iter_mut().map(|s| s.cpu_ticks()).sum();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let steal = steal_ticks().saturating_sub(steal_before) as f64
        / (started.elapsed().as_secs_f64() * cpus * clock_ticks());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if text.contains("Non-2xx") && want == 200 {
        bail!("wrk saw errors:\n{text}");
    }
    if text.contains("Socket errors") {
        bail!("wrk saw socket errors:\n{text}");
    }
    let requests: f64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no request count in:\n{text}"))?;
    let rps: f64 = field(&text, "Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in:\n{text}"))?;
    let pct = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    let ticks_per_sec = clock_ticks();
    let cpu_us = (after - before) as f64 * 1e6 / ticks_per_sec / requests;
    Ok(Figures {
        rps,
        p50_us: micros(&pct("50%")),
        p99_us: micros(&pct("99%")),
        rss_kib: servers.iter_mut().map(|s| s.rss_peak_kib()).sum(),
        cpu_us,
        steal,
    })
}

pub(super) fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(str::trim)
}

pub(super) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub(super) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default()
}

/// A server under test, stopped when dropped (it is a [`Proc`]). Its CPU and memory include
/// every descendant (nginx's workers).
pub(super) struct Server(Proc);

impl Server {
    pub(super) fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Server> {
        let proc = Proc::start(name, cmd, log).with_context(|| format!("cannot start {name}"))?;
        Ok(Server(proc))
    }

    /// The process and its descendants (taskset execs, so the child's pid is the server's).
    pub(super) fn pids(&self) -> Vec<u32> {
        let mut all = vec![self.0.child.id()];
        let mut i = 0;
        while i < all.len() {
            let pid = all[i];
            if let Ok(kids) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
                all.extend(
                    kids.split_whitespace()
                        .filter_map(|k| k.parse::<u32>().ok()),
                );
            }
            i += 1;
        }
        all
    }

    /// utime + stime of every process, in clock ticks.
    pub(super) fn cpu_ticks(&mut self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .map(|stat| {
                // Fields after the command name, which is in parentheses and may hold spaces.
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                let f: Vec<&str> = rest.split_whitespace().collect();
                // utime and stime are fields 14 and 15; `rest` starts at field 3.
                f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                    + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            })
            .sum()
    }

    /// Resident memory of every process now, KiB.
    pub(super) fn rss_kib(&mut self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident memory of every process, KiB.
    pub(super) fn rss_peak_kib(&mut self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A `/proc/PID/status` field in kB, summed over every process.
    fn status_kib(&self, key: &str) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .sum()
    }
}

pub(super) struct RemoveOnDrop(pub(super) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn wait_port(port: u16) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on port {port}")
}

pub(super) fn check(out: std::process::Output) -> Result<std::process::Output> {
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}
