//! `/auth` in the HTTP/1 fast lane (kg-http's [`kg_http::fast_lane`]): the lane parses and frames,
//! this answers with [`Verifier::auth_reply`], the very decision hyper's path runs, written
//! as hyper would write it. A differential test below holds the two to the same bytes.

use kg_http::fast_lane::{Answer, Date, LaneRequest, header, status_line};

use crate::endpoints::is_auth;
use crate::{AuthRequest, Reply, Verifier};

impl Answer for Verifier {
    fn takes(&self, path: &str) -> bool {
        is_auth(path)
    }

    fn answer(&self, req: &LaneRequest<'_>, out: &mut Vec<u8>, date: &mut Date) -> bool {
        let input = AuthRequest {
            method: req.method,
            path: req.path,
            has_body: false,
            headers: req.headers,
        };
        self.auth_reply(&input, req.peer, |reply| {
            write_reply(out, &reply, req.close, date);
            req.close || reply.close
        })
    }
}

/// A header value hyper would accept (`HeaderValue::from_str`): no control characters
/// besides tab. The identity headers are left out otherwise, as hyper's path does.
fn value_ok(s: &str) -> bool {
    s.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// Writes `reply` as hyper would: the same headers (names in lowercase), `Date` last.
fn write_reply(out: &mut Vec<u8>, reply: &Reply<'_>, close: bool, date: &mut Date) {
    status_line(out, reply.status);
    if close || reply.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if let Some(c) = reply.challenge {
        header(out, b"www-authenticate", c.as_bytes());
    }
    if let Some(i) = &reply.identity {
        if value_ok(i.name) {
            header(out, b"x-auth-request-user", i.name.as_bytes());
        }
        if value_ok(i.id) {
            header(out, b"x-auth-request-token-id", i.id.as_bytes());
        }
        if i.scopes.iter().all(|s| value_ok(s)) {
            out.extend_from_slice(b"x-auth-request-scopes: ");
            for (n, s) in i.scopes.iter().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(s.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    header(out, b"date", date.now());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use kg_http::fast_lane::{MAX_HEAD, serve};
    use kg_http::{MAX_HEADER_BYTES, MAX_TARGET};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::watch;

    use kg_fs::lock::Wait;
    use time::OffsetDateTime;

    use crate::testing::{loaded, settings};

    async fn through_lane(app: &Verifier, request: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        crate::testing::through_lane(app, request, PEER.parse().unwrap()).await
    }

    async fn through_hyper(app: &Arc<Verifier>, request: &[u8]) -> Vec<u8> {
        crate::testing::through_hyper(app, request, PEER.parse().unwrap()).await
    }

    const PEER: &str = "127.0.0.1:40000";

    struct Fixture {
        app: Arc<Verifier>,
        alice: String,
        bob: String,
        revoked: String,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(
            dir.path(),
            &[
                ("server.trusted_proxies", "127.0.0.1/32"),
                ("server.required_scopes", "/admin=admin"),
                ("server.rate_limit_burst", "0"),
            ],
        );
        let now = OffsetDateTime::now_utc();
        let mut txn = settings.store.begin(Wait::No, &settings.prefix).unwrap();
        let (store, pepper) = txn.parts();
        let scopes = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (_, alice) = store
            .create(pepper, "alice", scopes(&["read", "admin"]), None, now)
            .unwrap();
        let (_, bob) = store
            .create(pepper, "bob", scopes(&["read"]), None, now)
            .unwrap();
        let (carol, revoked) = store.create(pepper, "carol", vec![], None, now).unwrap();
        store.revoke_id(&carol.id, now).unwrap();
        txn.commit().unwrap();
        let (tokens, metrics, audit) = loaded(&settings, dir.path());
        Fixture {
            app: Arc::new(Verifier::new(&settings.verifier, tokens, metrics, audit)),
            alice: alice.expose_secret().to_owned(),
            bob: bob.expose_secret().to_owned(),
            revoked: revoked.expose_secret().to_owned(),
            _dir: dir,
        }
    }

    /// The status line and the header lines (names lowercased, `Date` left out, sorted).
    fn normalised(answer: &[u8]) -> (String, Vec<String>) {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            panic!("not one complete answer: {text:?}");
        };
        assert_eq!(body, "", "no body and nothing after the answer: {text}");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let mut headers: Vec<String> = lines
            .map(|l| {
                let (name, value) = l.split_once(':').unwrap();
                format!("{}:{}", name.to_ascii_lowercase(), value)
            })
            .filter(|l| !l.starts_with("date:"))
            .collect();
        headers.sort();
        (status, headers)
    }

    fn get(target: &str, extra: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: keygate\r\n{extra}\r\n").into_bytes()
    }

    #[tokio::test]
    async fn the_lane_answers_what_hyper_answers() {
        let f = fixture();
        let auth = |t: &str| format!("Authorization: Bearer {t}\r\n");
        let alice = auth(&f.alice);
        let bob = auth(&f.bob);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("valid", get("/auth", &alice)),
            ("missing", get("/auth", "")),
            (
                "another scheme",
                get("/auth", "Authorization: Basic YTpi\r\n"),
            ),
            ("wrong", get("/auth", &auth(&format!("{}x", f.alice)))),
            ("not a token", get("/auth", &auth("nonsense"))),
            ("revoked", get("/auth", &auth(&f.revoked))),
            ("two authorizations", get("/auth", &format!("{alice}{bob}"))),
            (
                "lowercase scheme",
                get("/auth", &format!("authorization: bearer {}\r\n", f.bob)),
            ),
            ("query", get("/auth?rd=%2Fx&y=1", &bob)),
            (
                "connection close",
                get("/auth", &format!("{bob}Connection: close\r\n")),
            ),
            (
                "keep-alive",
                get("/auth", &format!("{bob}Connection: keep-alive\r\n")),
            ),
            (
                "scope allowed",
                get("/auth", &format!("{alice}X-Original-URI: /admin/x\r\n")),
            ),
            (
                "scope missing",
                get("/auth", &format!("{bob}X-Original-URI: /admin/x\r\n")),
            ),
            (
                "original uris disagree",
                get(
                    "/auth",
                    &format!("{alice}X-Original-URI: /a\r\nX-Forwarded-Uri: /admin\r\n"),
                ),
            ),
            ("envoy path prefix", get("/auth/admin/panel", &bob)),
            (
                "forwarded for",
                get(
                    "/auth",
                    &format!("{bob}X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\n"),
                ),
            ),
            (
                "head",
                format!("HEAD /auth HTTP/1.1\r\nHost: k\r\n{alice}\r\n").into_bytes(),
            ),
            (
                "post without a body",
                format!("POST /auth HTTP/1.1\r\nHost: k\r\nContent-Length: 0\r\n{alice}\r\n")
                    .into_bytes(),
            ),
            (
                "long target",
                get(&format!("/auth?{}", "a".repeat(MAX_TARGET)), ""),
            ),
            (
                "many header bytes",
                get(
                    "/auth",
                    &format!("X-Big: {}\r\n", "b".repeat(MAX_HEADER_BYTES)),
                ),
            ),
        ];
        for (name, request) in cases {
            let (lane, handed) = through_lane(&f.app, &request).await;
            assert_eq!(handed, None, "{name}: the lane handed it over");
            let hyper = through_hyper(&f.app, &request).await;
            assert!(
                !lane.is_empty() && !hyper.is_empty(),
                "{name}: {lane:?} {hyper:?}"
            );
            assert_eq!(normalised(&lane), normalised(&hyper), "{name}");
        }
    }

    #[tokio::test]
    async fn unusual_requests_go_to_hyper_with_every_byte() {
        let f = fixture();
        let alice = format!("Authorization: Bearer {}\r\n", f.alice);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("another endpoint", get("/health", "")),
            ("metrics", get("/metrics", "")),
            ("not found", get("/", "")),
            ("auth as a prefix", get("/authx", &alice)),
            (
                "a body",
                format!("POST /auth HTTP/1.1\r\nHost: k\r\nContent-Length: 5\r\n{alice}\r\nhello")
                    .into_bytes(),
            ),
            (
                "chunked",
                format!(
                    "POST /auth HTTP/1.1\r\nHost: k\r\nTransfer-Encoding: chunked\r\n{alice}\r\n0\r\n\r\n"
                )
                .into_bytes(),
            ),
            (
                "HTTP/1.0",
                format!("GET /auth HTTP/1.0\r\n{alice}\r\n").into_bytes(),
            ),
            ("upgrade", get("/auth", &format!("{alice}Connection: upgrade\r\nUpgrade: websocket\r\n"))),
            ("expect", get("/auth", &format!("{alice}Expect: 100-continue\r\n"))),
            ("odd characters", get("/auth?x=\"<>\"", &alice)),
            ("absolute form", get("http://keygate/auth", &alice)),
            (
                // hyper measures the authority and path, not the scheme (review F1).
                "absolute form near the limit",
                get(&format!("http://k/auth?{}", "a".repeat(MAX_TARGET - 8)), &alice),
            ),
            ("odd method", format!("PROPFIND /auth HTTP/1.1\r\n{alice}\r\n").into_bytes()),
            ("malformed", b"GET /auth HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec()),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ];
        for (name, request) in cases {
            let (lane, handed) = through_lane(&f.app, &request).await;
            assert!(lane.is_empty(), "{name}: the lane answered");
            assert_eq!(handed.as_deref(), Some(&request[..]), "{name}");
        }
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_until_one_goes_to_hyper() {
        let f = fixture();
        let alice = format!("Authorization: Bearer {}\r\n", f.alice);
        let mut request = get("/auth", &alice);
        request.extend(get("/auth", ""));
        let health = get("/health", "");
        request.extend(&health);
        let (lane, handed) = through_lane(&f.app, &request).await;
        let text = String::from_utf8(lane).unwrap();
        let statuses: Vec<&str> = text
            .split("\r\n")
            .filter(|l| l.starts_with("HTTP/1.1"))
            .collect();
        assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 401 Unauthorized"]);
        assert_eq!(handed, Some(health));
    }

    #[tokio::test]
    async fn heads_that_never_end_get_414_or_431_and_the_connection_closes() {
        let f = fixture();
        // A request line longer than any buffer: hyper alone could only say 431.
        let line = format!("GET /auth?{} HTTP/1.1\r\n", "a".repeat(64 * 1024)).into_bytes();
        let (lane, handed) = through_lane(&f.app, &line).await;
        assert_eq!(handed, None);
        let (status, headers) = normalised(&lane);
        assert_eq!(status, "HTTP/1.1 414 URI Too Long");
        assert!(
            headers.contains(&"connection: close".to_owned()),
            "{headers:?}"
        );
        let mut head = b"GET /auth HTTP/1.1\r\n".to_vec();
        while head.len() < MAX_HEAD + 100 {
            head.extend_from_slice(format!("X-Filler: {}\r\n", "c".repeat(1000)).as_bytes());
        }
        let (lane, handed) = through_lane(&f.app, &head).await;
        assert_eq!(handed, None);
        assert_eq!(
            normalised(&lane).0,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }

    #[tokio::test]
    async fn a_waiting_connection_closes_on_shutdown() {
        let f = fixture();
        let (mut client, server) = tokio::io::duplex(4096);
        let (stop, mut shutdown) = watch::channel(false);
        let app = Arc::clone(&f.app);
        let lane = tokio::spawn(async move {
            serve(&*app, server, PEER.parse().unwrap(), &mut shutdown)
                .await
                .is_none()
        });
        client.write_all(&get("/auth", "")).await.unwrap();
        let mut first = [0u8; 512];
        let n = client.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 401"));
        stop.send(true).unwrap();
        assert!(lane.await.unwrap(), "closed, not handed over");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
