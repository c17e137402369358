//! What kg-client parses from outside: a token endpoint's answer (any status, any body), a
//! cache file's bytes, and the request head a browser (or anything else on loopback) sends to
//! `tokenctl login`'s listener. None may panic; a refusal's message stays one printable line
//! however hostile the server.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = data.first().map_or(200, |&b| if b % 2 == 0 { 200 } else { 400 + u16::from(b) });
    let body = data.get(1..).unwrap_or_default();
    if let Err(e) = kg_client::parse_token_answer(status, body) {
        let text = e.to_string();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
    }
    let _ = kg_client::parse_cache(data);
    if let Some(cb) = kg_client::parse_callback(data)
        && cb.error.is_none()
    {
        // Only `GET /callback?...` is an answer.
        assert!(data.starts_with(b"GET /callback"));
    }
});
