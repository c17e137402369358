//! The fast lane against hyper, on the same bytes: whatever a client sends to `/auth`, the
//! lane either answers exactly what hyper (with the server's head limits and the verifier)
//! answers, or hands hyper every byte it did not answer. A verdict the two disagree on is a
//! way around the one credential decision.
//!
//! Inputs are raw request bytes, with `@A`, `@B` and `@R` replaced by a token with the
//! `read` and `admin` scopes, one with `read` only and a revoked one, so that the fuzzer
//! reaches valid credentials. The store has the rule `/admin=admin`; `127.0.0.1` is a
//! trusted proxy, so `X-Original-URI` and `X-Forwarded-For` count.
#![no_main]

use std::sync::{Arc, OnceLock};

use kg_fs::lock::Wait;
use kg_verifier::Verifier;
use kg_verifier::testing::{loaded, settings, through_hyper, through_lane};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Arc<Verifier>,
    tokens: [String; 3],
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let setup = settings(
            dir.path(),
            &[
                ("server.trusted_proxies", "127.0.0.1/32"),
                ("server.required_scopes", "/admin=admin"),
                ("server.rate_limit_burst", "0"),
            ],
        );
        let now = time::OffsetDateTime::now_utc();
        let mut txn = setup.store.begin(Wait::No, &setup.prefix).unwrap();
        let (store, pepper) = txn.parts();
        let mut make = |name: &str, scopes: &[&str]| {
            let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
            store.create(pepper, name, scopes, None, now).unwrap()
        };
        let (_, alice) = make("alice", &["read", "admin"]);
        let (_, bob) = make("bob", &["read"]);
        let (carol, revoked) = make("carol", &[]);
        store.revoke_id(&carol.id, now).unwrap();
        txn.commit().unwrap();
        let (tokens, metrics, audit) = loaded(&setup, dir.path());
        Fixture {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            app: Arc::new(Verifier::new(&setup.verifier, tokens, metrics, audit)),
            tokens: [&alice, &bob, &revoked].map(|t| t.expose_secret().to_owned()),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut request = Vec::with_capacity(data.len() + 64);
    let mut i = 0;
    while i < data.len() {
        let token = match data.get(i..i + 2) {
            Some(b"@A") => Some(&f.tokens[0]),
            Some(b"@B") => Some(&f.tokens[1]),
            Some(b"@R") => Some(&f.tokens[2]),
            _ => None,
        };
        match token {
            Some(t) => {
                request.extend_from_slice(t.as_bytes());
                i += 2;
            }
            None => {
                request.push(data[i]);
                i += 1;
            }
        }
    }
    let peer = "127.0.0.1:40000".parse().unwrap();
    let (lane, handed) = f.rt.block_on(through_lane(&f.app, &request, peer));
    match handed {
        // What it did not answer reaches hyper untouched.
        Some(rest) => assert!(request.ends_with(&rest), "the lane lost or changed bytes"),
        // It answered everything: exactly as hyper does.
        None => {
            let hyper = f.rt.block_on(through_hyper(&f.app, &request, peer));
            let (lane, hyper) = (answers(&lane), answers(&hyper));
            let said = || String::from_utf8_lossy(&request).into_owned();
            // The head limits are the lane's own (kg_http::fast_lane's doc): a request line
            // over MAX_TARGET gets 414, where hyper answers 431, 400 (it reads on and finds a
            // bad byte first) or, at the end of the input, nothing. Both refuse; every answer
            // before it must agree.
            let limit = |a: &(String, Vec<String>)| {
                a.0.starts_with("HTTP/1.1 414 ") || a.0.starts_with("HTTP/1.1 431 ")
            };
            match lane.split_last() {
                Some((last, before)) if limit(last) => {
                    assert_eq!(
                        before,
                        &hyper[..before.len().min(hyper.len())],
                        "lane and hyper disagree before a limit on {:?}",
                        said()
                    );
                    assert!(
                        hyper.len() == before.len()
                            || (hyper.len() == before.len() + 1
                                && hyper[before.len()].0.starts_with("HTTP/1.1 4")),
                        "hyper answered past the lane's limit on {:?}: {hyper:?}",
                        said()
                    );
                }
                _ => assert_eq!(lane, hyper, "lane and hyper disagree on {:?}", said()),
            }
        }
    }
});

/// Each answer's status line and header lines (names lowercased, `Date` left out, sorted);
/// answers to `/auth` have no body.
fn answers(stream: &[u8]) -> Vec<(String, Vec<String>)> {
    let text = String::from_utf8_lossy(stream);
    let mut out = Vec::new();
    for head in text.split_terminator("\r\n\r\n") {
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or_default().to_owned();
        let mut headers: Vec<String> = lines
            .map(|l| match l.split_once(':') {
                Some((name, value)) => format!("{}:{}", name.to_ascii_lowercase(), value),
                None => l.to_owned(),
            })
            .filter(|l| !l.starts_with("date:"))
            .collect();
        headers.sort();
        out.push((status, headers));
    }
    out
}
