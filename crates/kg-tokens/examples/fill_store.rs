//! Adds N tokens to the store of a keygate home in one transaction and prints each new token
//! on its own line: `cargo xtask bench reload` fills a server's store with it (one
//! `tokenctl create` per token rewrites the whole store each time, hours at 100,000) and
//! builds nginx's equivalent map from the printed tokens.
//!
//! `cargo run --release -p kg-tokens --example fill_store -- HOME N`
#![allow(clippy::print_stdout, clippy::print_stderr)] // A bench helper: its output is its job.

use std::io::Write;
use std::path::Path;

use kg_fs::lock::Wait;
use kg_tokens::{Prefix, StorePaths};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [home, n] = args.as_slice() else {
        eprintln!("usage: fill_store HOME N");
        std::process::exit(2);
    };
    let n: usize = n.parse().unwrap_or_else(|_| {
        eprintln!("fill_store: N must be a count, not {n:?}");
        std::process::exit(2);
    });
    let home = Path::new(home);
    let paths = StorePaths::new(&home.join("state"), &home.join("private"));
    let prefix = Prefix::default();
    let now = time::OffsetDateTime::now_utc();
    let mut txn = paths
        .begin(Wait::Up(std::time::Duration::from_secs(10)), &prefix)
        .unwrap_or_else(|e| {
            eprintln!("fill_store: {e}");
            std::process::exit(1);
        });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    {
        let (store, pepper) = txn.parts();
        for i in 0..n {
            let (_, token) = store
                .create_additional(pepper, &format!("fill-{i}"), vec![], None, now)
                .unwrap_or_else(|e| {
                    eprintln!("fill_store: {e}");
                    std::process::exit(1);
                });
            let _ = writeln!(out, "{}", token.expose_secret());
        }
    }
    if let Err(e) = txn.commit() {
        eprintln!("fill_store: {e}");
        std::process::exit(1);
    }
    let _ = out.flush();
}
