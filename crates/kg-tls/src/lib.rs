//! TLS for keygate: the one place that names a rustls `CryptoProvider`.
//!
//! aws-lc-rs is the one crypto library (ARCHITECTURE.md, "One crypto decision"); every TLS
//! object of the workspace, the server's and certctl's inspecting client alike, is built
//! from [`provider`] here, so that decision is made once.
//!
//! - [`layout`] and [`record`]: what a published certificate generation holds, the contract
//!   between kg-cascade (which publishes) and the server (which serves).
//! - [`server`]: the server configuration with a live-reloading SNI resolver.
//! - [`client`]: client configurations.
#![forbid(unsafe_code)]

use std::sync::Arc;

pub mod client;
pub mod layout;
pub mod record;
pub mod server;

/// The provider every TLS object uses: rustls' aws-lc-rs provider.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
