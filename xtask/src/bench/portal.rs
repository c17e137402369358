//! `cargo xtask bench portal`: a person's sign-in at the default Argon2id parameters, and a
//! request through the gateway with a person's session beside one with an API token.
//!
//! Issue 17. keygate serves plain HTTP on loopback in front of nginx answering `200` (the
//! upstream's CPU is not counted), with the rate limiter off and the audit log to a file.
//! The sign-in case posts the name-and-password form (with a valid CSRF pair) over 4
//! connections for 5 s, every answer a 303 with a new session (each an Argon2id
//! verification at m = 19 MiB, t = 2, p = 1 and a session insert), to a second keygate on
//! the same home started on no CPU in particular (its hashing gate sizes itself to the CPUs
//! the process may use); wrk's share of the CPUs is negligible at this rate. The
//! gateway cases run as `bench server` does: keygate pinned to CPU 0, wrk (32 connections)
//! to CPU 1, 5 s each, CPU per request from `/proc/PID/stat` over the responses counted.
//! Rounds alternate the cases (`KEYGATE_BENCH_ROUNDS`, 3 by default); the table gives
//! medians.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::oauth::{COUNT_STATUSES, lua_string, write_private};
use super::server::{
    Figures, Server, check, clock_ticks, cpu_model, median, nginx_conf, nginx_on_cpu0, rounds,
    setup, wait_port, wrk,
};
use super::tool;

const PASSWORD: &str = "the benchmark's long passphrase";

pub(crate) fn run(root: &Path) -> Result<()> {
    let rounds = rounds()?;
    for t in ["wrk", "nginx", "taskset", "curl"] {
        tool(t)?;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        bail!("this benchmark pins keygate and wrk to two different CPUs; it needs 2");
    }
    let setup = setup(root, "portal")?;
    let (bin, scratch, home, token) = (&setup.bin, &setup.scratch, &setup.home, &setup.token);
    let port = |n: u16| 20_000 + (std::process::id() % 20_000) as u16 + n;
    let (kg, app, kg_free) = (port(0), port(1), port(2));
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[server]\nrate_limit_burst = 0\naudit_log = \"{}\"\nupstream = \"http://127.0.0.1:{app}\"\n\
             local_bypass = false\n",
            scratch.join("audit.log").display()
        ),
    )?;
    let keygate_cmd = |args: &[&str]| {
        let mut c = Command::new(bin.join("keygate"));
        c.args(args).env("KEYGATE_HOME", home);
        c
    };
    check(keygate_cmd(&["users", "add", "bench"]).output()?)?;
    let mut passwd = keygate_cmd(&["users", "passwd", "bench", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    std::io::Write::write_all(
        &mut passwd.stdin.take().context("stdin")?,
        format!("{PASSWORD}\n").as_bytes(),
    )?;
    if !passwd.wait()?.success() {
        bail!("keygate users passwd failed");
    }

    let nginx_dir = scratch.join("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        nginx_conf(
            &nginx_dir,
            &format!(
                "  server {{\n    listen 127.0.0.1:{app};\n    location / {{ return 200; }}\n  }}\n"
            ),
        ),
    )?;
    let _nginx = nginx_on_cpu0(&nginx_dir, &scratch.join("nginx.log"))?;
    let mut keygate = Server::spawn(
        "keygate",
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(bin.join("keygate"))
            .args(["serve", "--plain-http", "--listen"])
            .arg(format!("127.0.0.1:{kg}"))
            .env("KEYGATE_HOME", home),
        &scratch.join("keygate.log"),
    )?;
    // The sign-in case's own keygate, on no CPU in particular: the hashing gate lets as many
    // hashes run at once as the process may use CPUs, which a process started on CPU 0 alone
    // takes to be one (as a service pinned by its unit would).
    let mut keygate_free = Server::spawn(
        "keygate (both CPUs)",
        Command::new(bin.join("keygate"))
            .args(["serve", "--plain-http", "--listen"])
            .arg(format!("127.0.0.1:{kg_free}"))
            .env("KEYGATE_HOME", home),
        &scratch.join("keygate-free.log"),
    )?;
    for p in [kg, app, kg_free] {
        wait_port(p)?;
    }
    let base = format!("http://127.0.0.1:{kg}");
    let free_base = format!("http://127.0.0.1:{kg_free}");

    // A CSRF pair from the sign-in page, and one session to replay.
    let jar = scratch.join("jar");
    let page = String::from_utf8(
        check(
            Command::new("curl")
                .args(["-s", "-c"])
                .arg(&jar)
                .arg(format!("{base}/.keygate/sign-in"))
                .output()?,
        )?
        .stdout,
    )?;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .context("no CSRF field on the sign-in page")?
        .to_owned();
    let form = format!(
        "csrf={csrf}&username=bench&password={}&next=%2F",
        PASSWORD.replace(' ', "+").replace('\'', "%27")
    );
    let mut script = String::from("-- Written by `cargo xtask bench portal`.\n");
    script.push_str(COUNT_STATUSES);
    let _ = write!(
        script,
        "\nwrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \
         \"application/x-www-form-urlencoded\"\nwrk.headers[\"Cookie\"] = {}\n\
         wrk.headers[\"Origin\"] = {}\n\
         function init(args) statuses = {{}} end\n\
         function response(status, headers, body) count(status) end\n\
         function done(summary, latency, requests) report() end\n",
        lua_string(&form),
        lua_string(&format!("keygate_csrf={csrf}")),
        lua_string(&free_base),
    );
    let lua = scratch.join("sign-in.lua");
    write_private(&lua, &script)?;

    let token_header = format!("Authorization: Bearer {token}");
    let mut sign_ins = Vec::new();
    let mut with_token: Vec<Figures> = Vec::new();
    let mut with_session: Vec<Figures> = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        let s = sign_in_case(&mut keygate_free, &lua, &free_base)?;
        eprintln!("  sign-in: {:.1}/s, {:.1} ms CPU each", s.0, s.1);
        sign_ins.push(s);
        // A session of its own after the sign-ins, which evicted the person's older ones.
        let session_header = format!(
            "Cookie: keygate_session={}",
            sign_in_once(&scratch.join("session.jar"), &base, &form, &csrf)?
        );
        let t = wrk(
            &format!("{base}/"),
            Some(&token_header),
            &mut [&mut keygate],
            200,
        )?;
        eprintln!(
            "  API token: {:.0} req/s, {:.1} us CPU/req",
            t.rps, t.cpu_us
        );
        with_token.push(t);
        let s = wrk(
            &format!("{base}/"),
            Some(&session_header),
            &mut [&mut keygate],
            200,
        )?;
        eprintln!("  session: {:.0} req/s, {:.1} us CPU/req", s.rps, s.cpu_us);
        with_session.push(s);
    }
    let rate = median(sign_ins.iter().map(|s| s.0).collect());
    let cpu_ms = median(sign_ins.iter().map(|s| s.1).collect());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let m = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
    let (tok_cpu, ses_cpu) = (m(&with_token, |f| f.cpu_us), m(&with_session, |f| f.cpu_us));
    println!(
        "\n| case | rate | server CPU each |\n|---|---:|---:|\n\
         | sign-in, Argon2id m=19 MiB t=2 p=1 ({cores} cores) | {rate:.1}/s | {cpu_ms:.1} ms |\n\
         | GET through the gateway, API token | {:.0}/s | {tok_cpu:.1} us |\n\
         | GET through the gateway, person's session | {:.0}/s | {ses_cpu:.1} us |\n",
        m(&with_token, |f| f.rps),
        m(&with_session, |f| f.rps),
    );
    println!(
        "sign-ins/s {rate:.1} against {cores} cores / {cpu_ms:.1} ms = {:.1}; session / token CPU \
         per request {:.2} (goal <= 1.1); median of {rounds} rounds; {}",
        cores as f64 * 1000.0 / cpu_ms,
        ses_cpu / tok_cpu,
        cpu_model()
    );
    Ok(())
}

/// One sign-in with curl: the session cookie's value.
fn sign_in_once(jar: &Path, base: &str, form: &str, csrf: &str) -> Result<String> {
    let _ = std::fs::remove_file(jar);
    let signed = check(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-b"])
            .arg(format!("keygate_csrf={csrf}"))
            .arg("-c")
            .arg(jar)
            .args(["-H", &format!("Origin: {base}"), "--data-binary", form])
            .arg(format!("{base}/.keygate/sign-in"))
            .output()?,
    )?;
    if signed.stdout != b"303" {
        bail!(
            "the benchmark's sign-in answered {}",
            String::from_utf8_lossy(&signed.stdout)
        );
    }
    let jar_text = std::fs::read_to_string(jar)?;
    let session = jar_text
        .lines()
        .find(|l| l.contains("keygate_session"))
        .and_then(|l| l.split('\t').nth(6))
        .context("no session cookie after signing in")?
        .to_owned();
    Ok(session)
}

/// Sign-ins for 5 s over 4 connections, against a keygate free to use both CPUs: (per
/// second, CPU ms each).
fn sign_in_case(keygate: &mut Server, lua: &Path, base: &str) -> Result<(f64, f64)> {
    let before = keygate.cpu_ticks();
    let started = Instant::now();
    let out = Command::new("wrk")
        .args(["-t1", "-c", "4", "-d", "5s", "-s"])
        .arg(lua)
        .arg(format!("{base}/.keygate/sign-in"))
        .output()
        .context("cannot run wrk")?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = keygate.cpu_ticks();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut ok = 0u64;
    let mut other = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if let (Some("bench-status"), Some(s), Some(n)) = (w.next(), w.next(), w.next()) {
            let n: u64 = n.parse()?;
            if s == "303" {
                ok += n;
            } else {
                other.push(format!("{n} x {s}"));
            }
        }
    }
    if !other.is_empty() || ok == 0 {
        bail!(
            "sign-in: answers other than 303: {}\n{text}",
            other.join(", ")
        );
    }
    let cpu_ms = (after - before) as f64 * 1e3 / clock_ticks() / ok as f64;
    Ok((ok as f64 / elapsed, cpu_ms))
}
