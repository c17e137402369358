//! Benchmarks. Each reports ratios against a peer measured in the same run, because absolute
//! figures on a shared 2-core machine mean little. Timings are whole-process, taken by
//! hyperfine, so they include start-up, which is what cron and bootstrap scripts pay.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

mod flood;
mod issue;
mod oauth;
mod portal;
mod reload;
mod renew;
mod server;
mod tokens;

/// The benchmarks that exist; later issues add theirs.
pub(crate) const NAMES: &[&str] = &[
    "issue", "renew", "tokens", "server", "flood", "reload", "oauth", "portal",
];

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let names: Vec<&str> = match args.first().map(String::as_str) {
        None | Some("all") => NAMES.to_vec(),
        Some(name) => vec![name],
    };
    for name in names {
        match name {
            "issue" => issue::run(root)?,
            "server" => server::run(root)?,
            "renew" => renew::run(root)?,
            "tokens" => tokens::run(root)?,
            "flood" => flood::run(root)?,
            "reload" => reload::run(root)?,
            "oauth" => oauth::run(root)?,
            "portal" => portal::run(root)?,
            other => bail!(
                "unknown benchmark '{other}'; available: {}",
                NAMES.join(", ")
            ),
        }
    }
    Ok(())
}

/// One hyperfine result.
#[derive(Debug)]
pub(crate) struct Timing {
    pub name: String,
    pub mean_ms: f64,
    pub stddev_ms: f64,
    pub median_ms: f64,
}

/// Runs hyperfine over `(name, command line)` pairs without a shell and returns the timings.
pub(crate) fn hyperfine(
    commands: &[(&str, Vec<String>)],
    runs: u32,
    env: &[(&str, &Path)],
) -> Result<Vec<Timing>> {
    let csv = std::env::temp_dir().join(format!("keygate-bench-{}.csv", std::process::id()));
    let mut cmd = Command::new("hyperfine");
    cmd.args([
        "--style",
        "basic",
        "-N",
        "--warmup",
        "5",
        "--runs",
        &runs.to_string(),
        "--export-csv",
    ])
    .arg(&csv);
    for (name, argv) in commands {
        cmd.arg("--command-name").arg(name).arg(shell_words(argv));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd
        .status()
        .context("cannot run hyperfine (apt-get install hyperfine)")?;
    if !status.success() {
        bail!("hyperfine failed");
    }
    let text = std::fs::read_to_string(&csv)?;
    let _ = std::fs::remove_file(&csv);
    // command,mean,stddev,median,user,system,min,max (seconds)
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let ms = |i: usize| -> Result<f64> {
                Ok(f.get(i).context("short CSV line")?.parse::<f64>()? * 1000.0)
            };
            Ok(Timing {
                name: f[0].to_owned(),
                mean_ms: ms(1)?,
                stddev_ms: ms(2)?,
                median_ms: ms(3)?,
            })
        })
        .collect()
}

/// Joins argv for hyperfine's `-N` mode, which splits on whitespace (our args have none).
fn shell_words(argv: &[String]) -> String {
    argv.join(" ")
}

pub(crate) fn tool(name: &str) -> Result<()> {
    if Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()?
        .status
        .success()
    {
        Ok(())
    } else {
        bail!("{name} is needed for this benchmark (.ci/run installs it)")
    }
}
