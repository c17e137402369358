//! `cargo xtask bench tokens`: the in-process cost of verifying a token against stores of 10,
//! 10,000 and 100,000 tokens (valid and invalid), and the time to reload a store of 100,000.
//!
//! Targets (issue 5): verify at 100,000 tokens within 10% of verify at 10, and a reload of
//! 100,000 tokens under 100 ms. The measuring code is `crates/kg-tokens/examples/
//! bench_verify.rs`: verification happens inside the server, so whole-process timings would
//! measure start-up instead. It exits non-zero when a target is missed.

use std::path::Path;

use anyhow::Result;

pub(crate) fn run(_root: &Path) -> Result<()> {
    crate::run(
        "cargo",
        &[
            "run",
            "--release",
            "--quiet",
            "-p",
            "kg-tokens",
            "--example",
            "bench_verify",
        ],
    )
}
