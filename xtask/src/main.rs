//! `cargo xtask`: the project's own automation, with as few dependencies as possible.
//!
//! - `cargo xtask ci`: everything CI checks, in the order that fails fastest.
//! - `cargo xtask tidy`: source checks that keep ARCHITECTURE.md true (first step of `ci`).
//! - `cargo xtask codegen`: regenerate shell completions and man pages.
//! - `cargo xtask fuzz [NAME] [SECONDS]`: one fuzz target in `fuzz/` (or every one), 60 s
//!   each by default.
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
        Some("fuzz") => {
            let mut rest = &args[1..];
            let all = fuzz_targets(&root)?;
            let only = match rest.first() {
                Some(name) if name.parse::<u64>().is_err() => {
                    if !all.contains(name) {
                        bail!(
                            "no fuzz target named {name}; hint: the targets are {}",
                            all.join(", ")
                        );
                    }
                    rest = &rest[1..];
                    vec![name.clone()]
                }
                _ => all,
            };
            let secs = match rest.first() {
                Some(s) => s
                    .parse()
                    .context("cargo xtask fuzz [NAME] [SECONDS per target]")?,
                None => 60,
            };
            fuzz(root.as_path(), &only, secs)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | tidy | codegen | fuzz [NAME] [SECONDS] | bench [{}]>",
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
    // A short smoke run of every fuzz target: they build, and the easy crashes are found.
    fuzz(root, &fuzz_targets(root)?, 10)?;
    Ok(())
}

/// The fuzz targets: every `fuzz/fuzz_targets/NAME.rs`, by name, sorted.
fn fuzz_targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("fuzz/fuzz_targets");
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Runs fuzz targets with cargo fuzz, one after another, for `secs` seconds each. cargo fuzz
/// wants nightly's `-Z` flags; `RUSTC_BOOTSTRAP=1` lets the one stable toolchain accept
/// them. No sanitizer: the code is `forbid(unsafe_code)`, and libFuzzer's coverage alone
/// drives the search.
fn fuzz(root: &Path, targets: &[String], secs: u64) -> Result<()> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| PathBuf::from(d).with_extension("fuzz"))
        .unwrap_or_else(|| root.join("fuzz/target"));
    for target in targets {
        let max = format!("-max_total_time={secs}");
        eprintln!("$ cargo fuzz run {target} --sanitizer none -- {max}");
        let status = Command::new("cargo")
            .args([
                "fuzz",
                "run",
                target.as_str(),
                "--sanitizer",
                "none",
                "--",
                &max,
            ])
            .current_dir(root.join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .context("cannot run cargo fuzz (cargo install --locked cargo-fuzz)")?;
        if !status.success() {
            bail!("fuzz target {target} failed with {status}: see fuzz/artifacts/{target}");
        }
    }
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
