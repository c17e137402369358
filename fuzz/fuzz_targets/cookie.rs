//! Session cookies, from the `Cookie` header a client controls: no header names a session
//! unless it carries a real session's signed value (`@S` in the input stands for one, under
//! the cookie name the scheme uses: plain on HTTP, `__Host-` on HTTPS); a forged, altered
//! or truncated value never does. Nothing may panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use hyper::header::{COOKIE, HeaderMap, HeaderValue};
use kg_login::SignIn;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    plain: SignIn,
    https: SignIn,
    values: [String; 2],
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let plain = kg_login::testing::sign_in(dir.path(), false);
        let https = kg_login::testing::sign_in(dir.path(), true);
        let values = [&plain, &https].map(|s| {
            s.sessions()
                .create("tok_fuzz")
                .expect("an in-memory store takes a session")
                .cookie_value
                .as_str()
                .to_owned()
        });
        Fixture {
            plain,
            https,
            values,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for (i, sign_in) in [&f.plain, &f.https].into_iter().enumerate() {
        let real = f.values[i].as_bytes();
        let mut header = Vec::with_capacity(data.len() + real.len());
        let mut marked = false;
        let mut j = 0;
        while j < data.len() {
            if data[j..].starts_with(b"@S") {
                header.extend_from_slice(real);
                marked = true;
                j += 2;
            } else {
                header.push(data[j]);
                j += 1;
            }
        }
        let Ok(value) = HeaderValue::from_bytes(&header) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, value);
        if sign_in.session(&headers, local).is_some() {
            assert!(marked, "a session from a forged cookie: {header:?}");
        }
    }
});
