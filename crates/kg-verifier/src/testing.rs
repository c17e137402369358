//! Helpers for unit tests, here and in the rooms above (feature `testing`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kg_http::audit::{Audit, AuditAllows, AuditTarget};
use kg_http::metrics::Metrics;
use kg_tokens::{Prefix, StorePaths};

use crate::{Clock, ScopeRules, Settings, Tokens, Verifier};

/// What a test sets up: the verifier's settings and the token store under a directory.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The verifier's settings.
    pub verifier: Settings,
    /// The token store (`DIR/state`, `DIR/private`, as `Locations::under` lays it out).
    pub store: StorePaths,
    /// The token prefix.
    pub prefix: Prefix,
}

/// The verifier's settings under `dir`, with `flags` as `--set KEY=VALUE` would give them
/// (the verifier's keys; others are left to the caller): the defaults of `SETTINGS`
/// otherwise, and the real clock.
pub fn settings(dir: &Path, flags: &[(&str, &str)]) -> Setup {
    let get = |key: &str| flag(flags, key);
    let list = |key: &str| -> Vec<String> {
        get(key)
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default()
    };
    let realm = get("server.realm").unwrap_or("keygate").to_owned();
    Setup {
        verifier: Settings {
            trusted_proxies: list("server.trusted_proxies")
                .iter()
                .map(|c| c.parse().expect("a CIDR"))
                .collect(),
            scopes: ScopeRules::parse(&list("server.required_scopes"), &realm)
                .expect("valid rules"),
            realm,
            rate_limit_burst: get("server.rate_limit_burst").map_or(30, |v| v.parse().unwrap()),
            rate_limit_refill: get("server.rate_limit_refill")
                .map_or(Duration::from_secs(1), duration),
            clock: Clock::new(time::OffsetDateTime::now_utc),
            audit_retention: Duration::from_secs(90 * 86_400),
        },
        store: StorePaths::new(&dir.join("state"), &dir.join("private")),
        prefix: Prefix::new("kg").expect("the default prefix"),
    }
}

/// The token store `setup` names, loaded; fresh metrics; an audit log of every decision
/// in `dir/audit.log`.
pub fn loaded(setup: &Setup, dir: &Path) -> (Tokens, Arc<Metrics>, Audit) {
    let tokens = Tokens::load(&setup.store, &setup.prefix).unwrap();
    let metrics = Arc::new(crate::metrics());
    let audit = Audit::open(
        &AuditTarget::File(dir.join("audit.log")),
        AuditAllows::All,
        Arc::clone(&metrics),
    )
    .unwrap();
    (tokens, metrics, audit)
}

/// A verifier over what `setup` names, auditing to `dir/audit.log`.
pub fn verifier(setup: &Setup, dir: &Path) -> Arc<Verifier> {
    let (tokens, metrics, audit) = loaded(setup, dir);
    Arc::new(Verifier::new(&setup.verifier, tokens, metrics, audit))
}

/// `30s`, `5m`, `2h`, `1d`: the durations tests write.
pub fn duration(text: &str) -> Duration {
    let (n, unit) = text.split_at(text.len() - 1);
    let n: u64 = n.parse().expect("a number and a unit");
    Duration::from_secs(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => panic!("unknown unit in {text}"),
    })
}

/// The value the last of `flags` gives `key`.
pub fn flag<'a>(flags: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    flags.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// What the fast lane did with `request` from `peer`, sent by a client that then stops
/// writing: the bytes it answered, and the bytes it handed over to hyper (`None` when it
/// kept the connection). With [`through_hyper`], the two sides of the lane's differential
/// test and of the `lane` fuzz target.
pub async fn through_lane(
    app: &Verifier,
    request: &[u8],
    peer: std::net::SocketAddr,
) -> (Vec<u8>, Option<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server) = tokio::io::duplex(1 << 20);
    client.write_all(request).await.unwrap();
    client.shutdown().await.unwrap();
    let (_stop, mut shutdown) = tokio::sync::watch::channel(false);
    let rest = kg_http::fast_lane::serve(app, server, peer, &mut shutdown).await;
    // Everything hyper would read: what the lane read and did not answer, then the rest of
    // the stream.
    let handed = match rest {
        Some(mut p) => {
            let mut all = Vec::new();
            p.read_to_end(&mut all).await.unwrap();
            Some(all)
        }
        None => None,
    };
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    (answer, handed)
}

/// What hyper answers to `request` from `peer` through the service the server's router
/// gives `/auth`: the head limits, then the verifier.
pub async fn through_hyper(
    app: &Arc<Verifier>,
    request: &[u8],
    peer: std::net::SocketAddr,
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server) = tokio::io::duplex(1 << 20);
    client.write_all(request).await.unwrap();
    client.shutdown().await.unwrap();
    let app = Arc::clone(app);
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let resp =
            kg_http::too_large(&req).unwrap_or_else(|| app.handle(&req, peer, req.uri().path()));
        std::future::ready(Ok::<_, std::convert::Infallible>(resp))
    });
    // As serve.rs builds it, and answering a client that stopped writing (the lane answers
    // it too: it stops at end of input after writing what it owes).
    let _ = kg_http::serve::h1_builder()
        .half_close(true)
        .serve_connection(hyper_util::rt::TokioIo::new(server), svc)
        .await;
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    answer
}

/// The path `/auth` and the proxy judge for request target `target`: decoded, `//` merged,
/// dot segments resolved, the query dropped; `None` when it has no such form. For the
/// `path` fuzz target, which checks it against [`crate::paths::ambiguity`].
pub fn judged_path(target: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; crate::paths::MAX_PATH];
    crate::scopes::normalize(target, &mut buf).map(<[u8]>::to_vec)
}
