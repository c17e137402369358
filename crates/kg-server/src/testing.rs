//! Helpers for the crate's unit tests.

use std::path::Path;
use std::sync::Arc;

use crate::audit::Audit;
use crate::metrics::Metrics;
use crate::settings::{AuditAllows, AuditTarget, Settings};
use crate::tokens::Tokens;

/// The settings under `dir`, with `flags` given as `--set KEY=VALUE` would give them.
pub(crate) fn settings(dir: &Path, flags: &[(&str, &str)]) -> Settings {
    let flags: Vec<(&str, &str, String)> = flags
        .iter()
        .map(|(k, v)| (*k, "--test", (*v).to_owned()))
        .collect();
    let config = kg_config::Config::resolve(None, |_| None, &flags).unwrap();
    Settings::from_config(&kg_config::Locations::under(dir), &config, false).unwrap()
}

/// The token store `settings` names, loaded; fresh metrics; an audit log of every decision
/// in `dir/audit.log`.
pub(crate) fn loaded(settings: &Settings, dir: &Path) -> (Tokens, Arc<Metrics>, Audit) {
    let tokens = Tokens::load(&settings.store, &settings.prefix).unwrap();
    let metrics = Arc::new(Metrics::default());
    let audit = Audit::open(
        &AuditTarget::File(dir.join("audit.log")),
        AuditAllows::All,
        Arc::clone(&metrics),
    )
    .unwrap();
    (tokens, metrics, audit)
}
