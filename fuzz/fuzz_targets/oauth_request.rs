//! What the authorization server parses from outside bytes: a token request's form body and
//! its `Authorization: Basic` value (base64, then form-decoded id and secret), and redirect
//! URIs as registered and as requested. None may panic; a redirect that matches a
//! registered one that is not a loopback literal is that very string.
#![no_main]

use hyper::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (auth, body) = data.split_at(split);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(auth) {
        headers.insert(AUTHORIZATION, v);
    }
    let _ = kg_oauth::provider::presented_client(&headers, body);
    let _ = kg_oauth::provider::presented_client(&HeaderMap::new(), data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kg_oauth::redirect::check_registered(text);
        let registered = vec!["https://app.example/cb".to_owned()];
        if kg_oauth::redirect::matches(&registered, text) {
            assert_eq!(text, "https://app.example/cb");
        }
        let loopback = vec!["http://127.0.0.1/callback".to_owned()];
        if kg_oauth::redirect::matches(&loopback, text) {
            assert!(text.starts_with("http://127.0.0.1") && text.ends_with("/callback"));
        }
    }
});
