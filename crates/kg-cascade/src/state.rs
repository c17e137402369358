//! The record of every managed certificate: `state/certs.json`, written atomically under
//! the certificate lock. It says what was asked for and how it was obtained; the files
//! themselves are the generation directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Error;

/// One managed certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The names as planned (normalized), in order.
    pub names: Vec<String>,
    /// The method that produced the live generation.
    pub method: String,
    pub key: String,
    pub days: u32,
    pub serial: String,
    pub sha256_fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub generation: u64,
    /// The tailnet name, when the generation also holds a tailscale certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tailnet_domain: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub tailnet_not_after: Option<OffsetDateTime>,
}

/// All records, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub certs: BTreeMap<String, Record>,
}

/// The state file's path.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("certs.json")
}

/// Reads the state; a missing file is an empty state.
pub fn load(state_dir: &Path) -> Result<State, Error> {
    let path = path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(State {
                version: 1,
                ..State::default()
            });
        }
        Err(e) => {
            return Err(Error::State {
                path,
                message: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text).map_err(|e| Error::State {
        path,
        message: e.to_string(),
    })
}

/// Writes the state atomically (0600: it is private bookkeeping). The caller holds the lock.
pub fn save(state_dir: &Path, state: &State) -> Result<(), Error> {
    kg_fs::create_dir_all(state_dir, kg_fs::DirMode::Private)?;
    let mut text = serde_json::to_string_pretty(state).expect("state serializes");
    text.push('\n');
    kg_fs::write_atomic(&path(state_dir), text.as_bytes(), kg_fs::FileMode::Secret)?;
    Ok(())
}
