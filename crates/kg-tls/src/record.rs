//! The record of each managed certificate: `meta.json`, published inside the same generation
//! as the certificate it describes. Record and files therefore change in one atomic step; a
//! separate state file could say "generation 3" while `current` already points at 4.

use std::collections::BTreeMap;

use kg_fs::generation::Generation;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
    /// SHA-256 of every other file of the generation, taken after verification.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// Lower-case hex SHA-256.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Record {
    /// Checks that every file of `g` still has the bytes that were verified and published:
    /// then the pair still matches and nothing is damaged, without re-verifying.
    pub fn files_intact(&self, g: &Generation) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("the record lists no files".into());
        }
        for (name, want) in &self.files {
            let path = g.file(name);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
            if digest(&bytes) != *want {
                return Err(format!(
                    "'{}' changed since it was published",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    /// The record as it is published.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a record serializes");
        text.push('\n');
        text
    }
}
