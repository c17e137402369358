//! `cargo xtask bench flood`: a valid client's `/auth` latency while one local client holds
//! 1,500 slow sockets (issue 14, item 5), keygate beside nginx in the same run.
//!
//! The attack is [`test_support::attack::Slowloris`] from 127.0.0.1, the valid client's own
//! address: over plain HTTP each socket sends a request head a byte every 100 ms; over TLS
//! it sends nothing, a handshake held pending. Both servers run their defaults for the cap
//! (keygate `max_connections = 1024`; nginx `worker_connections 1024`, one worker) and are
//! pinned to CPU 0; the attack and the client share CPU 1's share of the machine.
//!
//! The valid client opens a new connection per request (what a starved client waits for
//! is a connection), sends `GET /auth` with its token and reads the answer, for
//! `SECONDS` per case, each request given `GIVE_UP` to be answered. Per case: requests
//! answered and failed, p50, p99 and the slowest answer. Cases run in rounds
//! (`KEYGATE_BENCH_ROUNDS`, 3 by default), keygate and nginx alternating; the table gives
//! medians.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use test_support::attack::Slowloris;

use super::server::{Server, median, nginx_conf, nginx_on_cpu0, rounds, setup, wait_port};
use super::tool;

const SOCKETS: usize = 1500;
const SECONDS: u64 = 8;
const GIVE_UP: Duration = Duration::from_secs(20);

pub(crate) fn run(root: &std::path::Path) -> Result<()> {
    let rounds = rounds()?;
    for t in ["nginx", "taskset"] {
        tool(t)?;
    }
    let s = setup(root, "flood")?;
    let port = |n: u16| 20_000 + (std::process::id() % 20_000) as u16 + n;
    let (kg_http, kg_https, nx_http, nx_https) = (port(10), port(11), port(12), port(13));
    let current = s.home.join("private/certs/default/current");
    let nginx_dir = s.scratch.join("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    let (c, token) = (current.display(), &s.token);
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        nginx_conf(
            &nginx_dir,
            &format!(
                "  map_hash_bucket_size 128;\n  map $http_authorization $kg_ok {{\n    default 0;\n    \"Bearer {token}\" 1;\n  }}\n  \
                 server {{\n    listen 127.0.0.1:{nx_http};\n    listen 127.0.0.1:{nx_https} ssl;\n    \
                 ssl_certificate {c}/fullchain.pem;\n    ssl_certificate_key {c}/key.pem;\n    \
                 location = /auth {{\n      if ($kg_ok) {{ return 200; }}\n      return 401;\n    }}\n  }}\n"
            ),
        ),
    )?;
    let _nginx = nginx_on_cpu0(&nginx_dir, &s.scratch.join("nginx.log"))?;
    let keygate = |listen: u16, plain: bool, log: &str| {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(s.bin.join("keygate")).arg("serve");
        if plain {
            c.arg("--plain-http");
        }
        c.arg("--listen")
            .arg(format!("127.0.0.1:{listen}"))
            .env("KEYGATE_HOME", &s.home);
        Server::spawn("keygate", &mut c, &s.scratch.join(log))
    };
    let _kg = keygate(kg_http, true, "keygate-http.log")?;
    let _kg_tls = keygate(kg_https, false, "keygate-https.log")?;
    for p in [kg_http, kg_https, nx_http, nx_https] {
        wait_port(p)?;
    }
    let tls = Arc::new(client_config(&current.join("ca.pem"))?);

    // (name, port, TLS, under attack)
    let mut cases = Vec::new();
    for (proto, kg, nx, is_tls) in [
        ("HTTP", kg_http, nx_http, false),
        ("HTTPS", kg_https, nx_https, true),
    ] {
        for attacked in [false, true] {
            for (server, p) in [("keygate", kg), ("nginx", nx)] {
                cases.push((format!("{server} {proto}"), p, is_tls, attacked));
            }
        }
    }
    let mut figures: Vec<Vec<Figures>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, (name, p, is_tls, attacked)) in cases.iter().enumerate() {
            eprintln!(
                "round {}/{rounds}: {name}{}",
                round + 1,
                if *attacked { ", under attack" } else { "" }
            );
            let addr = SocketAddr::from(([127, 0, 0, 1], *p));
            let attack = attacked.then(|| {
                let a = Slowloris::start(addr, &[IpAddr::from([127, 0, 0, 1])], SOCKETS, !is_tls);
                // Let it take the table (and the accept queue) first.
                let start = Instant::now();
                while a.open() < 1_000 && start.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                std::thread::sleep(Duration::from_secs(1));
                a
            });
            let before = attack.as_ref().map_or(0, Slowloris::closed_by_server);
            let mut f = measure(addr, is_tls.then(|| Arc::clone(&tls)), token);
            f.shed = attack.as_ref().map_or(0, Slowloris::closed_by_server) - before;
            figures[i].push(f);
            drop(attack);
            // Let the server close what the attack left before the next case.
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    println!(
        "\nflood: a valid client's /auth, a new connection per request, {SECONDS} s per case, \
         medians of {rounds} rounds; attack: {SOCKETS} slow sockets from the client's own address\n"
    );
    println!(
        "| case | attack sockets closed by the server | answered | failed (refused, reset, or no answer in {} s) | p50 ms | p99 ms | slowest ms |",
        GIVE_UP.as_secs()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for ((name, _, _, attacked), f) in cases.iter().zip(&figures) {
        let m = |g: fn(&Figures) -> f64| median(f.iter().map(g).collect());
        println!(
            "| {name}{} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
            if *attacked { ", attacked" } else { "" },
            m(|f| f.shed as f64),
            m(|f| f.answered as f64),
            m(|f| f.failed as f64),
            m(|f| f.p50_ms),
            m(|f| f.p99_ms),
            m(|f| f.max_ms),
        );
    }
    Ok(())
}

struct Figures {
    /// Attack sockets the server closed while the client was measured.
    shed: usize,
    answered: usize,
    failed: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Requests `/auth` on a new connection after another for [`SECONDS`].
fn measure(addr: SocketAddr, tls: Option<Arc<rustls::ClientConfig>>, token: &str) -> Figures {
    let request = format!(
        "GET /auth HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let mut times = Vec::new();
    let mut failed = 0;
    let end = Instant::now() + Duration::from_secs(SECONDS);
    while Instant::now() < end {
        let t = Instant::now();
        match one(addr, tls.as_ref(), request.as_bytes()) {
            Ok(true) => times.push(t.elapsed().as_secs_f64() * 1e3),
            _ => failed += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Figures {
        shed: 0,
        answered: times.len(),
        failed,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: times.last().copied().unwrap_or(f64::NAN),
    }
}

/// One request on a new connection; whether a 200 came back within [`GIVE_UP`].
fn one(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>, request: &[u8]) -> Result<bool> {
    let mut tcp = TcpStream::connect_timeout(&addr, GIVE_UP)?;
    // As servers and proxies do: a handshake written in several records must not wait for
    // a delayed ACK (40 ms per request against nginx otherwise).
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(GIVE_UP))?;
    tcp.set_write_timeout(Some(GIVE_UP))?;
    let mut answer = Vec::new();
    match tls {
        None => {
            tcp.write_all(request)?;
            let _ = tcp.read_to_end(&mut answer);
        }
        Some(config) => {
            let name = rustls_pki_types::ServerName::try_from("localhost")?;
            let conn = rustls::ClientConnection::new(Arc::clone(config), name)?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            s.write_all(request)?;
            let _ = s.read_to_end(&mut answer);
        }
    }
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}

fn client_config(ca: &std::path::Path) -> Result<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).context("the local CA")? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
