//! keygate's own CA: created once, kept as a generation in `private/ca/`.

use std::path::{Path, PathBuf};

use kg_fs::FileMode;
use kg_fs::generation::{self, Item};
use kg_pki::{CaMaterial, SecretPem};
use time::OffsetDateTime;

use crate::Error;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";

/// The local CA and where its certificate lives.
#[derive(Debug)]
pub struct LocalCa {
    pub material: CaMaterial,
    pub cert_file: PathBuf,
}

/// Loads the local CA from `dir`, if one was created.
pub fn load_local_ca(dir: &Path) -> Result<Option<LocalCa>, Error> {
    let Some(g) = generation::current(dir)? else {
        return Ok(None);
    };
    let cert_file = g.file(CA_CERT);
    let cert_pem = fs_read(&cert_file)?;
    let key = read_key(&g.file(CA_KEY))?;
    Ok(Some(LocalCa {
        material: CaMaterial { cert_pem, key },
        cert_file,
    }))
}

/// Loads the local CA, creating it first when there is none. The caller holds the lock.
pub(crate) fn load_or_create(
    dir: &Path,
    host: &str,
    extra: &[String],
    hosts: &[String],
    now: OffsetDateTime,
) -> Result<LocalCa, Error> {
    if let Some(ca) = load_local_ca(dir)? {
        return Ok(ca);
    }
    let constraints = kg_pki::default_constraints(hosts, extra);
    let material = kg_pki::new_local_ca(host, &constraints, now)?;
    let g = generation::publish(
        dir,
        &[
            Item {
                name: CA_CERT,
                contents: material.cert_pem.as_bytes(),
                mode: FileMode::Public,
            },
            Item {
                name: CA_KEY,
                contents: material.key.expose().as_bytes(),
                mode: FileMode::Secret,
            },
        ],
        2,
    )?;
    Ok(LocalCa {
        material,
        cert_file: g.file(CA_CERT),
    })
}

/// Reads a private key without leaving copies of it in memory we do not wipe.
///
/// A mode wider than 0600 is not acted on here: `certctl doctor` reports it and
/// `doctor --fix` narrows it (reading a secret never changes it).
pub(crate) fn read_key(path: &Path) -> Result<SecretPem, Error> {
    let bytes = zeroize::Zeroizing::new(kg_fs::read_secret(path)?.bytes);
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::State {
        path: path.to_owned(),
        message: "the key is not PEM text".into(),
    })?;
    Ok(SecretPem::new(text.to_owned()))
}

pub(crate) fn fs_read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::Fs(kg_fs::Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot read '{}': {e}", path.display()),
        )))
    })
}
