//! Judge versus forward: for every request target a client can send, a path that
//! `kg_verifier::paths::ambiguity` lets through must mean one thing. Its judged form (what
//! scope rules match) exists, resolving dots changed nothing in it (so the upstream, which
//! gets the raw bytes, routes the same segments), and the WHATWG URL parser (the `url`
//! crate: browsers' and many servers' resolution) finds the same non-empty segments.
//! Nothing may panic on any input.
#![no_main]

use kg_verifier::paths::ambiguity;
use kg_verifier::testing::judged_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let judged = judged_path(data);
    if ambiguity(data).is_some() {
        return;
    }
    let judged = judged.expect("an unambiguous path has a judged form");
    let path = &data[..data.iter().position(|&b| b == b'?').unwrap_or(data.len())];
    // Only decoding and slash merging: no dot segment was resolved.
    let decoded = decode(path);
    let plain = segments(&decoded);
    assert_eq!(segments(&judged), plain, "judged {judged:?} from {path:?}");
    // The WHATWG parser resolves the same path to the same segments (for bytes a request
    // line can carry: it trims spaces, which end a request target anyway).
    if !data.iter().any(|&b| b <= b' ' || b == 0x7f)
        && let Ok(text) = std::str::from_utf8(data)
        && let Ok(url) = url::Url::parse(&format!("http://h{text}"))
    {
        let resolved = decode(url.path().as_bytes());
        assert_eq!(
            segments(&resolved),
            plain,
            "url resolved {:?} from {text:?}",
            url.path()
        );
    }
});

fn decode(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'%'
            && let Some(h) = p.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(p[i]);
        i += 1;
    }
    out
}

fn segments(p: &[u8]) -> Vec<&[u8]> {
    p.split(|&b| b == b'/').filter(|s| !s.is_empty()).collect()
}
