//! kg-tokens's integration tests: one binary (`tests/it`), one module per concern.

// The store on disk: transactions under the lock, the pepper, reloads, corrupt files.
mod files;
// The token format: generation, parsing, the checksum, the scanner regex, redaction.
mod format;
// age helpers: round trips, interop with Go `age`, truncated and tampered input.
mod seal;
// The store model: lifecycle under a fixed clock, verification, the JSON form.
mod store;
