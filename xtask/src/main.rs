//! `cargo xtask`: the project's own automation, with as few dependencies as possible.
//!
//! - `cargo xtask ci`: everything CI checks, in the order that fails fastest.
//! - `cargo xtask tidy`: source checks that keep ARCHITECTURE.md true (first step of `ci`).
//! - `cargo xtask codegen`: regenerate shell completions and man pages.
//! - `cargo xtask bench [NAME]`: whole-process benchmarks beside peers measured in the same run.
#![forbid(unsafe_code)]
// Printing what runs and what it measured is this tool's job; it is never piped to `head`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bench;
mod tidy;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("tidy") => tidy::run(&root),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("codegen") => codegen(),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | tidy | codegen | bench [{}]>",
                bench::NAMES.join(" | ")
            );
            std::process::exit(2);
        }
    }
}

fn ci(root: &Path) -> Result<()> {
    eprintln!("$ cargo xtask tidy");
    tidy::run(root)?;
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("bash", &["fixtures/tailscale/selftest.sh"])?;
    run("cargo", &["test", "--workspace", "--quiet"])?;
    Ok(())
}

/// Regenerates shell completions (`completions/`) and man pages (`man/`) from the binaries'
/// clap definitions, through their freshness tests in write mode.
fn codegen() -> Result<()> {
    let status = Command::new("cargo")
        .args([
            "test", "--quiet", "-p", "certctl", "-p", "tokenctl", "-p", "keygate", "--test",
            "codegen",
        ])
        .env("KEYGATE_CODEGEN", "write")
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("generating completions and man pages failed");
    }
    Ok(())
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}
