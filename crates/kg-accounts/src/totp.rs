//! TOTP (RFC 6238): the codes of an authenticator app, SHA-1, six digits, 30-second steps,
//! which is what every app reads from an `otpauth://` URI.
//!
//! A code is accepted for the current step or one either side (clock drift, and a code typed
//! as it turned over), and only for a step later than the last one accepted for that
//! credential (RFC 6238 section 5.2: "the verifier MUST NOT accept the second attempt of the
//! OTP after the successful validation has been issued"). [`check`] says which step matched;
//! the caller stores it with a compare-and-set (`UserStore::advance_totp`), so two requests
//! racing with one code cannot both win.

use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::Error;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;

/// A new random secret.
pub fn new_secret() -> Result<Zeroizing<Vec<u8>>, Error> {
    Ok(Zeroizing::new(crate::random::<SECRET_LEN>()?.to_vec()))
}

fn totp(secret: &[u8], account: &str, issuer: &str) -> TOTP {
    // `new_unchecked`: the secret length is ours; `:` is not allowed in a label, so it goes.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP,
        secret.to_vec(),
        Some(issuer.replace(':', " ")),
        account.replace(':', " "),
    )
}

/// The `otpauth://totp/...` URI an authenticator app reads (the QR code's contents).
pub fn uri(secret: &[u8], account: &str, issuer: &str) -> Zeroizing<String> {
    Zeroizing::new(totp(secret, account, issuer).get_url())
}

/// The secret in base32, for typing into an app by hand.
pub fn base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(totp(secret, "", "keygate").get_secret_base32())
}

/// The code for the step holding `unix_secs` (tests, and the oracle of the browser test).
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    totp(secret, "", "keygate").generate(unix_secs)
}

/// The step `code` is good for at `unix_secs`, if it is good for one later than
/// `last_step`: the current one, or one either side.
pub fn check(secret: &[u8], code: &str, unix_secs: u64, last_step: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "", "keygate");
    let now = unix_secs / STEP;
    let mut found = None;
    // Every candidate is computed and compared in constant time, so the answer's timing
    // does not say which step matched.
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = t.generate(step * STEP);
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if same && last_step.is_none_or(|last| step > last) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits there; the last six are ours).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code8) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(code_at(secret, t), code8[2..], "t={t}");
        }
    }

    #[test]
    fn a_code_is_good_once_and_one_step_either_side() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let code = code_at(secret, t);
        let step = check(secret, &code, t, None).unwrap();
        assert_eq!(step, t / STEP);
        assert_eq!(check(secret, &code, t, Some(step)), None, "replayed");
        assert_eq!(check(secret, &code, t + STEP, None), Some(step));
        assert_eq!(check(secret, &code, t + 2 * STEP, None), None, "too late");
        assert_eq!(check(secret, "12345", t, None), None);
        assert_eq!(check(secret, "abcdef", t, None), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let u = uri(b"12345678901234567890", "alice", "keygate:home");
        assert!(
            u.starts_with(
                "otpauth://totp/keygate%20home:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            ),
            "{}",
            u.as_str()
        );
    }
}
