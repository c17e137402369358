//! Bearer text that looks like a JWT, and key sets a resource server fetched: kg-jose's
//! verification and JWKS reading never panic, and nothing but a token the key set signed
//! verifies (a forged one would have to break Ed25519).
#![no_main]

use std::sync::OnceLock;

use kg_jose::{AccessClaims, Alg, KeySet, PublicKeys, Rules, TYP_ACCESS};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fn keys() -> &'static PublicKeys {
    static KEYS: OnceLock<PublicKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::generate(&[Alg::EdDsa, Alg::Es256], datetime!(2026-12-01 12:00 UTC))
            .unwrap()
            .public()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rules = Rules {
        typ: TYP_ACCESS,
        issuer: "https://auth.example",
        audiences: &["https://auth.example"],
        now: datetime!(2026-12-01 12:00 UTC),
    };
    assert!(kg_jose::verify::<AccessClaims>(text, keys(), &rules).is_err());
    let _ = PublicKeys::from_jwks(text);
});
