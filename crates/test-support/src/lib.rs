//! Dev-only support for keygate's end-to-end scenarios (`tests/it`) and benchmarks (`xtask`).
//!
//! - The harness: [`Env`] runs one of our binaries in an isolated home and [`Run`] holds the
//!   outcome; [`bin`] builds the workspace's binaries first, once per test process.
//! - [`Proc`]: a child process (keygate, nginx, Caddy, ...) that is stopped when dropped.
//! - [`with_checksum`]: the token checksum written from the format's description, an oracle
//!   independent of kg-tokens.
//! - [`server`], [`tokens`] and, with the `proxy` feature, `proxy`: the helpers of each family
//!   of scenarios.
//!
//! It is a library so that a helper some scenario does not use is no `dead_code` warning.
//! Test code talks to the person running it on stderr, like the test runner does.
#![allow(clippy::print_stderr)]

pub mod attack;
mod checksum;
mod harness;
mod process;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod server;
pub mod tokens;

pub use checksum::with_checksum;
pub use harness::{
    Env, NOBODY, Run, as_nobody, bin, bin_dir, can_be_nobody, fixtures, give_to_nobody, have,
    have_npm_fixture, have_python_module, mkcert_caroot, stat_mode,
};
pub use process::Proc;
