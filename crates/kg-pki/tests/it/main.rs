//! kg-pki's integration tests: one binary (`tests/it`), one module per concern.

// Certificates and keys checked against the `openssl` command, at a fixed clock.
mod openssl;
// Regressions from the security review of the first certctl release.
mod regressions;
