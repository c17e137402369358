//! The record of each managed certificate: `meta.json`, published inside the same generation
//! as the certificate it describes. Record and files therefore change in one atomic step; a
//! separate state file could say "generation 3" while `current` already points at 4.

use std::path::Path;

use kg_fs::generation::{self, Generation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Error, files};

/// One managed certificate, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The names as planned (normalized), in order.
    pub names: Vec<String>,
    /// The method that produced this generation.
    pub method: String,
    pub key: String,
    pub days: u32,
    pub serial: String,
    pub sha256_fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
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

/// The live generation of `cert_dir` and its record; `Ok(None)` when nothing was published.
pub fn load(cert_dir: &Path) -> Result<Option<(Generation, Record)>, Error> {
    let Some(g) = generation::current(cert_dir)? else {
        return Ok(None);
    };
    let path = g.file(files::META);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::State {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let record = serde_json::from_str(&text).map_err(|e| Error::State {
        path,
        message: e.to_string(),
    })?;
    Ok(Some((g, record)))
}

impl Record {
    /// The record as it is published.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a record serializes");
        text.push('\n');
        text
    }
}
