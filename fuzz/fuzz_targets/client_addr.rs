//! The client address behind trusted proxies, from `X-Forwarded-For`, `Forwarded` and the
//! other client-address headers a client controls: never a panic, and from an untrusted
//! peer always the peer itself.
#![no_main]

use std::net::IpAddr;

use kg_http::net::{Cidr, client_addr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let trusted: [Cidr; 1] = ["127.0.0.0/8".parse().unwrap()];
    let mut lines = Vec::new();
    for (i, part) in data.split(|&b| b == b'\n').enumerate().take(8) {
        let name = [
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "true-client-ip",
        ][i % 4];
        lines.push(httparse::Header { name, value: part });
    }
    let _ = client_addr(peer, &lines[..], &trusted);
    let untrusted: [Cidr; 1] = ["10.0.0.0/8".parse().unwrap()];
    assert_eq!(client_addr(peer, &lines[..], &untrusted), peer);
});
