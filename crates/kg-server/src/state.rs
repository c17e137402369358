//! What keygate keeps across restarts: the store (browser sessions, OAuth clients and
//! revocations) and, in proxy mode, the key that signs session cookies and forms. Both are
//! opened at start, before any connection is served, so a store that cannot be used stops
//! the start with its path and a hint.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kg_fs::{DirMode, FileMode};
use kg_login::key::{KEY_LEN, ProcessKey};
use kg_store::SqliteStore;
use kg_verifier::live_store::warn_exposed;

use crate::ServeError;
use crate::settings::Settings;

/// Opens (creating when absent) the store.
pub(crate) fn open_store(settings: &Settings) -> Result<Arc<SqliteStore>, ServeError> {
    if let Some(dir) = settings.db.parent() {
        kg_fs::create_dir_all(dir, DirMode::Private).map_err(ServeError::File)?;
    }
    let store = SqliteStore::open(&settings.db).map_err(ServeError::Store)?;
    if let Some(exposed) = store.exposed() {
        warn_exposed(std::slice::from_ref(exposed));
    }
    Ok(Arc::new(store))
}

/// Sign-in's key (proxy mode).
pub(crate) fn sign_in_key(settings: &Settings) -> Result<ProcessKey, ServeError> {
    login_key(&settings.login_key, &settings.login_lock)
}

/// Sign-in's key from its file, made (32 random bytes, 0600) the first time. Under a
/// lock, so that two servers starting at once agree on one key.
fn login_key(path: &Path, lock: &Path) -> Result<ProcessKey, ServeError> {
    if let Some(dir) = path.parent() {
        kg_fs::create_dir_all(dir, DirMode::Private).map_err(ServeError::File)?;
    }
    if let Some(dir) = lock.parent() {
        kg_fs::create_dir_all(dir, DirMode::Private).map_err(ServeError::File)?;
    }
    let _held = kg_fs::lock::acquire(lock, kg_fs::lock::Wait::Up(Duration::from_secs(10)))
        .map_err(ServeError::File)?;
    match kg_fs::read_secret(path) {
        Ok(secret) => {
            if let Some(exposed) = secret.exposed {
                warn_exposed(&[exposed]);
            }
            let bytes = zeroize::Zeroizing::new(secret.bytes);
            let key: &[u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                ServeError::Setup(format!(
                    "'{}' is not a sign-in key ({KEY_LEN} bytes); remove it to make a new one \
                     (every browser is then signed out)",
                    path.display()
                ))
            })?;
            Ok(ProcessKey::from_bytes(key))
        }
        Err(kg_fs::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = zeroize::Zeroizing::new([0u8; KEY_LEN]);
            getrandom::fill(&mut bytes[..]).map_err(|e| {
                ServeError::Setup(format!("no randomness for the sign-in key: {e}"))
            })?;
            kg_fs::write_atomic(path, &bytes[..], FileMode::Secret).map_err(ServeError::File)?;
            Ok(ProcessKey::from_bytes(&bytes))
        }
        Err(e) => Err(ServeError::File(e)),
    }
}

/// The mailer of reset links, its SMTP password read (through one descriptor) from its file.
pub(crate) fn mailer(
    smtp: &kg_mail::Settings,
    password_file: Option<&Path>,
) -> Result<kg_mail::Mailer, ServeError> {
    let mut smtp = smtp.clone();
    if let (Some((_, password)), Some(file)) = (smtp.credentials.as_mut(), password_file) {
        let secret = kg_fs::read_secret(file).map_err(ServeError::File)?;
        if let Some(exposed) = secret.exposed {
            warn_exposed(&[exposed]);
        }
        let bytes = zeroize::Zeroizing::new(secret.bytes);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            ServeError::Setup(format!(
                "'{}' does not hold a text password",
                file.display()
            ))
        })?;
        *password = zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
    }
    kg_mail::Mailer::new(smtp).map_err(|e| ServeError::Setup(e.to_string()))
}
