//! Benchmarks. Each reports ratios against a peer measured in the same run, because absolute
//! figures on a shared 2-core machine mean little.

use std::path::Path;

use anyhow::{Result, bail};

/// The benchmarks that exist so far; later issues add theirs.
pub(crate) const NAMES: &[&str] = &[];

pub(crate) fn run(_root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None => {
            for name in NAMES {
                eprintln!("available: {name}");
            }
            Ok(())
        }
        Some(other) => bail!(
            "unknown benchmark '{other}'; available: {}",
            NAMES.join(", ")
        ),
    }
}
