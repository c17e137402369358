//! `cargo xtask bench oauth`: keygate's client-credentials token endpoint beside
//! node-oidc-provider, and `/auth` with keygate's JWTs beside API tokens and nginx, in the
//! same run.
//!
//! Issue 15. Both authorization servers issue Ed25519-signed JWT access tokens (RFC 9068)
//! for `grant_type=client_credentials&scope=deploy`, the client authenticated with HTTP
//! Basic, over plain HTTP on loopback (keygate `--plain-http`; oidc-provider 9.13.3 from
//! `fixtures/oidc-provider`, with its in-memory adapter): TLS is left out of both. The
//! `/auth` cases are keygate with an API token, with a JWT it has already seen (verified
//! once, then cached), and with JWTs it has never seen, beside nginx answering `/auth`
//! itself from a `map` holding the same API token and JWT (as in `bench server`).
//!
//! The first-seen case sends, each once, the tokens keygate issued in the same round's
//! token-endpoint case (wrk's Lua keeps every `access_token` it is given): distinct `jti`s,
//! none of them ever sent to `/auth`, so every request pays the signature check and the
//! cache insertion. It ends when they are used up, its requests/s over the time that took.
//!
//! As in `bench server`: wrk runs 32 connections, pinned to CPU 1, for 5 s a case; the
//! servers are pinned to CPU 0; a server's CPU per request is its user+sys from
//! `/proc/PID/stat` (every thread) over the case, divided by the responses wrk counted.
//! Every request and secret is in a Lua script (0600, in the scratch directory), not on
//! wrk's command line; the script counts the statuses, and a case with any status but the
//! expected one fails the benchmark. The cases run in rounds (`KEYGATE_BENCH_ROUNDS`, 3 by
//! default), keygate and its peer alternating; the table gives medians, the CPU column its
//! range too. keygate runs with the rate limiter off, as in `bench server`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::server::{
    Figures, RemoveOnDrop, Server, check, clock_ticks, cpu_model, field, median, micros,
    nginx_conf, nginx_on_cpu0, rounds, steal_ticks, wait_port,
};
use super::tool;

const CONNECTIONS: &str = "32";
const DURATION: &str = "5s";
/// The first-seen case ends when its tokens are used up, or after this long.
const FIRST_SEEN_LIMIT: &str = "8s";
/// The peer, pinned in `fixtures/oidc-provider/package-lock.json`.
const OIDC_PROVIDER: &str = "9.13.3";
/// What both servers are asked for.
const FORM: &str = "grant_type=client_credentials&scope=deploy";
/// Fewer first-seen tokens than this would measure little.
const MIN_TOKENS: usize = 1000;

pub(crate) fn run(root: &Path) -> Result<()> {
    let rounds = rounds()?;
    for t in ["wrk", "nginx", "taskset", "node"] {
        tool(t)?;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        bail!("this benchmark pins the servers and wrk to two different CPUs; it needs 2");
    }
    let fixture = root.join("fixtures/oidc-provider");
    let node_version = oidc_provider_fixture(&fixture)?;

    crate::run(
        "cargo",
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "keygate",
            "-p",
            "tokenctl",
        ],
    )?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let bin = target.join("release");
    // Private: the scripts, nginx.conf and the minted tokens hold credentials.
    let scratch = std::env::temp_dir().join(format!("keygate-bench-oauth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let _cleanup = RemoveOnDrop(scratch.clone());
    let home = scratch.join("home");
    std::fs::create_dir_all(&home)?;
    // Tokens live an hour rather than 10 minutes, so that the JWT the "seen" cases repeat
    // (issued once, before the rounds) outlives a long run; the lifetime costs nothing.
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[server]\nrate_limit_burst = 0\naudit_log = \"{}\"\n\n\
             [oauth]\nenabled = \"true\"\nsigning_alg = \"Ed25519\"\nclient_token_lifetime = \"1h\"\n",
            scratch.join("audit.log").display()
        ),
    )?;
    let tokenctl = |args: &[&str]| -> Result<String> {
        let out = Command::new(bin.join("tokenctl"))
            .args(args)
            .env("KEYGATE_HOME", &home)
            .output()
            .context("cannot run tokenctl")?;
        Ok(String::from_utf8(check(out)?.stdout)?)
    };
    let doc = tokenctl(&["create", "--name", "bench", "--scope", "deploy", "--json"])?;
    let api_token = json_str(&doc, "token").with_context(|| format!("no token in:\n{doc}"))?;
    let doc = tokenctl(&[
        "client", "create", "--name", "svc", "--scope", "deploy", "--json",
    ])?;
    let (Some(client_id), Some(client_secret)) =
        (json_str(&doc, "client_id"), json_str(&doc, "client_secret"))
    else {
        bail!("no client_id and client_secret in tokenctl's answer");
    };

    let port = |n: u16| 20_000 + (std::process::id() % 20_000) as u16 + n;
    let (kg, nx) = (port(20), port(21));
    let mut keygate = Server::spawn(
        "keygate",
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(bin.join("keygate"))
            .args(["serve", "--plain-http", "--listen"])
            .arg(format!("127.0.0.1:{kg}"))
            .env("KEYGATE_HOME", &home),
        &scratch.join("keygate.log"),
    )?;
    wait_port(kg).map_err(|e| with_log(e, &scratch.join("keygate.log")))?;
    let kg_basic = basic(&client_id, &client_secret);
    // The JWT the "seen" cases repeat: issued here, so also a check of the token endpoint.
    let (status, body) = http(kg, "POST", "/oauth/token", &token_headers(&kg_basic), FORM)?;
    if status != 200 {
        bail!("keygate's token endpoint answered {status}: {body}");
    }
    let jwt = json_str(&body, "access_token")
        .with_context(|| format!("no access_token in keygate's answer: {body}"))?;
    if json_str(&body, "token_type").as_deref() != Some("Bearer")
        || json_str(&body, "scope").as_deref() != Some("deploy")
    {
        bail!("keygate's token answer is not a Bearer token for scope deploy: {body}");
    }

    // oidc-provider, its client secret in a file rather than its argv.
    let oidc_config = scratch.join("oidc-provider.json");
    let oidc_secret = random_hex(24)?;
    write_private(
        &oidc_config,
        &format!("{{\"client_secret\": \"{oidc_secret}\"}}\n"),
    )?;
    let oidc_log = scratch.join("oidc-provider.log");
    let mut oidc = Server::spawn(
        "oidc-provider",
        Command::new("taskset")
            .args(["-c", "0", "node"])
            .arg(fixture.join("server.mjs"))
            .arg(&oidc_config)
            .env("NODE_ENV", "production")
            .current_dir(&fixture),
        &oidc_log,
    )?;
    let op = listening_port(&oidc_log)?;
    let op_basic = basic("svc", &oidc_secret);
    let (status, body) = http(op, "POST", "/token", &token_headers(&op_basic), FORM)?;
    if status != 200 || json_str(&body, "access_token").is_none() {
        bail!("oidc-provider's token endpoint answered {status}: {body}");
    }

    // nginx answering /auth from a map holding the API token and the JWT.
    let nginx_dir = scratch.join("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        nginx_conf(
            &nginx_dir,
            &format!(
                "  keepalive_requests 1000000;\n  map_hash_bucket_size 1024;\n  \
                 map $http_authorization $kg_ok {{\n    default 0;\n    \"Bearer {api_token}\" 1;\n    \
                 \"Bearer {jwt}\" 1;\n  }}\n  \
                 server {{\n    listen 127.0.0.1:{nx};\n    location = /auth {{\n      \
                 if ($kg_ok) {{ return 200; }}\n      \
                 add_header WWW-Authenticate 'Bearer realm=\"keygate\", error=\"invalid_token\"' always;\n      \
                 return 401;\n    }}\n  }}\n"
            ),
        ),
    )?;
    let mut nginx = nginx_on_cpu0(&nginx_dir, &scratch.join("nginx.log"))?;
    wait_port(nx).map_err(|e| with_log(e, &nginx_dir.join("error.log")))?;

    let kg_tokens = scratch.join("keygate-tokens.txt");
    let op_tokens = scratch.join("oidc-provider-tokens.txt");
    let bearer = |t: &str| vec![("Authorization", format!("Bearer {t}"))];
    let cases = [
        Case {
            name: "keygate /oauth/token, client_credentials",
            port: kg,
            request: Request::Post {
                path: "/oauth/token",
                headers: token_headers(&kg_basic),
                keep: kg_tokens.clone(),
            },
            on: On::Keygate,
        },
        Case {
            name: "oidc-provider /token, client_credentials",
            port: op,
            request: Request::Post {
                path: "/token",
                headers: token_headers(&op_basic),
                keep: op_tokens,
            },
            on: On::OidcProvider,
        },
        Case {
            name: "keygate /auth, API token",
            port: kg,
            request: Request::Get {
                headers: bearer(&api_token),
            },
            on: On::Keygate,
        },
        Case {
            name: "nginx map /auth, API token",
            port: nx,
            request: Request::Get {
                headers: bearer(&api_token),
            },
            on: On::Nginx,
        },
        Case {
            name: "keygate /auth, JWT (seen before)",
            port: kg,
            request: Request::Get {
                headers: bearer(&jwt),
            },
            on: On::Keygate,
        },
        Case {
            name: "nginx map /auth, JWT",
            port: nx,
            request: Request::Get {
                headers: bearer(&jwt),
            },
            on: On::Nginx,
        },
        Case {
            name: "keygate /auth, JWTs never seen",
            port: kg,
            request: Request::FirstSeen {
                tokens: kg_tokens.clone(),
            },
            on: On::Keygate,
        },
    ];
    let mut scripts = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let path = scratch.join(format!("case-{i}.lua"));
        write_private(&path, &case.request.lua())?;
        scripts.push(path);
    }

    // Every case once per round, keygate and its peer alternating, so that a disturbance of
    // the machine lands on both; the table gives each case's median.
    let mut runs: Vec<Vec<Figures>> = cases.iter().map(|_| Vec::new()).collect();
    let mut first_seen = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round} of {rounds}");
        for (i, case) in cases.iter().enumerate() {
            let server: &mut Server = match case.on {
                On::Keygate => &mut keygate,
                On::OidcProvider => &mut oidc,
                On::Nginx => &mut nginx,
            };
            let (r, counted) = wrk(case, &scripts[i], server)?;
            eprintln!(
                "  {}: {:.0} req/s, p50 {:.0} us, p99 {:.0} us, {:.1} us CPU/req, steal {:.1}%{}",
                case.name,
                r.rps,
                r.p50_us,
                r.p99_us,
                r.cpu_us,
                r.steal * 100.0,
                counted.note()
            );
            if let Request::FirstSeen { .. } = case.request {
                first_seen.push(counted.tokens);
            }
            runs[i].push(r);
        }
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| case | requests/s | p50 | p99 | server RSS (peak) | server CPU per request (range) | steal |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    let mut cpu = Vec::new();
    for (case, r) in cases.iter().zip(&runs) {
        let m = |f: fn(&Figures) -> f64| median(r.iter().map(f).collect());
        let (lo, hi) = r
            .iter()
            .map(|f| f.cpu_us)
            .fold((f64::MAX, 0f64), |(lo, hi), c| (lo.min(c), hi.max(c)));
        let rss = r.iter().map(|f| f.rss_kib).max().unwrap_or(0);
        let _ = writeln!(
            table,
            "| {} | {:.0} | {:.0} us | {:.2} ms | {:.1} MiB | {:.1} us ({lo:.1}-{hi:.1}) | {:.1}% |",
            case.name,
            m(|f| f.rps),
            m(|f| f.p50_us),
            m(|f| f.p99_us) / 1000.0,
            rss as f64 / 1024.0,
            m(|f| f.cpu_us),
            m(|f| f.steal) * 100.0,
        );
        cpu.push(m(|f| f.cpu_us));
    }
    let goal = |ok: bool| if ok { "met" } else { "missed" };
    println!("\n{table}");
    println!(
        "token endpoint, CPU per issued token (medians): keygate {:.1} us (goal < 50 us: {}), \
         oidc-provider {:.1} us; keygate / oidc-provider {:.3} (goal <= 0.1: {})",
        cpu[0],
        goal(cpu[0] < 50.0),
        cpu[1],
        cpu[0] / cpu[1],
        goal(cpu[0] / cpu[1] <= 0.1),
    );
    println!(
        "/auth, CPU per request (medians): JWT seen before / API token {:.2} (goal <= 1.2: {}); \
         JWT never seen / API token {:.2}, {:.1} us more than a JWT seen before (the signature \
         check and the cache insertion); keygate / nginx map: API token {:.2}, JWT {:.2}",
        cpu[4] / cpu[2],
        goal(cpu[4] / cpu[2] <= 1.2),
        cpu[6] / cpu[2],
        cpu[6] - cpu[4],
        cpu[2] / cpu[3],
        cpu[4] / cpu[5],
    );
    println!(
        "JWTs never seen: the tokens keygate issued in the same round's token case ({} a \
         round), each sent once to /auth; that case ends when they are used up, its \
         requests/s over the time that took",
        first_seen
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "wrk -t1 -c{CONNECTIONS} -d{DURATION} --latency on CPU 1; servers on CPU 0; plain HTTP \
         on loopback for both authorization servers (no TLS); Ed25519 JWTs from both; \
         oidc-provider {OIDC_PROVIDER} on node {node_version}, in-memory adapter; median of \
         {rounds} rounds; {}",
        cpu_model()
    );
    Ok(())
}

/// One case: a request (or a stream of them) and the server that answers it.
struct Case {
    name: &'static str,
    port: u16,
    request: Request,
    on: On,
}

enum On {
    Keygate,
    OidcProvider,
    Nginx,
}

enum Request {
    /// A client-credentials token request; the tokens issued are written to `keep`.
    Post {
        path: &'static str,
        headers: Vec<(&'static str, String)>,
        keep: PathBuf,
    },
    /// `GET /auth` with these headers.
    Get {
        headers: Vec<(&'static str, String)>,
    },
    /// `GET /auth` with each token in the file once.
    FirstSeen { tokens: PathBuf },
}

/// What a case's script counts, besides what wrk prints: the statuses, and the tokens it
/// kept or sent.
#[derive(Default)]
struct Counted {
    statuses: Vec<(u16, u64)>,
    tokens: usize,
    /// How long the first-seen case took to use its tokens up (seconds), if it did.
    used_up: Option<f64>,
}

impl Counted {
    fn note(&self) -> String {
        match self.used_up {
            Some(s) => format!(", {} tokens used up in {s:.2} s", self.tokens),
            None if self.tokens > 0 => format!(", {} tokens", self.tokens),
            None => String::new(),
        }
    }
}

/// Lua's status counting: the same in every script.
pub(super) const COUNT_STATUSES: &str = r#"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local function count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

local function report()
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do
      io.write("bench-status ", status, " ", n, "\n")
    end
  end
end
"#;

/// A monotonic clock for Lua, through LuaJIT's FFI (wrk has no clock of its own).
const CLOCK: &str = r#"
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *tp);
]]
local function now()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
"#;

impl Request {
    fn path(&self) -> &str {
        match self {
            Request::Post { path, .. } => path,
            Request::Get { .. } | Request::FirstSeen { .. } => "/auth",
        }
    }

    /// The wrk script that sends this request and counts the answers.
    fn lua(&self) -> String {
        let mut s = String::from("-- Written by `cargo xtask bench oauth`.\n");
        s.push_str(COUNT_STATUSES);
        match self {
            Request::Post { headers, keep, .. } => {
                let _ = writeln!(
                    s,
                    "\nwrk.method = \"POST\"\nwrk.body = {}",
                    lua_string(FORM)
                );
                for (k, v) in headers {
                    let _ = writeln!(s, "wrk.headers[{}] = {}", lua_string(k), lua_string(v));
                }
                let _ = write!(
                    s,
                    r#"
function init(args)
  statuses = {{}}
  kept = {{}}
end

function response(status, headers, body)
  count(status)
  if status == 200 then
    local token = body:match('"access_token":"([^"]+)"')
    if token then
      kept[#kept + 1] = token
    end
  end
end

function done(summary, latency, requests)
  report()
  local out = assert(io.open({}, "w"))
  local n = 0
  for _, t in ipairs(threads) do
    for _, token in ipairs(t:get("kept")) do
      out:write(token, "\n")
      n = n + 1
    end
  end
  out:close()
  io.write("bench-tokens ", n, "\n")
end
"#,
                    lua_string(&keep.to_string_lossy())
                );
            }
            Request::Get { headers } => {
                s.push('\n');
                for (k, v) in headers {
                    let _ = writeln!(s, "wrk.headers[{}] = {}", lua_string(k), lua_string(v));
                }
                s.push_str(
                    r#"
function init(args)
  statuses = {}
end

function response(status, headers, body)
  count(status)
end

function done(summary, latency, requests)
  report()
end
"#,
                );
            }
            Request::FirstSeen { tokens } => {
                s.push_str(CLOCK);
                let _ = write!(
                    s,
                    r#"
function init(args)
  statuses = {{}}
  queue = {{}}
  for token in io.lines({}) do
    queue[#queue + 1] = wrk.format("GET", "/auth", {{ Authorization = "Bearer " .. token }})
  end
  sent = 0
  started = now()
end

-- Each token once; when they are used up the thread stops, and a connection asking for
-- more meanwhile gets the last one again (its answer is never read).
function request()
  if sent == #queue then
    if not ended then
      ended = now()
      wrk.thread:stop()
    end
    return queue[#queue]
  end
  sent = sent + 1
  return queue[sent]
end

function response(status, headers, body)
  count(status)
end

function done(summary, latency, requests)
  report()
  for _, t in ipairs(threads) do
    io.write("bench-tokens ", #t:get("queue"), "\n")
    local ended = t:get("ended")
    if ended then
      io.write("bench-used-up ", ended - t:get("started"), "\n")
    end
  end
end
"#,
                    lua_string(&tokens.to_string_lossy())
                );
            }
        }
        s
    }
}

/// One case under wrk, `server`'s CPU time around it; bails on any unexpected answer.
fn wrk(case: &Case, script: &Path, server: &mut Server) -> Result<(Figures, Counted)> {
    // A request first checks that the case answers as it should (none for the first-seen
    // case: that would be one token seen).
    match &case.request {
        Request::Post { path, headers, .. } => {
            let (status, body) = http(case.port, "POST", path, headers, FORM)?;
            if status != 200 || json_str(&body, "access_token").is_none() {
                bail!("{}: answered {status}: {body}", case.name);
            }
        }
        Request::Get { headers } => {
            let (status, body) = http(case.port, "GET", "/auth", headers, "")?;
            if status != 200 {
                bail!("{}: answered {status}: {body}", case.name);
            }
        }
        Request::FirstSeen { tokens } => {
            let n = std::fs::read_to_string(tokens)?.lines().count();
            if n < MIN_TOKENS {
                bail!(
                    "{}: only {n} tokens were issued in the token case, fewer than {MIN_TOKENS}",
                    case.name
                );
            }
        }
    }
    let duration = match case.request {
        Request::FirstSeen { .. } => FIRST_SEEN_LIMIT,
        _ => DURATION,
    };
    let url = format!("http://127.0.0.1:{}{}", case.port, case.request.path());
    let before = server.cpu_ticks();
    let steal_before = steal_ticks();
    let started = Instant::now();
    let out = Command::new("taskset")
        .args([
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c",
            CONNECTIONS,
            "-d",
            duration,
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(&url)
        .output()
        .context("cannot run wrk")?;
    let after = server.cpu_ticks();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let steal = steal_ticks().saturating_sub(steal_before) as f64
        / (started.elapsed().as_secs_f64() * cpus * clock_ticks());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if text.contains("Socket errors") || text.contains("Non-2xx") {
        bail!("{}: wrk saw errors:\n{text}", case.name);
    }
    let requests: u64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no request count in:\n{text}"))?;
    let mut counted = Counted::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("bench-status"), Some(status), Some(n)) => {
                counted.statuses.push((status.parse()?, n.parse()?));
            }
            (Some("bench-tokens"), Some(n), None) => counted.tokens = n.parse()?,
            (Some("bench-used-up"), Some(s), None) => counted.used_up = Some(s.parse()?),
            _ => {}
        }
    }
    let answered: u64 = counted.statuses.iter().map(|(_, n)| n).sum();
    let wrong: Vec<String> = counted
        .statuses
        .iter()
        .filter(|(s, _)| *s != 200)
        .map(|(s, n)| format!("{n} x {s}"))
        .collect();
    if !wrong.is_empty() || answered != requests || requests == 0 {
        bail!(
            "{}: of {requests} answers, {answered} counted, not 200: {}\n{text}",
            case.name,
            if wrong.is_empty() {
                "none".to_owned()
            } else {
                wrong.join(", ")
            }
        );
    }
    if let Request::Post { .. } = case.request
        && counted.tokens as u64 != requests
    {
        bail!(
            "{}: {requests} answers but {} tokens in them",
            case.name,
            counted.tokens
        );
    }
    let rps: f64 = match counted.used_up {
        // wrk divides by its whole -d; the tokens were used up before it ran out.
        Some(secs) => requests as f64 / secs,
        None => field(&text, "Requests/sec:")
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no Requests/sec in:\n{text}"))?,
    };
    let pct = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    let cpu_us = (after - before) as f64 * 1e6 / clock_ticks() / requests as f64;
    Ok((
        Figures {
            rps,
            p50_us: micros(&pct("50%")),
            p99_us: micros(&pct("99%")),
            rss_kib: server.rss_peak_kib(),
            cpu_us,
            steal,
        },
        counted,
    ))
}

/// Installs `fixtures/oidc-provider` if it is not, checks the version, and says which node
/// runs it.
fn oidc_provider_fixture(fixture: &Path) -> Result<String> {
    if !fixture.join("node_modules").is_dir() {
        tool("npm")?;
        crate::run(
            "npm",
            &[
                "ci",
                "--prefix",
                &fixture.to_string_lossy(),
                "--no-audit",
                "--no-fund",
                "--silent",
            ],
        )?;
    }
    let manifest = fixture.join("node_modules/oidc-provider/package.json");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "cannot read {}: run npm ci --prefix {}",
            manifest.display(),
            fixture.display()
        )
    })?;
    let found = json_str(&text, "version").unwrap_or_default();
    if found != OIDC_PROVIDER {
        bail!(
            "oidc-provider {found} is installed in {}, not {OIDC_PROVIDER}: run npm ci --prefix {}",
            fixture.display(),
            fixture.display()
        );
    }
    let out = check(Command::new("node").arg("--version").output()?)?;
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// The port oidc-provider prints (`listening PORT`) once it listens.
fn listening_port(log: &Path) -> Result<u16> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = text
            .lines()
            .find_map(|l| l.strip_prefix("listening "))
            .and_then(|p| p.trim().parse().ok())
        {
            wait_port(port)?;
            return Ok(port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "oidc-provider did not say it listens:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    )
}

fn with_log(e: anyhow::Error, log: &Path) -> anyhow::Error {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    anyhow::anyhow!("{e}\n--- {}\n{text}", log.display())
}

/// The headers of a token request with HTTP Basic client authentication.
fn token_headers(basic: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("Authorization", format!("Basic {basic}")),
    ]
}

/// RFC 6749 §2.3.1: the id and the secret are form-urlencoded, then joined and base64'd.
fn basic(id: &str, secret: &str) -> String {
    base64(format!("{}:{}", form_encode(id), form_encode(secret)).as_bytes())
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._*".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `len` random bytes from the kernel, in hex.
fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The string value of `"key"`'s first occurrence in a JSON document; `None` if it is
/// missing, not a string, or has escapes (none of the values read here has any).
fn json_str(doc: &str, key: &str) -> Option<String> {
    let at = doc.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = doc[at..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let value = &rest[..rest.find('"')?];
    (!value.contains('\\')).then(|| value.to_owned())
}

/// A Lua string literal.
pub(super) fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if u32::from(c) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\{:03}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Creates `path` (it must not exist) readable by its owner only, holding `text`.
pub(super) fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// One HTTP/1.1 request on a new connection: the status and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP answer from port {port}: {answer}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in: {head}"))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_rfc_4648_base64_of_the_form_encoded_pair() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"svc:s3cret"), "c3ZjOnMzY3JldA==");
        assert_eq!(basic("a+b", "c:d%"), base64(b"a%2Bb:c%3Ad%25"));
    }

    #[test]
    fn json_strings_are_found_by_key() {
        let doc = "{\n  \"client_id\": \"kgc_1\",\n  \"n\": 3, \"client_secret\":\"s\"}";
        assert_eq!(json_str(doc, "client_id").as_deref(), Some("kgc_1"));
        assert_eq!(json_str(doc, "client_secret").as_deref(), Some("s"));
        assert_eq!(json_str(doc, "n"), None);
        assert_eq!(json_str(doc, "missing"), None);
        assert_eq!(json_str("{\"a\": \"x\\\"y\"}", "a"), None);
    }

    #[test]
    fn lua_strings_escape_what_lua_would_read() {
        assert_eq!(lua_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\010\"");
    }
}
