//! The signed values sign-in hands to browsers and takes back: a portal launch ticket (a
//! form field a client controls) and the pending cookie between the steps of a person's
//! sign-in. Nothing opens unless it is, byte for byte, a value this process made (`@T` in
//! the input stands for a real ticket, `@P` for a real pending cookie); a forged, altered or
//! truncated one never does, and nothing panics.
#![no_main]

use std::sync::OnceLock;

use kg_login::SignIn;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    sign_in: SignIn,
    ticket: String,
    pending: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let sign_in = kg_login::testing::sign_in(dir.path(), true);
        let ticket = kg_login::testing::mint_ticket(&sign_in, "USERID", "grafana");
        let pending = kg_login::testing::seal_pending(&sign_in, "USERID");
        Fixture {
            sign_in,
            ticket,
            pending,
            _dir: dir,
        }
    })
}

/// `data` with every `marker` replaced by `real`; whether the result is exactly `real`.
fn substituted(data: &[u8], marker: &[u8], real: &str) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(data.len() + real.len());
    let mut j = 0;
    while j < data.len() {
        if data[j..].starts_with(marker) {
            out.extend_from_slice(real.as_bytes());
            j += marker.len();
        } else {
            out.push(data[j]);
            j += 1;
        }
    }
    let exact = out == real.as_bytes();
    (out, exact)
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (ticket, exact) = substituted(data, b"@T", &f.ticket);
    if let Some(opened) = kg_login::testing::open_ticket(&f.sign_in, &ticket) {
        assert!(exact, "a ticket opened that was not made here: {ticket:?}");
        assert_eq!(opened, ("USERID".to_owned(), "grafana".to_owned()));
    }
    let (pending, exact) = substituted(data, b"@P", &f.pending);
    if let Ok(text) = std::str::from_utf8(&pending)
        && let Some(user) = kg_login::testing::open_pending(&f.sign_in, text)
    {
        assert!(exact, "a pending cookie opened that was not made here: {text:?}");
        assert_eq!(user, "USERID");
    }
});
