//! The signing key set on disk: published as kg-fs generations, rotated when due.
//!
//! ```text
//! PRIVATE_DIR/signing/g000007/keys.json   0600  the key set, private keys as PKCS#8 PEM
//! PRIVATE_DIR/signing/g000007/jwks.json   0644  the public key set, as served
//! PRIVATE_DIR/signing/current -> g000007
//! STATE_DIR/signing.lock                        held while a change is made
//! ```
//!
//! A change (the first key set, a rotation, a new algorithm) is made under the lock from the
//! set that is current then, and published as one generation, so the server and `tokenctl
//! keys rotate` never undo each other's work. Readers resolve `current` once and read both
//! files from that generation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kg_fs::generation::{self, Item};
use kg_fs::lock::{self, Wait};
use kg_fs::{DirMode, FileMode};
use kg_jose::{Alg, KeySet, KeySetError, PublicKeys};
use time::{Duration, OffsetDateTime};

/// The key set's file in a generation.
pub const KEYS_FILE: &str = "keys.json";
/// The public key set's file in a generation.
pub const JWKS_FILE: &str = "jwks.json";
/// Generations kept on disk (the current one and the two before it).
const KEEP: usize = 3;
/// Longest key set file read: a set of a dozen keys is a few kilobytes.
const MAX_KEYS_FILE: u64 = 1024 * 1024;

/// Where the key set lives, and the schedule it keeps.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// `PRIVATE_DIR/signing`.
    pub dir: PathBuf,
    /// `STATE_DIR/signing.lock`.
    pub lock: PathBuf,
    /// The algorithms the set must have keys for.
    pub algs: Vec<Alg>,
    /// How long a key signs before the next one takes over.
    pub every: Duration,
    /// How long a key that stopped signing stays published: at least the longest lifetime
    /// of anything it signed, plus the verifiers' clock skew.
    pub keep: Duration,
}

/// One published key set, as loaded.
pub struct Loaded {
    /// Its generation number.
    pub generation: u64,
    /// The keys.
    pub set: KeySet,
    /// What verifiers accept.
    pub public: Arc<PublicKeys>,
    /// The JWKS document, as served.
    pub jwks: String,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("generation", &self.generation)
            .field("set", &self.set)
            .finish_non_exhaustive()
    }
}

/// Why the key set could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The files.
    #[error(transparent)]
    Fs(#[from] kg_fs::Error),
    /// The key set in `path` does not parse.
    #[error("the signing keys in '{}' are damaged: {source}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: KeySetError,
    },
    /// Generating a key failed.
    #[error(transparent)]
    Generate(KeySetError),
}

impl KeyError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            KeyError::Fs(e) => e.hint(),
            KeyError::Damaged { .. } => Some(
                "restore the directory from a backup; or move it aside to start a new key \
                 set (every token signed so far stops verifying)"
                    .into(),
            ),
            KeyError::Generate(_) => None,
        }
    }
}

impl KeyRing {
    /// The published key set, if there is one.
    pub fn load(&self) -> Result<Option<Loaded>, KeyError> {
        let Some(current) = generation::current(&self.dir)? else {
            return Ok(None);
        };
        let path = current.file(KEYS_FILE);
        let secret = kg_fs::read_secret(&path)?;
        if secret.bytes.len() as u64 > MAX_KEYS_FILE {
            return Err(KeyError::Damaged {
                path,
                source: KeySetError::Format("the file is too large".into()),
            });
        }
        let text = String::from_utf8(secret.bytes).map_err(|_| KeyError::Damaged {
            path: path.clone(),
            source: KeySetError::Format("not UTF-8".into()),
        })?;
        let set = KeySet::from_json(&text).map_err(|source| KeyError::Damaged {
            path: path.clone(),
            source,
        })?;
        Ok(Some(loaded(current.number, set)))
    }

    /// The generation `current` names now, without reading it (a cheap change check).
    pub fn current_generation(&self) -> Option<u64> {
        generation::current(&self.dir)
            .ok()
            .flatten()
            .map(|g| g.number)
    }

    /// Makes sure the set exists, has keys for every algorithm, and has rotated what is due
    /// at `now`; publishes a new generation only if something changed.
    pub fn ensure(&self, now: OffsetDateTime) -> Result<Loaded, KeyError> {
        if let Some(l) = self.load()?
            && !self.needs_change(&l.set, now)
        {
            return Ok(l);
        }
        self.change(now, |_, _| Ok(()))
    }

    /// Rotates `algs` (every algorithm of the ring when empty) now, whatever the schedule.
    pub fn rotate(&self, algs: &[Alg], now: OffsetDateTime) -> Result<Loaded, KeyError> {
        let algs = if algs.is_empty() {
            self.algs.clone()
        } else {
            algs.to_vec()
        };
        let keep = self.keep;
        self.change(now, move |set, now| {
            for alg in &algs {
                set.rotate(*alg, now, keep).map_err(KeyError::Generate)?;
            }
            Ok(())
        })
    }

    fn needs_change(&self, set: &KeySet, now: OffsetDateTime) -> bool {
        !set.due(now, self.every).is_empty()
            || self.algs.iter().any(|a| set.signer(*a).is_none())
            || set.keys().any(
                |k| matches!(k.info().state, kg_jose::KeyState::Previous { until } if until <= now),
            )
    }

    /// Under the lock: the current set (or a new one), `f`, the schedule, then publication.
    fn change(
        &self,
        now: OffsetDateTime,
        f: impl FnOnce(&mut KeySet, OffsetDateTime) -> Result<(), KeyError>,
    ) -> Result<Loaded, KeyError> {
        if let Some(parent) = self.lock.parent() {
            kg_fs::create_dir_all(parent, DirMode::Private)?;
        }
        let _guard = lock::acquire(&self.lock, Wait::Up(std::time::Duration::from_secs(10)))?;
        let mut set = match self.load()? {
            Some(l) => l.set,
            None => KeySet::generate(&self.algs, now).map_err(KeyError::Generate)?,
        };
        set.ensure(&self.algs, now).map_err(KeyError::Generate)?;
        f(&mut set, now)?;
        for alg in set.due(now, self.every) {
            set.rotate(alg, now, self.keep)
                .map_err(KeyError::Generate)?;
        }
        set.prune(now);
        let keys = set.to_json();
        let jwks = set.jwks_json();
        let published = generation::publish(
            &self.dir,
            &[
                Item {
                    name: KEYS_FILE,
                    contents: keys.as_bytes(),
                    mode: FileMode::Secret,
                },
                Item {
                    name: JWKS_FILE,
                    contents: jwks.as_bytes(),
                    mode: FileMode::Public,
                },
            ],
            KEEP,
        )?;
        Ok(loaded(published.number, set))
    }
}

fn loaded(generation: u64, set: KeySet) -> Loaded {
    Loaded {
        generation,
        public: Arc::new(set.public()),
        jwks: set.jwks_json(),
        set,
    }
}

impl KeyRing {
    /// The standard ring: `PRIVATE_DIR/signing` and the lock `lock`, keys of `alg` rotated
    /// `every`, a retired key published as long as anything it signed lives (the longest of
    /// `lifetimes`,
    /// at least people's hour) plus five minutes of verifiers' clock skew. The server and
    /// `tokenctl keys` both build it here, so they keep one schedule.
    pub fn standard(
        private_dir: &Path,
        lock: PathBuf,
        alg: Alg,
        every: Duration,
        lifetimes: &[Duration],
    ) -> KeyRing {
        let longest = lifetimes.iter().copied().max().unwrap_or(Duration::HOUR);
        KeyRing {
            dir: private_dir.join(SIGNING_DIR),
            lock,
            // RS256 signs ID tokens: OpenID Connect's default, which every relying party
            // can verify.
            algs: if alg == Alg::Rs256 {
                vec![alg]
            } else {
                vec![alg, Alg::Rs256]
            },
            every,
            keep: longest.max(Duration::HOUR) + Duration::minutes(5),
        }
    }
}

/// The key set's directory under the private directory.
pub const SIGNING_DIR: &str = "signing";

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn ring(dir: &Path) -> KeyRing {
        KeyRing {
            dir: dir.join("private/signing"),
            lock: dir.join("state/signing.lock"),
            algs: vec![Alg::EdDsa],
            every: Duration::days(30),
            keep: Duration::hours(2),
        }
    }

    #[test]
    fn the_set_is_published_once_private_0600_and_rotated_only_when_due() {
        let tmp = tempfile::tempdir().unwrap();
        let ring = ring(tmp.path());
        let first = ring.ensure(NOW).unwrap();
        let g = generation::current(&ring.dir).unwrap().unwrap();
        let mode = |f: &str| std::fs::metadata(g.file(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(KEYS_FILE), 0o600);
        assert_eq!(mode(JWKS_FILE), 0o644);
        let again = ring.ensure(NOW + Duration::days(29)).unwrap();
        assert_eq!(
            again.generation, first.generation,
            "nothing due, nothing written"
        );
        let rotated = ring.ensure(NOW + Duration::days(30)).unwrap();
        assert_eq!(rotated.generation, first.generation + 1);
        let old = first.set.signer(Alg::EdDsa).unwrap().kid();
        assert_ne!(rotated.set.signer(Alg::EdDsa).unwrap().kid(), old);
        assert!(rotated.jwks.contains(old), "the old key is still published");
        let later = ring
            .ensure(NOW + Duration::days(30) + Duration::hours(2))
            .unwrap();
        assert!(!later.jwks.contains(old), "and dropped after `keep`");
    }
}
