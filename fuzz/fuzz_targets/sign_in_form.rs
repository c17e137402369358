//! The sign-in form, from bytes a browser (or anyone) posts: the hand-written parser (it
//! wipes its buffers, which `form_urlencoded` cannot) reads the fields `form_urlencoded`
//! reads, the first of each; and the `next` it would redirect to, through `safe_next`, never
//! leaves this host nor leads back into keygate's own pages, by the WHATWG URL rules a
//! browser resolves a `Location` with.
#![no_main]

use kg_login::safe_next;
use kg_login::testing::parse_form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (token, csrf, next) = parse_form(data);
    let first = |name: &str| {
        form_urlencoded::parse(data)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        token.as_deref().map(String::from_utf8_lossy).as_deref(),
        first("token").as_deref(),
        "token"
    );
    assert_eq!(csrf.as_deref(), first("csrf").as_deref(), "csrf");
    assert_eq!(next.as_deref(), first("next").as_deref(), "next");

    let base = url::Url::parse("https://keygate.example/app/page").unwrap();
    for candidate in [next.as_deref(), std::str::from_utf8(data).ok()]
        .into_iter()
        .flatten()
    {
        let safe = safe_next(candidate);
        let to = base
            .join(safe)
            .unwrap_or_else(|e| panic!("safe_next({candidate:?}) = {safe:?} is no URL: {e}"));
        assert_eq!(
            (to.scheme(), to.host_str(), to.port()),
            ("https", Some("keygate.example"), None),
            "safe_next({candidate:?}) = {safe:?} leaves the host: {to}"
        );
        assert!(
            !to.path().starts_with(kg_login::PREFIX),
            "safe_next({candidate:?}) = {safe:?} leads to keygate's pages: {to}"
        );
    }
});
