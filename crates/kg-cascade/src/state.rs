//! The record of each managed certificate: `meta.json`, published inside the same generation
//! as the certificate it describes. Record and files therefore change in one atomic step; a
//! separate state file could say "generation 3" while `current` already points at 4.

use std::path::Path;

use kg_fs::generation::{self, Generation};

pub use kg_tls::record::{Record, digest};

use crate::{Error, files};

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
