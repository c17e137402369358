//! Passwords: Argon2id hashes in PHC strings, checked through a gate.
//!
//! The parameters are OWASP's first choice (m = 19 MiB, t = 2, p = 1): about 37 ms of one
//! core here (`cargo xtask bench portal`), which is what a sign-in costs. Each hash holds
//! 19 MiB while it runs, so [`Gate`] lets only as many run at once as there are cores and
//! makes the rest wait their turn (a flood of sign-ins slows sign-in down; it cannot take
//! the machine's memory). A stored hash with weaker parameters verifies with its own and
//! is reported for a rehash ([`Checked::rehash`]), so raising the parameters needs no
//! migration. A name nobody has is checked against a dummy hash, so the answer takes as
//! long either way.

use std::sync::{Condvar, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::Error;

/// Memory, KiB.
pub const M_COST: u32 = 19 * 1024;
/// Passes.
pub const T_COST: u32 = 2;
/// Lanes.
pub const P_COST: u32 = 1;
/// Fewest characters a password may have (NIST SP 800-63B asks 15 of a sole factor, 8
/// beside a second; 12 here, with TOTP available and a rate limit in front).
pub const MIN_CHARS: usize = 12;
/// Most bytes hashed: more is refused rather than cut (Argon2 takes any length, but an
/// unbounded input is work an attacker chooses).
pub const MAX_BYTES: usize = 1024;
/// Sign-ins waiting for the gate, per core, beyond which [`Gate::verify`] says busy.
const QUEUE_PER_CORE: usize = 64;

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn target() -> Params {
    Params::new(M_COST, T_COST, P_COST, None).expect("OWASP's parameters are in range")
}

/// Checks a new password against the rules, naming what is wrong.
pub fn check_new(password: &str, user: &str) -> Result<(), Error> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(Error::WeakPassword(format!(
            "the password is too short ({chars} characters); use at least {MIN_CHARS}"
        )));
    }
    if password.len() > MAX_BYTES {
        return Err(Error::WeakPassword(format!(
            "the password is too long; use at most {MAX_BYTES} bytes"
        )));
    }
    if password.eq_ignore_ascii_case(user) {
        return Err(Error::WeakPassword(
            "the password is the user name; choose another".into(),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::WeakPassword(
            "the password holds a control character (a pasted newline?)".into(),
        ));
    }
    Ok(())
}

/// Hashes `password` at the default parameters with a fresh 16-byte salt: a PHC string.
pub fn hash(password: &[u8]) -> Result<String, Error> {
    hash_with(password, target())
}

/// Hashes with the given parameters (tests of the rehash rule store weaker ones).
pub fn hash_with(password: &[u8], params: Params) -> Result<String, Error> {
    let salt = SaltString::encode_b64(&crate::random::<16>()?)
        .map_err(|e| Error::Hashing(e.to_string()))?;
    argon2(params)
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hashing(e.to_string()))
}

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The password matches.
    pub ok: bool,
    /// It matched a hash weaker than the defaults: store [`hash`] of it now.
    pub rehash: bool,
}

/// Verifies `password` against the PHC string `stored` (at the parameters it names).
fn verify(stored: &str, password: &[u8]) -> Result<Checked, Error> {
    let parsed = PasswordHash::new(stored).map_err(|e| Error::BadHash(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(Error::BadHash(format!(
            "algorithm {} (only argon2id is accepted)",
            parsed.algorithm
        )));
    }
    let params = Params::try_from(&parsed).map_err(|e| Error::BadHash(e.to_string()))?;
    let ok = argon2(params.clone())
        .verify_password(password, &parsed)
        .is_ok();
    let t = target();
    let weaker = params.m_cost() < t.m_cost() || params.t_cost() < t.t_cost();
    Ok(Checked {
        ok,
        rehash: ok && weaker,
    })
}

/// A dummy hash at the default parameters, made once: what a name nobody has is checked
/// against.
fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"keygate-dummy-salt").expect("a fixed salt encodes");
        argon2(target())
            .hash_password(b"no one has this password", &salt)
            .expect("hashing at fixed parameters works")
            .to_string()
    })
}

/// Too many sign-ins are waiting for the gate: answer 503 and let the person retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins at once")]
pub struct Busy;

/// Lets about as many hashes run at once as there are cores.
#[derive(Debug)]
pub struct Gate {
    limit: usize,
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

impl Default for Gate {
    fn default() -> Gate {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Gate::new(cores)
    }
}

impl Gate {
    /// A gate letting `limit` hashes run at once.
    pub fn new(limit: usize) -> Gate {
        Gate {
            limit: limit.max(1),
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` once a place is free (blocking: call from a blocking thread).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Busy> {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            // st.0: running, st.1: waiting.
            if st.0 >= self.limit && st.1 >= QUEUE_PER_CORE * self.limit {
                return Err(Busy);
            }
            st.1 += 1;
            while st.0 >= self.limit {
                st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.1 -= 1;
            st.0 += 1;
        }
        struct Release<'a>(&'a Gate);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                st.0 -= 1;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        Ok(f())
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// such person (`None`: then never `ok`). One Argon2 verification either way.
    pub fn verify(&self, stored: Option<&str>, password: &[u8]) -> Result<Checked, VerifyError> {
        let password = Zeroizing::new(password.to_vec());
        let checked = self.run(|| match stored {
            Some(h) => verify(h, &password),
            None => verify(dummy(), &password).map(|_| Checked {
                ok: false,
                rehash: false,
            }),
        })?;
        checked.map_err(VerifyError::Hash)
    }

    /// [`hash`] through the gate.
    pub fn hash(&self, password: &[u8]) -> Result<String, VerifyError> {
        self.run(|| hash(password))?.map_err(VerifyError::Hash)
    }
}

/// Why a verification gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The gate is full.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The stored hash is unusable.
    #[error(transparent)]
    Hash(Error),
}

/// A temporary password: 100 random bits as 20 characters in dashed groups of five, easy to
/// read aloud and type once.
pub fn temporary() -> Result<Zeroizing<String>, Error> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let bytes = Zeroizing::new(crate::random::<20>()?);
    let mut out = Zeroizing::new(String::with_capacity(24));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_only_and_names_owasp_parameters() {
        let gate = Gate::new(2);
        let h = gate.hash(b"correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(
            gate.verify(Some(&h), b"correct horse battery").unwrap(),
            Checked {
                ok: true,
                rehash: false
            }
        );
        assert!(!gate.verify(Some(&h), b"correct horse batterY").unwrap().ok);
        assert!(!gate.verify(None, b"correct horse battery").unwrap().ok);
    }

    #[test]
    fn weaker_stored_parameters_ask_for_a_rehash_only_when_the_password_matched() {
        let h = hash_with(b"pw-pw-pw-pw-pw", weak()).unwrap();
        let gate = Gate::new(1);
        assert_eq!(
            gate.verify(Some(&h), b"pw-pw-pw-pw-pw").unwrap(),
            Checked {
                ok: true,
                rehash: true
            }
        );
        assert_eq!(
            gate.verify(Some(&h), b"nope").unwrap(),
            Checked {
                ok: false,
                rehash: false
            }
        );
    }

    #[test]
    fn other_algorithms_and_garbage_are_refused_not_accepted() {
        let gate = Gate::new(1);
        let argon2i =
            "$argon2i$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";
        assert!(matches!(
            gate.verify(Some(argon2i), b"x"),
            Err(VerifyError::Hash(_))
        ));
        assert!(matches!(
            gate.verify(Some("plain"), b"plain"),
            Err(VerifyError::Hash(_))
        ));
    }

    #[test]
    fn rules_for_new_passwords() {
        assert!(check_new("short", "alice").is_err());
        assert!(check_new("alicealicealice", "alicealicealice").is_err());
        assert!(check_new("a pasted line\n..", "alice").is_err());
        assert!(check_new(&"x".repeat(1025), "alice").is_err());
        check_new("twelve chars", "alice").unwrap();
        let t = temporary().unwrap();
        assert_eq!(t.len(), 23);
        check_new(&t, "alice").unwrap();
    }

    #[test]
    fn the_gate_runs_at_most_its_limit_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let gate = Arc::new(Gate::new(2));
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, now, most) = (gate.clone(), now.clone(), most.clone());
                std::thread::spawn(move || {
                    gate.run(|| {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
