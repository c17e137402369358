//! `cargo xtask bench issue`: one leaf certificate, whole process, beside openssl and mkcert.
//!
//! Target (issue 3): no slower than `openssl req -x509 -newkey ec` and at most a quarter of
//! `mkcert -ecdsa`, for `localhost 127.0.0.1 ::1 myhost.internal`. Both CAs exist before
//! timing starts: CA creation is a one-time cost for every tool.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use super::{hyperfine, tool};

pub(crate) fn run(root: &Path) -> Result<()> {
    tool("hyperfine")?;
    tool("openssl")?;
    tool("mkcert")?;
    crate::run("cargo", &["build", "--release", "--quiet", "-p", "certctl"])?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let certctl = target.join("release/certctl");
    let scratch = std::env::temp_dir().join(format!("keygate-bench-issue-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (home, caroot, out) = (
        scratch.join("home"),
        scratch.join("caroot"),
        scratch.join("out"),
    );
    std::fs::create_dir_all(&out)?;
    std::fs::create_dir_all(&caroot)?;

    let names = ["localhost", "127.0.0.1", "::1", "myhost.internal"];
    let s = |p: &Path| p.display().to_string();
    let mut ours = vec![
        s(&certctl),
        "issue".into(),
        "--method".into(),
        "local-ca".into(),
    ];
    ours.extend(names.map(String::from));
    let mut mkcert = vec![
        "mkcert".into(),
        "-ecdsa".into(),
        "-cert-file".into(),
        s(&out.join("m.crt")),
        "-key-file".into(),
        s(&out.join("m.key")),
    ];
    mkcert.extend(names.map(String::from));
    let openssl: Vec<String> = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &s(&out.join("o.key")),
        "-out",
        &s(&out.join("o.crt")),
        "-days",
        "90",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1,DNS:myhost.internal",
    ]
    .map(String::from)
    .to_vec();

    // Create both CAs first.
    for argv in [&ours, &mkcert] {
        let ok = Command::new(&argv[0])
            .args(&argv[1..])
            .env("KEYGATE_HOME", &home)
            .env("CAROOT", &caroot)
            .output()?
            .status
            .success();
        if !ok {
            bail!("`{}` failed", argv.join(" "));
        }
    }
    let timings = hyperfine(
        &[
            ("certctl issue", ours),
            ("openssl req -x509", openssl),
            ("mkcert -ecdsa", mkcert),
        ],
        100,
        &[("KEYGATE_HOME", &home), ("CAROOT", &caroot)],
    )?;
    let _ = std::fs::remove_dir_all(&scratch);
    let pick = |n: &str| {
        timings
            .iter()
            .find(|t| t.name == n)
            .map_or((f64::NAN, f64::NAN), |t| (t.mean_ms, t.median_ms))
    };
    println!(
        "\nbench issue: whole-process time for one P-256 leaf ({})",
        names.join(" ")
    );
    println!(
        "{:<20} {:>9} {:>9} {:>9}",
        "command", "mean ms", "± ms", "median"
    );
    for t in &timings {
        println!(
            "{:<20} {:>9.2} {:>9.2} {:>9.2}",
            t.name, t.mean_ms, t.stddev_ms, t.median_ms
        );
    }
    // certctl alone fsyncs what it writes (durable publication), so other disk I/O on the
    // machine lands on it only: medians are the fairer comparison, means are shown too.
    let ((c, cm), (o, om), (m, mm)) = (
        pick("certctl issue"),
        pick("openssl req -x509"),
        pick("mkcert -ecdsa"),
    );
    println!(
        "certctl / openssl = {:.2} by median, {:.2} by mean (target <= 1.00)",
        cm / om,
        c / o
    );
    println!(
        "certctl / mkcert  = {:.2} by median, {:.2} by mean (target <= 0.25)",
        cm / mm,
        c / m
    );
    Ok(())
}
