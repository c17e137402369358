//! The localhost bypass trusts one user: keygate's own, whose processes on this host connect
//! over loopback (issue 13 item 2: "local" is a fact the kernel states about the connecting
//! process, not about an address). A relay on this host run by another uid, root's
//! processes while keygate runs as root, and cross-site browser fetches never get it.
//!
//! keygate runs as `nobody` here (copied binaries, a home that uid owns), since the tests run
//! as root and root grants nothing by default; curl and the relays run as chosen uids
//! through `setpriv`.

use std::net::SocketAddr;
use std::time::Duration;

use test_support::proxy::*;
use test_support::server::*;
use test_support::{Env, have};

fn tools() -> bool {
    have("curl") && have("setpriv") && have("python3")
}

/// The relay of issue 13: a plain TCP forwarder on this host, run by a uid that is not
/// keygate's (another service user, or root: sshd, tailscaled, HAProxy in TCP mode), passed
/// for local with `Host: localhost`. It must get what a remote client gets: the sign-in page
/// for a browser, 401 for anything else, and never the upstream.
#[test]
fn a_relay_run_by_another_user_is_not_local() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let me = OtherUser::new(NOBODY);
    let addr = local_addr();
    let _kg = me.keygate_proxy(
        env.root(),
        addr,
        &up.url,
        &["--set", "server.local_bypass=true"],
    );
    // The bypass is on: keygate's own user gets in directly.
    let own = curl_as(NOBODY, &[&format!("http://{addr}/own")]);
    assert_eq!(own.status, 200, "{own:?}");
    let seen = up.seen().len();

    for relay_uid in [STRANGER, 0] {
        let relay = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let _relay = tcp_relay(relay_uid, env.root(), relay, addr);
        let url = format!("http://{relay}/private");
        let api = curl(&["-H", "Host: localhost", &url]);
        assert_eq!(api.status, 401, "relay of uid {relay_uid}: {api:?}");
        assert_eq!(
            api.header("www-authenticate"),
            Some("Bearer realm=\"keygate\""),
            "relay of uid {relay_uid}"
        );
        let browser = curl(&[
            "-H",
            "Host: localhost",
            "-H",
            "Accept: text/html,application/xhtml+xml",
            &url,
        ]);
        assert_eq!(browser.status, 303, "relay of uid {relay_uid}: {browser:?}");
        assert!(
            browser
                .header("location")
                .is_some_and(|l| l.contains("/.keygate/sign-in")),
            "{browser:?}"
        );
        assert_eq!(
            up.seen().len(),
            seen,
            "the relay of uid {relay_uid} reached the upstream"
        );
    }
    // Another user's own curl, root's included, is not keygate's user either.
    for uid in [0, STRANGER] {
        let r = curl_as(uid, &["-H", "Host: localhost", &format!("http://{addr}/x")]);
        assert_eq!(r.status, 401, "curl as uid {uid}: {r:?}");
    }
    assert_eq!(up.seen().len(), seen);
    // A relay keygate's own user runs is that user's own process: it is theirs to answer
    // for (the README says so).
    let relay = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let _relay = tcp_relay(NOBODY, env.root(), relay, addr);
    let r = curl(&["-H", "Host: localhost", &format!("http://{relay}/mine")]);
    assert_eq!(r.status, 200, "{r:?}");
}

/// The same user's own curl passes, over IPv4 and IPv6, and the app is told who is there:
/// `X-Auth-Request-User` is the login name and `X-Auth-Request-Session: local`, whatever the
/// client claimed. The audit line says local and names the user.
#[test]
fn the_users_own_requests_pass_and_the_app_is_told_who_it_is() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let me = OtherUser::new(NOBODY);
    let v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let addr = local_addr();
    let mut addrs = vec![addr];
    if v6 {
        addrs.push(SocketAddr::from((
            std::net::Ipv6Addr::LOCALHOST,
            free_port(),
        )));
    }
    let mut args = vec![
        "--set",
        "server.local_bypass=true",
        "--set",
        "server.audit_allows=all",
    ];
    let extra: Vec<String> = addrs[1..].iter().map(|a| a.to_string()).collect();
    for a in &extra {
        args.extend(["--listen", a]);
    }
    let kg = me.keygate_proxy(env.root(), addr, &up.url, &args);
    for a in &addrs {
        let r = curl_as(
            NOBODY,
            &[
                "-g",
                "-H",
                "X-Auth-Request-User: root",
                "-H",
                "X-Auth-Request-Session: forged",
                "-H",
                "Remote-User: root",
                &format!("http://{a}/who"),
            ],
        );
        assert_eq!(r.status, 200, "{a}: {r:?}");
        let e = up.last();
        assert_eq!(
            header(&e, "x-auth-request-user"),
            Some("nobody"),
            "{a}: {e:#}"
        );
        assert_eq!(header(&e, "x-auth-request-session"), Some("local"), "{e:#}");
        assert!(header(&e, "remote-user").is_none(), "{e:#}");
        assert!(header(&e, "x-auth-request-token-id").is_none(), "{e:#}");
    }
    // The audit writer flushes every 100 ms.
    let locals = || {
        audit_lines(&kg.output())
            .into_iter()
            .filter(|l| l["reason"] == "local")
            .count()
    };
    assert!(eventually(Duration::from_secs(3), || locals() == addrs.len()));
    let lines = audit_lines(&kg.output());
    let local: Vec<_> = lines.iter().filter(|l| l["reason"] == "local").collect();
    assert_eq!(local.len(), addrs.len(), "{lines:#?}");
    for l in local {
        assert_eq!(l["decision"], "allow", "{l}");
        assert_eq!(l["local_user"], "nobody", "{l}");
    }
    let start = kg.output();
    assert!(
        start.contains("\"local_bypass\":true") && start.contains("\"local_user\":\"nobody\""),
        "{start}"
    );
}

/// Under the bypass, a browser fetch another site started is refused whatever its method
/// (issue 13, low: Chromium read app data cross-site through GET because the app sent
/// `Access-Control-Allow-Origin: *`). Same-origin, same-site reads and direct navigation
/// pass.
#[test]
fn cross_site_fetches_are_refused_under_the_bypass() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let me = OtherUser::new(NOBODY);
    let addr = local_addr();
    let kg = me.keygate_proxy(
        env.root(),
        addr,
        &up.url,
        &["--set", "server.local_bypass=true"],
    );
    let url = format!("http://{addr}/api/data");
    for method in ["GET", "HEAD", "OPTIONS", "POST"] {
        let before = up.seen().len();
        let mut args = vec![
            "-H",
            "Sec-Fetch-Site: cross-site",
            "-H",
            "Origin: https://evil.example",
        ];
        if method == "HEAD" {
            args.push("-I");
        } else {
            args.extend(["-X", method]);
        }
        args.push(&url);
        let r = curl_as(NOBODY, &args);
        assert_eq!(r.status, 403, "{method}: {r:?}");
        if method != "HEAD" {
            assert_eq!(
                r.body,
                "cross-site request refused: another site started it; open this address directly\n",
                "{method}"
            );
            assert_eq!(
                r.header("content-type"),
                Some("text/plain; charset=utf-8"),
                "{method}"
            );
        }
        assert_eq!(
            up.seen().len(),
            before,
            "{method} cross-site reached the upstream"
        );
    }
    for site in ["same-origin", "same-site", "none"] {
        let r = curl_as(NOBODY, &["-H", &format!("Sec-Fetch-Site: {site}"), &url]);
        assert_eq!(r.status, 200, "{site}: {r:?}");
    }
    let denied = || {
        audit_lines(&kg.output())
            .into_iter()
            .filter(|l| l["reason"] == "cross_site" && l["local_user"] == "nobody")
            .count()
    };
    assert!(
        eventually(Duration::from_secs(3), || denied() == 4),
        "{}",
        kg.output()
    );
}

/// keygate running as root grants nothing by default: root's processes include the relays
/// (sshd, tailscaled, a proxy) the bypass must not trust. `server.danger_local_bypass_as_root`
/// restores it for root's own processes, with a warning at start, and still not for a relay
/// run by another uid.
#[test]
fn as_root_the_bypass_grants_nothing_unless_the_danger_setting_says_so() {
    if !tools() || !have("id") {
        return;
    }
    // Only meaningful where the tests run as root (CI and this machine).
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let addr = local_addr();
    let kg = keygate_proxy(
        &env,
        addr,
        &up.url,
        false,
        &["--set", "server.local_bypass=true"],
    );
    let r = curl(&[&format!("http://{addr}/x")]);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(up.seen().is_empty());
    let log = kg.output();
    assert!(
        log.contains("\"event\":\"local_bypass_off_as_root\""),
        "{log}"
    );
    assert!(log.contains("\"local_bypass\":false"), "{log}");
    drop(kg);
    let check = env.run(
        "keygate",
        &[
            "check",
            "--plain-http",
            "--set",
            &format!("server.upstream={}", up.url),
            "--set",
            "server.local_bypass=true",
        ],
    );
    assert!(
        check.stdout.contains("keygate runs as root"),
        "{}{}",
        check.stdout,
        check.stderr
    );

    let kg = keygate_proxy(
        &env,
        addr,
        &up.url,
        false,
        &[
            "--set",
            "server.local_bypass=true",
            "--set",
            "server.danger_local_bypass_as_root=true",
        ],
    );
    // The warning is written as the server starts, maybe after the port opened.
    assert!(
        eventually(Duration::from_secs(3), || kg
            .output()
            .contains("\"event\":\"danger_local_bypass_as_root\"")),
        "{}",
        kg.output()
    );
    let r = curl(&[&format!("http://{addr}/x")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(header(&up.last(), "x-auth-request-user"), Some("root"));
    // Still only root's own processes: a relay run by nobody is not root.
    let relay = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let _relay = tcp_relay(NOBODY, env.root(), relay, addr);
    let seen = up.seen().len();
    let r = curl(&["-H", "Host: localhost", &format!("http://{relay}/x")]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(up.seen().len(), seen);
}

/// A user's own `keygate up --upstream` says whose processes skip sign-in, and they do:
/// the user's curl reaches the app without a token, another user's does not.
#[test]
fn a_users_keygate_up_names_who_skips_sign_in() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let up = Upstream::tcp();
    let me = OtherUser::new(NOBODY);
    let port = free_port();
    let mut cmd = me.cmd("keygate");
    cmd.args([
        "up",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &up.url,
    ]);
    let kg = test_support::Proc::spawn("keygate up", cmd, &env.root().join("up.log"));
    assert!(
        eventually(Duration::from_secs(60), || kg
            .output()
            .contains("stop with")),
        "{}",
        kg.output()
    );
    let text = kg.output();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("sign-in"))
        .unwrap_or_else(|| panic!("no sign-in line:\n{text}"));
    assert!(
        line.contains("nobody's own processes on this host")
            && line.contains("other users")
            && line.contains("server.local_bypass=false"),
        "{line}"
    );
    let url = format!("https://localhost:{port}/app");
    // `-k`: this is about who gets in, not about the certificate (up.rs checks that).
    let own = curl_as(NOBODY, &["-k", &url]);
    assert_eq!(own.status, 200, "{own:?}\n{text}");
    assert_eq!(header(&up.last(), "x-auth-request-user"), Some("nobody"));
    let seen = up.seen().len();
    let other = curl_as(STRANGER, &["-k", &url]);
    assert_eq!(other.status, 401, "{other:?}");
    assert_eq!(up.seen().len(), seen);
}

/// Issue 13's setup end to end: a remote client in its own network namespace reaches a TCP
/// forwarder on this host (run by another uid) that relays to keygate's loopback port, and
/// sends `Host: localhost`. It gets 401, or the sign-in page as a browser; keygate's own
/// user, on the host, still gets in. Everything runs inside a network namespace of the
/// test's own, with the remote one joined to it by a veth pair (and `/run/netns` a tmpfs of
/// its own mount namespace, so nothing is left on the host).
#[test]
fn a_remote_client_through_a_relay_is_not_local() {
    if !tools() || !have("unshare") || !have("ip") {
        return;
    }
    let env = Env::new();
    let me = OtherUser::new(NOBODY);
    let out = env.root().join("out");
    std::fs::create_dir(&out).unwrap();
    let script = "set -e\n\
        ip link set lo up\n\
        mkdir -p /run/netns\n\
        mount -t tmpfs kg-netns /run/netns\n\
        ip netns add kg-remote\n\
        ip link add kg-host type veth peer name kg-peer netns kg-remote\n\
        ip addr add 192.0.2.1/24 dev kg-host\n\
        ip link set kg-host up\n\
        ip netns exec kg-remote ip addr add 192.0.2.2/24 dev kg-peer\n\
        ip netns exec kg-remote ip link set kg-peer up\n\
        ip netns exec kg-remote ip link set lo up\n\
        \"$KG_PY\" -m http.server --bind 127.0.0.1 8080 --directory \"$KG_OUT\" >/dev/null 2>&1 &\n\
        app=$!\n\
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env HOME=\"$KG_HOME\" \
          KEYGATE_HOME=\"$KG_HOME\" \"$KG_BIN\" serve --plain-http --listen 127.0.0.1:8443 \
          --set server.upstream=http://127.0.0.1:8080 --set server.local_bypass=true \
          > \"$KG_OUT/keygate.log\" 2>&1 &\n\
        kg=$!\n\
        setpriv --reuid=65533 --regid=65533 --clear-groups -- \"$KG_PY\" -c \"$KG_RELAY\" \
          192.0.2.1:9000 127.0.0.1:8443 >/dev/null 2>&1 &\n\
        relay=$!\n\
        code() { n=0; c=000; while [ \"$c\" = 000 ] && [ $n -lt 200 ]; do \
          c=$(\"$@\" -s -o /dev/null -w '%{http_code}' --max-time 5 || true); \
          [ \"$c\" = 000 ] && sleep 0.05; n=$((n+1)); done; echo \"$c\"; }\n\
        code curl http://127.0.0.1:8080/ > \"$KG_OUT/app\"\n\
        code setpriv --reuid=65534 --regid=65534 --clear-groups -- curl \
          http://127.0.0.1:8443/ > \"$KG_OUT/own\"\n\
        code ip netns exec kg-remote curl -H 'Host: localhost' \
          http://192.0.2.1:9000/ > \"$KG_OUT/api\"\n\
        code ip netns exec kg-remote curl -H 'Host: localhost' -H 'Accept: text/html' \
          http://192.0.2.1:9000/ > \"$KG_OUT/browser\"\n\
        kill $relay $kg $app\n\
        ip netns del kg-remote\n";
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--net", "--", "sh", "-c", script])
        .env("KG_PY", system_python())
        .env("KG_RELAY", TCP_RELAY)
        .env("KG_OUT", &out)
        .env("KG_HOME", me.home())
        .env("KG_BIN", me.bin("keygate"))
        .stdin(std::process::Stdio::null());
    let o = cmd.output().unwrap();
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let log = read("keygate.log");
    assert!(
        o.status.success(),
        "{}{}\n{log}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(read("app"), "200", "the app itself");
    assert_eq!(read("own"), "200", "keygate's own user: {log}");
    assert_eq!(
        read("api"),
        "401",
        "the remote client through the relay: {log}"
    );
    assert_eq!(
        read("browser"),
        "303",
        "the remote browser through the relay: {log}"
    );
}
