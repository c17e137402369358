//! The server side: the certificates certctl publishes, served with live reload and chosen
//! by SNI. TLS 1.3 and 1.2, ALPN `h2` and `http/1.1`.
//!
//! The resolver keeps the loaded certificates in an `ArcSwap`. On every handshake it does
//! one `stat` of `current` (which follows the link to the generation directory): a new
//! generation is a new directory, so a different (device, inode, ctime) means certctl
//! published, and the new set is loaded before this handshake picks its certificate. A
//! generation that fails to load (corrupt PEM, key that does not match) is logged once and
//! skipped; the last good set stays in use until the next publication.
//!
//! SNI: when the generation also holds a tailnet certificate, a client asking for the
//! tailnet name (`meta.json` `tailnet_domain`) gets it; everyone else, including clients that
//! connect by IP and send no SNI, gets the local certificate.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::layout as files;
use crate::record::Record;

/// Why a certificate generation could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Nothing was published for this id.
    #[error("no certificate is published in '{}'", dir.display())]
    NotPublished {
        /// The certificate's directory.
        dir: PathBuf,
    },
    /// The generation layout is damaged or a file cannot be read.
    #[error(transparent)]
    Fs(#[from] kg_fs::Error),
    /// A file cannot be read.
    #[error("cannot read '{}': {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A PEM file does not hold what it should.
    #[error("'{}': {problem}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong (never key material).
        problem: String,
    },
    /// The key is not the certificate's key, or rustls cannot use it.
    #[error("'{}' cannot be served with '{}': {problem}", key.display(), cert.display())]
    Key {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        problem: String,
    },
    /// `meta.json` is unreadable.
    #[error("'{}': {problem}", path.display())]
    Meta {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl CertError {
    /// A one-line recommendation.
    pub fn hint(&self) -> Option<String> {
        match self {
            CertError::NotPublished { .. } => {
                Some("run `certctl ensure` (with --id for another certificate)".to_owned())
            }
            CertError::Fs(e) => e.hint(),
            _ => Some("run `certctl issue` to publish a new generation".to_owned()),
        }
    }
}

/// One generation's certificates, ready to serve.
#[derive(Debug)]
pub struct CertSet {
    /// Which directory this was read from: (device, inode, ctime).
    identity: (u64, u64, i64, i64),
    /// The generation number.
    pub generation: u64,
    /// The local certificate.
    pub local: Arc<CertifiedKey>,
    /// The tailnet certificate and its name.
    pub tailnet: Option<(String, Arc<CertifiedKey>)>,
    /// What certctl recorded.
    pub record: Record,
    /// Keys of this set whose mode lets the group or others at them: served all the same
    /// (reading never changes a secret), for the host to warn about.
    pub exposed: Vec<kg_fs::Exposed>,
}

/// Reads the current generation of `dir`.
pub fn load(dir: &Path, provider: &CryptoProvider) -> Result<CertSet, CertError> {
    let g = kg_fs::generation::current(dir)?.ok_or_else(|| CertError::NotPublished {
        dir: dir.to_owned(),
    })?;
    let meta = std::fs::metadata(&g.path).map_err(|source| CertError::Read {
        path: g.path.clone(),
        source,
    })?;
    let identity = (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec());
    let meta_path = g.file(files::META);
    let record: Record = std::fs::read_to_string(&meta_path)
        .map_err(|source| CertError::Read {
            path: meta_path.clone(),
            source,
        })
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|e| CertError::Meta {
                path: meta_path.clone(),
                problem: e.to_string(),
            })
        })?;
    let mut exposed = Vec::new();
    let local = certified_key(
        &g.file(files::FULLCHAIN),
        &g.file(files::KEY),
        provider,
        &mut exposed,
    )?;
    let tailnet = match &record.tailnet_domain {
        Some(domain) if g.file(files::TAILNET_FULLCHAIN).exists() => Some((
            domain.to_ascii_lowercase(),
            certified_key(
                &g.file(files::TAILNET_FULLCHAIN),
                &g.file(files::TAILNET_KEY),
                provider,
                &mut exposed,
            )?,
        )),
        _ => None,
    };
    Ok(CertSet {
        identity,
        generation: g.number,
        local,
        tailnet,
        record,
        exposed,
    })
}

fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
    exposed: &mut Vec<kg_fs::Exposed>,
) -> Result<Arc<CertifiedKey>, CertError> {
    let pem = std::fs::read(cert).map_err(|source| CertError::Read {
        path: cert.to_owned(),
        source,
    })?;
    let chain: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Pem {
            path: cert.to_owned(),
            problem: format!("not a PEM certificate chain ({e})"),
        })?;
    if chain.is_empty() {
        return Err(CertError::Pem {
            path: cert.to_owned(),
            problem: "no certificate in it".to_owned(),
        });
    }
    let secret = kg_fs::read_secret(key)?;
    exposed.extend(secret.exposed);
    let key_pem = zeroize::Zeroizing::new(secret.bytes);
    // The PEM parser's errors describe structure, never content.
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| CertError::Pem {
        path: key.to_owned(),
        problem: "no PEM private key in it".to_owned(),
    })?;
    let ck = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| CertError::Key {
        cert: cert.to_owned(),
        key: key.to_owned(),
        problem: e.to_string(),
    })?;
    Ok(Arc::new(ck))
}

/// The rustls resolver: the current set, swapped atomically when a new one is published.
pub struct Resolver {
    dir: PathBuf,
    link: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertSet>,
    /// Held while reloading; remembers the identity of a generation that failed to load.
    reloading: Mutex<Option<(u64, u64, i64, i64)>>,
    observer: Arc<dyn Observer>,
}

/// What the host is told about the resolver's work: it logs and counts, this crate knows
/// neither logs nor metrics.
pub trait Observer: Send + Sync {
    /// `set` is now served (the first one, or a newly published generation).
    fn serving(&self, set: &CertSet, reloaded: bool);
    /// A newly published generation could not be loaded; `kept` is still served.
    fn reload_failed(&self, error: &CertError, kept: u64);
}

impl Resolver {
    /// A resolver serving `first` (already loaded from `dir`).
    pub fn new(
        dir: &Path,
        first: CertSet,
        provider: Arc<CryptoProvider>,
        observer: Arc<dyn Observer>,
    ) -> Resolver {
        observer.serving(&first, false);
        Resolver {
            dir: dir.to_owned(),
            link: dir.join(kg_fs::generation::CURRENT),
            provider,
            current: ArcSwap::from_pointee(first),
            reloading: Mutex::new(None),
            observer,
        }
    }

    /// Loads a newly published generation, if there is one.
    pub fn refresh(&self) {
        let Ok(meta) = std::fs::metadata(&self.link) else {
            return;
        };
        let seen = (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec());
        if seen == self.current.load().identity {
            return;
        }
        // One handshake reloads; the others go on with the current set meanwhile.
        let Ok(mut failed) = self.reloading.try_lock() else {
            return;
        };
        if *failed == Some(seen) || seen == self.current.load().identity {
            return;
        }
        match load(&self.dir, &self.provider) {
            Ok(set) => {
                self.observer.serving(&set, true);
                self.current.store(Arc::new(set));
                *failed = None;
            }
            Err(e) => {
                self.observer
                    .reload_failed(&e, self.current.load().generation);
                *failed = Some(seen);
            }
        }
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        let set = self.current.load();
        if let (Some(sni), Some((domain, key))) = (hello.server_name(), &set.tailnet)
            && sni.eq_ignore_ascii_case(domain)
        {
            return Some(Arc::clone(key));
        }
        Some(Arc::clone(&set.local))
    }
}

/// The server's TLS configuration around `resolver`.
pub fn server_config(
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
