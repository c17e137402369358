//! The workspace's end-to-end scenarios, in one test binary: each module runs the real
//! binaries (built first by `test_support::bin`) against real peers, in isolated homes.
//! Support code is in `crates/test-support`. A missing peer skips its scenario, unless
//! `CI=true`, where it fails the run.

// Chromium, driven over WebDriver, signs in through keygate's reverse proxy on HTTPS.
mod browser;
// certctl's cascade (mkcert, fake tailscale, local CA), checked with openssl and curl.
mod certs;
// Conventions of every binary: exit codes, config resolution and explain, secrets, pipes.
mod cli;
// Issue 16 (first part): `tokenctl token` for machine clients, against keygate and
// node-oidc-provider: the cache, its lock under 20 processes, output formats, refusals.
mod client;
// Issue 14 item 13: every --json document against its schema and snapshot; log and audit lines.
mod json;
// The localhost bypass: only keygate's own user, as the kernel names it; relays are not local.
mod local_bypass;
// Issue 15: the OAuth authorization server against openid-client, jose, authlib and pyjwt.
mod oauth;
// Secret modes: reading never changes a secret; exposure is reported, doctor --fix narrows.
mod modes;
// Issue 13: every path form that parsers read differently, through keygate's proxy, nginx and
// Caddy, in front of Flask and Express; none reaches a route its token's scopes do not allow.
mod paths;
// People, groups and their sign-in (issue 17).
mod people;
// Several services behind one sign-in: the portal, launch tickets, per-host sessions.
mod portal;
// keygate as a reverse proxy: who gets through, what reaches the upstream, WebSockets.
mod proxy;
// The proxy's upstream policy and header policy: metadata addresses, identity headers.
mod proxy_policy;
// certctl renew, status, doctor and schedule: the cron contract.
mod renew;
// keygate serve and check without a proxy: /auth, TLS, limits, shutdown, reloads.
mod server;
// SIGHUP: the file audit log is reopened for logrotate, and the server keeps running.
mod server_audit;
// keygate behind Caddy's forward_auth, with the shipped example Caddyfile.
mod server_caddy;
// keygate behind HAProxy with the shipped example and its Lua auth-request action.
mod server_haproxy;
// keygate behind nginx's auth_request, with the shipped example configuration.
mod server_nginx;
// tokenctl: the store on disk, concurrency, lifecycle, client credentials, secrets, input.
mod tokens;
// tokenctl keygen, seal and unseal against Go age, both directions.
mod tokens_age;
// Issue 14: a tokenctl ensure or rotate killed at any instant converges when rerun.
mod tokens_crash;
// keygate up: the newcomer's main job, end to end.
mod up;
