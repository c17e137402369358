//! `cargo xtask bench renew`: `certctl renew --all --no-jitter` over 1,000 managed
//! certificates of which none is due: what every machine pays twice a day from cron.
//! Target (issue 4): at most 100 ms on this machine.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use super::{hyperfine, tool};

const CERTS: usize = 1000;

pub(crate) fn run(root: &Path) -> Result<()> {
    tool("hyperfine")?;
    crate::run("cargo", &["build", "--release", "--quiet", "-p", "certctl"])?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let certctl = target.join("release/certctl");
    let home = std::env::temp_dir().join(format!("keygate-bench-renew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    eprintln!("issuing {CERTS} certificates...");
    for i in 0..CERTS {
        let id = format!("c{i:04}");
        let ok = Command::new(&certctl)
            .args([
                "issue",
                "--method",
                "local-ca",
                "--id",
                &id,
                "localhost",
                "127.0.0.1",
            ])
            .env("KEYGATE_HOME", &home)
            .output()?
            .status
            .success();
        if !ok {
            bail!("issuing {id} failed");
        }
    }
    let argv = vec![
        certctl.display().to_string(),
        "renew".into(),
        "--all".into(),
        "--no-jitter".into(),
    ];
    // It must really be the no-op run: nothing printed, nothing renewed.
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env("KEYGATE_HOME", &home)
        .output()?;
    if !out.status.success() || !out.stdout.is_empty() {
        bail!(
            "the renew run was not a silent no-op: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let timings = hyperfine(
        &[("certctl renew --all", argv)],
        30,
        &[("KEYGATE_HOME", &home)],
    )?;
    let _ = std::fs::remove_dir_all(&home);
    let t = &timings[0];
    println!("\nbench renew: {CERTS} managed certificates, none due");
    println!(
        "certctl renew --all --no-jitter: mean {:.1} ms ± {:.1}, median {:.1} ms (target <= 100 ms)",
        t.mean_ms, t.stddev_ms, t.median_ms
    );
    Ok(())
}
