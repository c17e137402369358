//! What kg-client parses from an issuer and from its cache file: a token endpoint's answer
//! (any status, any body) and a cache file's bytes. None may panic; a refusal's message stays
//! one printable line however hostile the server.
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
});
