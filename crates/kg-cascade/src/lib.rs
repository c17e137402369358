//! The provisioning cascade: how a certificate gets from "none" to published.
//!
//! `auto` tries, in order: `tailscale cert` (when the tailnet offers HTTPS certificate
//! domains), mkcert (when installed with a CA key), and keygate's own name-constrained local
//! CA. Whatever produced the material, it goes through the same gate before it becomes live:
//! [`kg_pki::verify`] (SANs, key match, chain to its anchor, validity), then one generation
//! published by [`kg_fs::generation`] together with its record. A failure at any step leaves
//! the previous generation live and untouched.
//!
//! External tools run through `duct` with captured output, a timeout, and no shell.
#![forbid(unsafe_code)]

pub mod doctor;
mod error;
pub mod fetch;
mod local_ca;
mod provision;
pub mod renew;
pub mod state;
pub mod tiers;
mod tool;

pub use error::Error;
pub use local_ca::{LocalCa, load_local_ca};
pub use provision::{
    Action, Files, Method, Outcome, Request, Tailnet, check_id, default_names, host_names, lock,
    provision, provision_locked, published_names,
};

/// File names inside each published generation (the contract with the server, kept in
/// kg-tls, which reads them).
pub use kg_tls::layout as files;

/// Whether this system's trust store already holds the CA certificate(s) in `ca_pem`: the
/// bundle named by `SSL_CERT_FILE`, or the usual Debian, Fedora and macOS/BSD bundles.
pub fn trusted_by_system(ca_pem: &str) -> bool {
    let Ok(wanted) = kg_pki::pem_certs(ca_pem) else {
        return false;
    };
    let bundles = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .map(std::path::PathBuf::from),
        );
    bundles
        .filter_map(|b| std::fs::read_to_string(b).ok())
        .filter_map(|text| kg_pki::pem_certs(&text).ok())
        .any(|system| wanted.iter().any(|w| system.contains(w)))
}
