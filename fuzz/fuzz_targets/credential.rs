//! The credential a request presents, from bytes a client controls: an `Authorization`
//! header value (through hyper's `HeaderMap` and through the fast lane's httparse lines,
//! which must agree) and a sign-in form field. Neither may panic, and a bearer token is
//! never empty and never holds a space.
#![no_main]

use hyper::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use kg_verifier::Credential;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let check = |c: Credential<'_>| {
        if let Credential::Bearer(t) = c {
            assert!(!t.is_empty() && !t.contains(' '));
        }
    };
    check(Credential::from_form(Some(data)));
    let lines = [httparse::Header {
        name: "authorization",
        value: data,
    }];
    let from_lane = Credential::from_headers(&lines[..]);
    check(from_lane);
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut map = HeaderMap::new();
        map.insert(AUTHORIZATION, v);
        assert_eq!(Credential::from_headers(&map), from_lane);
    }
});
