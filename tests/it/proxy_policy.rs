//! What keygate's proxy may connect to and what the upstream is told (issue 13): the identity
//! and URL-rewrite headers no client can pass on, and the cloud metadata addresses that are
//! never an upstream, in any spelling, also behind a name that resolves to one.

use std::process::Command;

use test_support::proxy::{Upstream, header, keygate_proxy};
use test_support::server::*;
use test_support::{Env, have};

/// Through a trusted proxy (which passes on what its client sent), no identity family and
/// no URL-rewrite header reaches the upstream, nor a name in `server.strip_headers`; before
/// the fix `Cf-Access-*`, `X-Authenticated-User`, `X-Ssl-Client-*`, `X-Original-URL`, ...
/// did.
#[test]
fn no_identity_or_rewrite_header_reaches_the_upstream_even_from_a_trusted_proxy() {
    if !have("curl") {
        return;
    }
    let env = Env::new();
    config(
        &env,
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
         strip_headers = [\"X-Corp-User\", \"X-Corp-Team-*\"]\n",
    );
    let alice = token(&env, "alice", &["read"]);
    let up = Upstream::tcp();
    let addr = local_addr();
    let _kg = keygate_proxy(&env, addr, &up.url, false, &[]);
    let forged = [
        "Cf-Access-Authenticated-User-Email",
        "Cf-Access-Jwt-Assertion",
        "X-Authenticated-User",
        "X-Ssl-Client-Cert",
        "X-Ssl-Client-S-Dn",
        "Ssl-Client-Verify",
        "X-Client-Cert",
        "X-Pomerium-Claim-Email",
        "X-Goog-Authenticated-User-Email",
        "X-Amzn-Oidc-Identity",
        "X-Ms-Client-Principal-Name",
        "Tailscale-User-Login",
        "X-Forwarded-User",
        "X-Forwarded-Preferred-Username",
        "X-Forwarded-Client-Cert",
        "Remote-User",
        "X-Remote-Group",
        "X-Webauth-Email",
        "X-Auth-Request-Email",
        "X-User",
        "X-Email",
        "X-Corp-User",
        "X-Corp-Team-Lead",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Original-URI",
        "X-Forwarded-Uri",
        "X-Forwarded-Prefix",
        "X-Script-Name",
    ];
    let lines: Vec<String> = forged.iter().map(|h| format!("{h}: /admin")).collect();
    let auth = bearer(&alice);
    let mut args = vec!["-H", auth.as_str(), "-H", "X-Forwarded-Proto: https"];
    for l in &lines {
        args.extend(["-H", l.as_str()]);
    }
    let target = url(addr, "/notes");
    args.push(&target);
    let r = curl(&args);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = up.last();
    for h in forged {
        let h = h.to_ascii_lowercase();
        assert!(
            header(&seen, &h).is_none(),
            "{h} reached the upstream: {seen:#}"
        );
    }
    assert_eq!(seen["uri"], "/notes");
    assert_eq!(header(&seen, "x-auth-request-user"), Some("alice"));
    // The trusted proxy's word about how the client connected still passes.
    assert_eq!(header(&seen, "x-forwarded-proto"), Some("https"));
}

#[test]
fn a_bad_strip_headers_entry_is_a_configuration_error() {
    let env = Env::new();
    config(&env, "[server]\nstrip_headers = [\"X Corp\"]\n");
    let r = env.run("keygate", &["check", "--plain-http"]);
    r.code(2);
    assert!(r.stderr.contains("server.strip_headers"), "{}", r.stderr);
    assert!(r.stderr.contains("X Corp"), "{}", r.stderr);
}

/// Issue 13: `fd00:ec2::254` and `100.100.100.200` were accepted as upstreams; every spelling
/// of a metadata address is refused at start-up, with exit 2 and a hint.
#[test]
fn cloud_metadata_is_no_upstream_in_any_spelling() {
    let env = Env::new();
    for upstream in [
        "http://100.100.100.200",
        "http://[fd00:ec2::254]",
        "http://[::ffff:100.100.100.200]",
        "http://[::ffff:169.254.169.254]",
        "http://[64:ff9b::a9fe:a9fe]",
        "http://169.254.170.2",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://1684301000/",
        "http://metadata.google.internal/",
    ] {
        for cmd in ["check", "serve"] {
            let r = env.run(
                "keygate",
                &[
                    cmd,
                    "--plain-http",
                    "--listen",
                    "127.0.0.1:1",
                    "--upstream",
                    upstream,
                ],
            );
            r.code(2);
            assert!(
                r.stderr.contains("metadata") || r.stderr.contains("link-local"),
                "{cmd} {upstream}: {}",
                r.stderr
            );
            assert!(r.stderr.contains("hint:"), "{cmd} {upstream}: {}", r.stderr);
        }
    }
}

/// A `.internal` name that resolves to a metadata address (here through `/etc/hosts`, in a
/// mount and network namespace of its own) is never connected to by `keygate check`: the
/// check fails and says why, and the listener there saw no connection. An allowed name is
/// probed, and the check says so.
#[test]
fn keygate_check_never_probes_an_address_the_policy_refuses() {
    if !have("unshare") || !have("python3") || !have("ip") {
        return;
    }
    let env = Env::new();
    let hosts = env.root().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n100.100.100.200 meta.internal\n127.0.0.1 app.internal\n",
    )
    .unwrap();
    let seen = env.root().join("seen");
    let listener = "import socket, sys\n\
                    s = [socket.create_server((a, 8080)) for a in ('100.100.100.200', '127.0.0.1')]\n\
                    open(sys.argv[1] + '.ready', 'w').close()\n\
                    import selectors\n\
                    sel = selectors.DefaultSelector()\n\
                    [sel.register(x, selectors.EVENT_READ) for x in s]\n\
                    while True:\n    \
                        for k, _ in sel.select():\n        \
                            c, peer = k.fileobj.accept()\n        \
                            open(sys.argv[1], 'a').write(k.fileobj.getsockname()[0] + '\\n')\n        \
                            c.close()\n";
    let keygate = env.cmd("keygate");
    let script = "set -e\n\
                  mount --bind \"$KG_HOSTS\" /etc/hosts\n\
                  ip link set lo up\n\
                  ip addr add 100.100.100.200/32 dev lo\n\
                  python3 -c \"$KG_LISTENER\" \"$KG_SEEN\" </dev/null >/dev/null 2>&1 &\n\
                  listener=$!\n\
                  n=0; while [ ! -e \"$KG_SEEN.ready\" ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done\n\
                  for name in meta.internal app.internal; do\n  \
                    \"$KG_BIN\" check --plain-http --upstream \"http://$name:8080\" > \"$KG_SEEN.$name\" 2>&1 \
                    && echo 0 >> \"$KG_SEEN.$name\" || echo $? >> \"$KG_SEEN.$name\"\n\
                  done\n\
                  n=0; while [ ! -s \"$KG_SEEN\" ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done\n\
                  kill $listener\n";
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--net", "--", "sh", "-c", script]);
    for (k, v) in keygate.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("KG_BIN", keygate.get_program())
        .env("KG_HOSTS", &hosts)
        .env("KG_LISTENER", listener)
        .env("KG_SEEN", &seen);
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |suffix: &str| {
        std::fs::read_to_string(format!("{}{suffix}", seen.display())).unwrap_or_default()
    };
    let meta = read(".meta.internal");
    assert!(
        meta.contains("FAIL") && meta.contains("upstream") && meta.contains("100.100.100.200"),
        "{meta}"
    );
    assert!(meta.contains("metadata"), "{meta}");
    assert_eq!(meta.lines().last(), Some("1"), "{meta}");
    let app = read(".app.internal");
    assert!(
        app.contains(
            "connected to 127.0.0.1:8080 and closed the connection without sending a request"
        ),
        "{app}"
    );
    // The listener saw the allowed probe and nothing else. (The script waits for the
    // listener to record the allowed probe before stopping it: the probe's connect returns
    // before the listener has run its accept, so an earlier kill raced it.)
    assert_eq!(read(""), "127.0.0.1\n", "meta:\n{meta}\napp:\n{app}");
}
