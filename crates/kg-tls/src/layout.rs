//! File names inside each published certificate generation: the contract between certctl,
//! which publishes them (kg-cascade), and the server, which serves them.

/// The leaf certificate alone.
pub const CERT: &str = "cert.pem";
/// The issuer certificates, without the leaf.
pub const CHAIN: &str = "chain.pem";
/// Leaf then issuers: what servers present (nginx `ssl_certificate`).
pub const FULLCHAIN: &str = "fullchain.pem";
/// The private key, PKCS#8, 0600.
pub const KEY: &str = "key.pem";
/// The trust anchor clients need (`curl --cacert`).
pub const CA: &str = "ca.pem";
/// The tailnet certificate (leaf then issuers), when tailscale provided one.
pub const TAILNET_FULLCHAIN: &str = "tailnet-fullchain.pem";
/// The tailnet certificate's key, PKCS#8, 0600.
pub const TAILNET_KEY: &str = "tailnet-key.pem";
/// What was asked for and how it was obtained ([`crate::record::Record`]).
pub const META: &str = "meta.json";
