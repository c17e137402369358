//! `cargo xtask bench reload`: `/auth` latency and memory while a store of 100,000 tokens is
//! reloaded about three times a second (issue 14, item 6), keygate beside nginx holding the
//! same 100,001 tokens in a `map` and reloading its configuration as often, in the same run.
//!
//! The store is filled by `crates/kg-tokens/examples/fill_store.rs` (one transaction; one
//! `tokenctl create` per token would rewrite the whole store 100,000 times). keygate is made
//! to reload by a copy of its store renamed over it, as every writer replaces it; nginx by
//! SIGHUP to its master, its documented reload. Both servers run one worker pinned to CPU 0;
//! wrk and the reload trigger share CPU 1.
//!
//! Per case, `wrk -t1 -c16 -d20s --latency` with a valid token: requests per second, p50,
//! p99 and the slowest answer; reloads done; resident memory (every process, nginx's old
//! workers included) after the case. Cases run in rounds (`KEYGATE_BENCH_ROUNDS`, 3 by
//! default), the servers alternating, each steady then reloading; the table gives medians,
//! and memory is also printed after each round, so growth across reloads shows. Last, the
//! cost of one store change at this size (`tokenctl create`), which rewrites the store.
//!
//! A third server, "keygate (unit)", is keygate started with the environment `keygate unit`
//! gives the service (a fixed glibc mmap threshold), reloading as often: the memory a
//! deployment from the printed unit holds.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::server::{
    Server, check, median, micros, nginx_conf, nginx_on_cpu0, rounds, setup, wait_port,
};
use super::tool;

const FILL: usize = 100_000;
const SECONDS: u64 = 20;
const EVERY: Duration = Duration::from_millis(333);

pub(crate) fn run(root: &Path) -> Result<()> {
    let rounds = rounds()?;
    for t in ["nginx", "taskset", "wrk"] {
        tool(t)?;
    }
    let s = setup(root, "reload")?;
    eprintln!("filling the store with {FILL} tokens...");
    let fill = check(
        Command::new("cargo")
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "kg-tokens",
                "--example",
                "fill_store",
                "--",
            ])
            .arg(&s.home)
            .arg(FILL.to_string())
            .output()?,
    )?;
    let filled = String::from_utf8(fill.stdout)?;
    let store = s.home.join("state/tokens.json");
    if !store.is_file() {
        bail!("no store at {}", store.display());
    }

    let port = |n: u16| 20_000 + (std::process::id() % 20_000) as u16 + n;
    let (kg_port, nx_port, unit_port) = (port(20), port(21), port(22));
    let nginx_dir = s.scratch.join("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    let mut map = String::with_capacity(filled.len() * 2);
    for t in std::iter::once(s.token.as_str()).chain(filled.lines()) {
        map.push_str(&format!("    \"Bearer {t}\" 1;\n"));
    }
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        nginx_conf(
            &nginx_dir,
            &format!(
                "  map_hash_bucket_size 128;\n  map_hash_max_size 262144;\n  \
                 map $http_authorization $kg_ok {{\n    default 0;\n{map}  }}\n  \
                 server {{\n    listen 127.0.0.1:{nx_port};\n    \
                 location = /auth {{\n      if ($kg_ok) {{ return 200; }}\n      return 401;\n    }}\n  }}\n"
            ),
        ),
    )?;
    let mut nginx = nginx_on_cpu0(&nginx_dir, &s.scratch.join("nginx.log"))?;
    let kg_log = s.scratch.join("keygate.log");
    let mut keygate = Server::spawn(
        "keygate",
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(s.bin.join("keygate"))
            .args(["serve", "--plain-http", "--listen"])
            .arg(format!("127.0.0.1:{kg_port}"))
            .env("KEYGATE_HOME", &s.home),
        &kg_log,
    )?;
    // keygate again, with the environment `keygate unit` gives the service (glibc's malloc
    // settings), read from its output so that the bench follows the unit.
    let unit = check(
        Command::new(s.bin.join("keygate"))
            .arg("unit")
            .env("KEYGATE_HOME", &s.home)
            .output()?,
    )?;
    let unit = String::from_utf8(unit.stdout)?;
    let mut kg_unit_cmd = Command::new("taskset");
    kg_unit_cmd
        .args(["-c", "0"])
        .arg(s.bin.join("keygate"))
        .args(["serve", "--plain-http", "--listen"])
        .arg(format!("127.0.0.1:{unit_port}"))
        .env("KEYGATE_HOME", &s.home);
    for line in unit.lines() {
        if let Some((k, v)) = line
            .strip_prefix("Environment=MALLOC_")
            .and_then(|kv| kv.split_once('='))
        {
            kg_unit_cmd.env(format!("MALLOC_{k}"), v);
        }
    }
    let mut keygate_unit = Server::spawn(
        "keygate",
        &mut kg_unit_cmd,
        &s.scratch.join("keygate-unit.log"),
    )?;
    wait_port(nx_port)?;
    wait_port(kg_port)?;
    wait_port(unit_port)?;
    // nginx is ready once its map is built; a first request says so for both.
    let header = format!("Authorization: Bearer {}", s.token);
    for p in [kg_port, nx_port, unit_port] {
        let code = curl(p, &header)?;
        if code != "200" {
            bail!("port {p} answered {code} to a valid token, expected 200");
        }
    }
    let nginx_master = nginx.pids()[0];
    let kg_start = keygate.rss_kib();
    let nx_start = nginx.rss_kib();
    let unit_start = keygate_unit.rss_kib();

    // (server, reloading)
    let cases = [
        ("keygate", false),
        ("keygate", true),
        ("nginx", false),
        ("nginx", true),
        ("keygate (unit)", true),
    ];
    let mut figures: Vec<Vec<Figures>> = cases.iter().map(|_| Vec::new()).collect();
    let mut kg_reloads = 0;
    for round in 0..rounds {
        for (i, &(name, reloading)) in cases.iter().enumerate() {
            eprintln!(
                "round {}/{rounds}: {name}{}",
                round + 1,
                if reloading { ", reloading" } else { "" }
            );
            let (p, server) = match name {
                "keygate" => (kg_port, &mut keygate),
                "nginx" => (nx_port, &mut nginx),
                _ => (unit_port, &mut keygate_unit),
            };
            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicUsize::new(0));
            let trigger = reloading.then(|| {
                let (stop, done, store) = (Arc::clone(&stop), Arc::clone(&done), store.clone());
                let is_keygate = name != "nginx";
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let next = Instant::now() + EVERY;
                        let ok = if is_keygate {
                            replace_store(&store)
                        } else {
                            on_cpu1(&["kill", "-HUP", &nginx_master.to_string()])
                        };
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                })
            });
            let mut f = wrk(p, &header)?;
            stop.store(true, Ordering::Relaxed);
            if let Some(t) = trigger {
                let _ = t.join();
            }
            f.reloads = done.load(Ordering::Relaxed);
            if name == "keygate" {
                kg_reloads += f.reloads;
            }
            // Let the last reload land and old workers leave before memory is read.
            std::thread::sleep(Duration::from_secs(2));
            f.rss_kib = server.rss_kib();
            figures[i].push(f);
        }
        eprintln!(
            "after round {}: keygate RSS {} MB ({kg_reloads} reloads so far), nginx RSS {} MB, \
             keygate (unit) RSS {} MB",
            round + 1,
            mb(keygate.rss_kib()),
            mb(nginx.rss_kib()),
            mb(keygate_unit.rss_kib()),
        );
    }
    // What the server says it did: one `tokens_reloaded` line per store it took in.
    let logged = std::fs::read_to_string(&kg_log)
        .unwrap_or_default()
        .matches("\"tokens_reloaded\"")
        .count();

    // One store change at this size: a token created, the store rewritten.
    let mut change_ms = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        check(
            Command::new(s.bin.join("tokenctl"))
                .args(["create", "--name", &format!("change-{i}")])
                .env("KEYGATE_HOME", &s.home)
                .output()?,
        )?;
        change_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }

    println!(
        "\n| case ({} tokens) | req/s | p50 ms | p99 ms | max ms | reloads | RSS after, MB |",
        FILL + 1
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for ((name, reloading), f) in cases.iter().zip(&figures) {
        let m = |g: fn(&Figures) -> f64| median(f.iter().map(g).collect());
        println!(
            "| {name}{} | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} |",
            if *reloading {
                ", reloading"
            } else {
                ", steady"
            },
            m(|f| f.rps),
            m(|f| f.p50_us / 1e3),
            m(|f| f.p99_us / 1e3),
            m(|f| f.max_us / 1e3),
            m(|f| f.reloads as f64),
            m(|f| f.rss_kib as f64 / 1024.0),
        );
    }
    println!(
        "resident memory: keygate {} MB after loading, {} MB after {kg_reloads} reloads \
         ({logged} `tokens_reloaded` lines, the start included); nginx {} MB, then {} MB; \
         keygate with the unit's environment {} MB, then {} MB",
        mb(kg_start),
        mb(keygate.rss_kib()),
        mb(nx_start),
        mb(nginx.rss_kib()),
        mb(unit_start),
        mb(keygate_unit.rss_kib()),
    );
    println!(
        "one store change at {} tokens (`tokenctl create`, the whole store rewritten): median {:.0} ms of 5",
        FILL + 1,
        median(change_ms)
    );
    println!(
        "wrk -t1 -c16 -d{SECONDS}s --latency on CPU 1, a reload every {} ms; servers on CPU 0; \
         median of {rounds} rounds",
        EVERY.as_millis()
    );
    Ok(())
}

fn mb(kib: u64) -> u64 {
    kib / 1024
}

struct Figures {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    reloads: usize,
    rss_kib: u64,
}

/// A copy of the store renamed over it, on CPU 1: a change as every writer makes one.
fn replace_store(store: &Path) -> bool {
    let tmp = store.with_extension("json.bench");
    let (s, t) = (store.display().to_string(), tmp.display().to_string());
    on_cpu1(&["cp", "--preserve=mode", &s, &t]) && on_cpu1(&["mv", "-f", &t, &s])
}

fn on_cpu1(argv: &[&str]) -> bool {
    Command::new("taskset")
        .args(["-c", "1"])
        .args(argv)
        .status()
        .is_ok_and(|s| s.success())
}

fn curl(port: u16, header: &str) -> Result<String> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", header])
        .arg(format!("http://127.0.0.1:{port}/auth"))
        .output()?;
    Ok(String::from_utf8(out.stdout)?)
}

fn wrk(port: u16, header: &str) -> Result<Figures> {
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c16", "-d"])
        .arg(format!("{SECONDS}s"))
        .args(["--latency", "-H", header])
        .arg(format!("http://127.0.0.1:{port}/auth"))
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if text.contains("Non-2xx") {
        bail!("wrk saw refusals of a valid token:\n{text}");
    }
    let pct = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .map_or(f64::NAN, |v| micros(v.trim()))
    };
    // "Latency   1.23ms  0.40ms  12.34ms  90.00%": average, deviation, maximum.
    let max_us = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Latency"))
        .and_then(|l| l.split_whitespace().nth(3))
        .map_or(f64::NAN, micros);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in:\n{text}"))?;
    Ok(Figures {
        rps,
        p50_us: pct("50%"),
        p99_us: pct("99%"),
        max_us,
        reloads: 0,
        rss_kib: 0,
    })
}
