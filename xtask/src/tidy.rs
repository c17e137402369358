//! `cargo xtask tidy`: fast checks of the source that keep ARCHITECTURE.md true.
//!
//! - **Layers**: the ```` ```layers ```` block in ARCHITECTURE.md lists every crate under
//!   `crates/`, top to bottom, each with exactly its in-workspace `[dependencies]`, and a
//!   crate only depends on crates drawn below it.
//! - **No two files import each other**: within a crate, module A naming `crate::b` (or
//!   `super::b`) while B names A is a cycle; one of them should own what both need.
//! - **Forbidden calls** ([`RULES`]): the one clock, the one crypto provider, the few
//!   environment readers, no `print!` outside kg-cli.
//! - **Every crate under `crates/` is described** in ARCHITECTURE.md (outside the block).
//!
//! Everything is line scanning, on purpose: no parser dependency, and each rule is simple
//! enough to explain in its failure message. Comments (`//` to the end of a line) are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// One finding: where (`path:line`, relative to the repository) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    at: String,
    what: String,
}

impl Problem {
    fn new(path: &str, line: usize, what: impl Into<String>) -> Problem {
        Problem {
            at: format!("{path}:{line}"),
            what: what.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

const ARCHITECTURE: &str = "ARCHITECTURE.md";

pub(crate) fn run(root: &Path) -> Result<()> {
    let problems = check(root)?;
    for p in &problems {
        eprintln!("{p}");
    }
    if !problems.is_empty() {
        bail!("tidy found {} problem(s)", problems.len());
    }
    eprintln!("tidy: ok");
    Ok(())
}

fn check(root: &Path) -> Result<Vec<Problem>> {
    let doc = read(root, ARCHITECTURE)?;
    let packages = packages(root)?;
    let mut problems = Vec::new();

    match parse_layers(&doc) {
        Ok(block) => {
            problems.extend(check_layers(&block, &packages));
            problems.extend(check_described(&doc, &block, &packages));
        }
        Err(p) => problems.push(p),
    }

    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(root, dir, &mut files)?;
    }
    let mut sources = Vec::new();
    for rel in files {
        let text = read(root, &rel)?;
        sources.push((rel, text));
    }
    for rule in RULES {
        for (rel, text) in &sources {
            problems.extend(check_rule(rule, rel, text));
        }
        problems.extend(stale_exceptions(rule, &sources));
    }
    let mut found = Vec::new();
    for p in packages.iter().filter(|p| p.has_src) {
        let prefix = format!("{}/src/", p.dir);
        let modules: Vec<(&str, &str)> = sources
            .iter()
            .filter_map(|(rel, text)| Some((rel.strip_prefix(&prefix)?, text.as_str())))
            .collect();
        for m in mutual_imports(&modules) {
            let (a, b) = (format!("{prefix}{}", m.a), format!("{prefix}{}", m.b));
            if !MUTUAL_ALLOWED.contains(&(a.as_str(), b.as_str())) {
                problems.push(Problem::new(
                    &a,
                    m.a_line,
                    format!(
                        "{} and {} import each other ({b}:{} names it back): move what both \
                         need into one of them, or into a third module both use",
                        m.a, m.b, m.b_line
                    ),
                ));
            }
            found.push((a, b));
        }
    }
    for (a, b) in MUTUAL_ALLOWED {
        if !found.iter().any(|(x, y)| x == a && y == b) {
            problems.push(Problem::new(
                THIS_FILE,
                line_in_this_file(a),
                format!(
                    "MUTUAL_ALLOWED lists {a} and {b}, which no longer import each other: \
                     remove the entry"
                ),
            ));
        }
    }
    Ok(problems)
}

const THIS_FILE: &str = "xtask/src/tidy.rs";

/// The line of this file where `entry` of an allow-list is written (quoted), for messages
/// that say which entry to remove.
fn line_in_this_file(entry: &str) -> usize {
    let quoted = format!("\"{entry}\"");
    include_str!("tidy.rs")
        .lines()
        .position(|l| l.contains(&quoted))
        .map_or(1, |i| i + 1)
}

fn read(root: &Path, rel: &str) -> Result<String> {
    std::fs::read_to_string(root.join(rel)).with_context(|| format!("cannot read {rel}"))
}

/// The `.rs` files under `dir` (relative to `root`), as sorted relative paths.
fn rust_files(root: &Path, dir: &str, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
        .with_context(|| format!("cannot list {dir}"))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = format!("{dir}/{name}");
        if e.file_type()?.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(root, &rel, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(rel);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Manifests and the layers block

/// A workspace member, as far as tidy cares.
#[derive(Debug)]
struct Package {
    name: String,
    /// Its directory, relative to the repository (`crates/kg-fs`).
    dir: String,
    /// Whether it lives under `crates/` (these must all be drawn and described).
    in_crates: bool,
    has_src: bool,
    manifest: Manifest,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Manifest {
    name: Option<String>,
    /// `[dependencies]` (and `[target.*.dependencies]`) entries: package name and line.
    deps: Vec<(String, usize)>,
}

/// Reads `[package] name` and the normal dependencies of a Cargo.toml, line by line. Dev- and
/// build-dependencies are left out: they do not make a layer. A renamed dependency counts
/// under its real name (`package = "..."`).
fn parse_manifest(text: &str) -> Manifest {
    #[derive(PartialEq)]
    enum Section {
        Package,
        Deps,
        /// `[dependencies.NAME]`: the entry was recorded at its header.
        DepTable,
        Other,
    }
    let mut m = Manifest::default();
    let mut section = Section::Other;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let n = i + 1;
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            let target_deps = header.starts_with("target.") && header.ends_with(".dependencies");
            section = if header == "package" {
                Section::Package
            } else if header == "dependencies" || target_deps {
                Section::Deps
            } else if let Some(name) = header.strip_prefix("dependencies.") {
                m.deps.push((unquote(name).to_owned(), n));
                Section::DepTable
            } else {
                Section::Other
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        match section {
            Section::Package if key == "name" => m.name = Some(unquote(value.trim()).to_owned()),
            Section::Deps => {
                let name = unquote(key.split('.').next().unwrap_or(key).trim());
                let real = value
                    .split_once("package")
                    .and_then(|(_, rest)| rest.trim_start().strip_prefix('='))
                    .and_then(|rest| rest.split('"').nth(1))
                    .unwrap_or(name);
                m.deps.push((real.to_owned(), n));
            }
            Section::DepTable if key == "package" => {
                if let Some(last) = m.deps.last_mut() {
                    last.0 = unquote(value.trim()).to_owned();
                }
            }
            _ => {}
        }
    }
    m
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '"' || c == '\'')
}

/// The workspace members named by the root manifest's `members` (`dir/*` globs expanded).
fn packages(root: &Path) -> Result<Vec<Package>> {
    let manifest = read(root, "Cargo.toml")?;
    let Some(list) = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members"))
        .and_then(|l| l.split_once('[').map(|(_, r)| r))
    else {
        bail!("Cargo.toml: no `members = [...]` line in [workspace]");
    };
    let mut dirs = Vec::new();
    for member in list
        .trim_end_matches(']')
        .split(',')
        .map(|m| unquote(m.trim()))
    {
        if member.is_empty() {
            continue;
        }
        if let Some(parent) = member.strip_suffix("/*") {
            let mut found: Vec<String> = std::fs::read_dir(root.join(parent))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("Cargo.toml").is_file())
                .map(|e| format!("{parent}/{}", e.file_name().to_string_lossy()))
                .collect();
            found.sort();
            dirs.extend(found);
        } else {
            dirs.push(member.to_owned());
        }
    }
    let mut packages = Vec::new();
    for dir in dirs {
        let rel = format!("{dir}/Cargo.toml");
        let manifest = parse_manifest(&read(root, &rel)?);
        let name = manifest
            .name
            .clone()
            .with_context(|| format!("{rel}: no [package] name"))?;
        packages.push(Package {
            name,
            in_crates: dir.starts_with("crates/"),
            has_src: root.join(&dir).join("src").is_dir(),
            dir,
            manifest,
        });
    }
    Ok(packages)
}

/// One line of the layers block: `crate: dep, dep`.
#[derive(Debug, PartialEq, Eq)]
struct Layer {
    name: String,
    deps: Vec<String>,
    line: usize,
}

/// The ```` ```layers ```` block of the `## Layers` section.
#[derive(Debug)]
struct Layers {
    /// The line of the opening fence.
    line: usize,
    /// The lines of the block, from its opening fence to its closing fence.
    span: (usize, usize),
    layers: Vec<Layer>,
}

fn parse_layers(doc: &str) -> Result<Layers, Problem> {
    let missing = || {
        Problem::new(
            ARCHITECTURE,
            1,
            "no `## Layers` section with a ```layers block: add one, a line `crate: dep, dep` \
             per crate under crates/, top to bottom",
        )
    };
    let lines: Vec<&str> = doc.lines().collect();
    let section = lines
        .iter()
        .position(|l| l.trim() == "## Layers")
        .ok_or_else(missing)?;
    let mut open = None;
    for (i, l) in lines.iter().enumerate().skip(section + 1) {
        if l.starts_with("## ") {
            break;
        }
        if l.trim() == "```layers" {
            open = Some(i);
            break;
        }
    }
    let open = open.ok_or_else(missing)?;
    let mut layers = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(open + 1) {
        let n = i + 1;
        let l = l.trim();
        if l == "```" {
            return Ok(Layers {
                line: open + 1,
                span: (open + 1, n),
                layers,
            });
        }
        if l.is_empty() {
            continue;
        }
        let Some((name, deps)) = l.split_once(':') else {
            return Err(Problem::new(
                ARCHITECTURE,
                n,
                format!(
                    "`{l}` is not `crate: dep, dep` (a crate without dependencies is `crate:`)"
                ),
            ));
        };
        layers.push(Layer {
            name: name.trim().to_owned(),
            deps: deps
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
            line: n,
        });
    }
    Err(Problem::new(
        ARCHITECTURE,
        open + 1,
        "the ```layers block is not closed: end it with ```",
    ))
}

/// The block against the manifests: complete, exact, and drawn top-down.
fn check_layers(block: &Layers, packages: &[Package]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |n: usize, what: String| Problem::new(ARCHITECTURE, n, what);
    let members: BTreeMap<&str, &Package> = packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut row: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, layer) in block.layers.iter().enumerate() {
        if let Some(first) = row.get(layer.name.as_str()) {
            problems.push(at(
                layer.line,
                format!(
                    "{} is drawn twice (also line {}): keep one line",
                    layer.name, block.layers[*first].line
                ),
            ));
        } else {
            row.insert(&layer.name, i);
        }
    }
    for p in packages.iter().filter(|p| p.in_crates) {
        if !row.contains_key(p.name.as_str()) {
            problems.push(at(
                block.line,
                format!(
                    "{} ({}) is missing from the layers block: add a line `{}: its deps`",
                    p.name, p.dir, p.name
                ),
            ));
        }
    }
    for (i, layer) in block.layers.iter().enumerate() {
        let Some(package) = members.get(layer.name.as_str()) else {
            problems.push(at(
                layer.line,
                format!(
                    "{} is not a workspace crate: fix or remove the line",
                    layer.name
                ),
            ));
            continue;
        };
        let manifest = format!("{}/Cargo.toml", package.dir);
        let mut actual: BTreeMap<&str, usize> = BTreeMap::new();
        for (dep, n) in &package.manifest.deps {
            if members.contains_key(dep.as_str()) && *dep != layer.name {
                actual.entry(dep).or_insert(*n);
            }
        }
        let drawn: BTreeSet<&str> = layer.deps.iter().map(String::as_str).collect();
        for (dep, n) in &actual {
            if !drawn.contains(dep) {
                problems.push(Problem::new(
                    &manifest,
                    *n,
                    format!(
                        "{} depends on {dep}, which the layers block ({ARCHITECTURE}:{}) does \
                         not draw: add it to that line, or drop the dependency",
                        layer.name, layer.line
                    ),
                ));
            }
        }
        for dep in &drawn {
            if !members.contains_key(dep) {
                problems.push(at(
                    layer.line,
                    format!(
                        "{dep} is not a workspace crate: remove it from {}'s line",
                        layer.name
                    ),
                ));
                continue;
            }
            if !actual.contains_key(dep) {
                problems.push(at(
                    layer.line,
                    format!(
                        "{} is drawn depending on {dep}, but {manifest} has no [dependencies] \
                         entry for it: remove it from the line",
                        layer.name
                    ),
                ));
            }
            if let Some(&j) = row.get(dep)
                && j <= i
            {
                problems.push(at(
                    layer.line,
                    format!(
                        "{} depends on {dep}, drawn above it (line {}): a crate may only \
                         depend on crates below it; move {dep} further down",
                        layer.name, block.layers[j].line
                    ),
                ));
            }
        }
    }
    problems
}

/// Every crate folder under `crates/` is named in ARCHITECTURE.md's prose (the layers block
/// does not count: it lists names, it does not say what a crate is for).
fn check_described(doc: &str, block: &Layers, packages: &[Package]) -> Vec<Problem> {
    let prose: String = doc
        .lines()
        .enumerate()
        .filter(|(i, _)| !(block.span.0..=block.span.1).contains(&(i + 1)))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    packages
        .iter()
        .filter(|p| p.in_crates)
        .filter_map(|p| {
            let folder = p.dir.rsplit('/').next().unwrap_or(&p.dir);
            (!prose.contains(folder)).then(|| {
                Problem::new(
                    ARCHITECTURE,
                    1,
                    format!(
                        "{} is not described: say what it is for in the codemap",
                        p.dir
                    ),
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Files that import each other

/// Known pairs (`a`, `b`, each a path relative to the repository, `a` < `b`) of files that
/// import each other: none since the kg-server split, and a new one needs a reason here.
const MUTUAL_ALLOWED: &[(&str, &str)] = &[];

#[derive(Debug, PartialEq, Eq)]
struct Mutual {
    /// The two files, relative to `src/`, `a` < `b`.
    a: String,
    b: String,
    /// The first line of each that names the other.
    a_line: usize,
    b_line: usize,
}

/// The module path of a file under `src/`: `a.rs` and `a/mod.rs` are `a`, `a/b.rs` is
/// `a::b`. `lib.rs` and `main.rs` (the root, which declares everything) have none.
fn module_of(file: &str) -> Option<Vec<String>> {
    let stem = file.strip_suffix(".rs")?;
    let mut parts: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.is_empty() || (parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main")) {
        return None;
    }
    Some(parts)
}

/// The paths a file names through `crate::` and `super::`, each with its line, as module
/// paths from the crate root (`crate::{a, b::c}` names `a` and `b::c`). Resolving them to
/// files happens later: most paths end in an item, not a module.
fn named_paths(module: &[String], text: &str) -> Vec<(Vec<String>, usize)> {
    let code: Vec<&str> = text.lines().map(code_part).collect();
    let mut found = Vec::new();
    for (i, line) in code.iter().enumerate() {
        for (prefix, base) in [
            ("crate::", Vec::new()),
            ("super::", module[..module.len() - 1].to_vec()),
        ] {
            let mut rest = *line;
            while let Some(at) = rest.find(prefix) {
                let before = rest[..at].chars().next_back();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                if let Some(group) = rest.strip_prefix('{') {
                    // A group may span lines: gather it up to its closing brace.
                    let mut text = group.to_owned();
                    let mut j = i + 1;
                    while depth(&text) >= 0 && j < code.len() {
                        text.push(' ');
                        text.push_str(code[j]);
                        j += 1;
                    }
                    for entry in top_level_entries(&text) {
                        found.push((join(&base, &entry), i + 1));
                    }
                } else {
                    found.push((join(&base, &path_prefix(rest)), i + 1));
                }
            }
        }
    }
    found
}

/// Brace depth at the end of `text`, starting inside one open brace (so -1 means closed).
fn depth(text: &str) -> i32 {
    text.chars().fold(0, |d, c| match c {
        '{' => d + 1,
        '}' => d - 1,
        _ => d,
    })
}

/// The leading `a::b::c` path segments of each entry of a `{...}` group, up to its closing
/// brace (nested groups contribute their prefix only).
fn top_level_entries(group: &str) -> Vec<Vec<String>> {
    let mut entries = Vec::new();
    let mut d = 0;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => d += 1,
            '}' if d == 0 => {
                entries.push(path_prefix(&group[start..i]));
                break;
            }
            '}' => d -= 1,
            ',' if d == 0 => {
                entries.push(path_prefix(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.retain(|e| !e.is_empty());
    entries
}

/// `a::b::Item` of `a::b::Item, ...`: the identifiers joined by `::` at the start of `s`.
fn path_prefix(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = s.trim_start();
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        parts.push(rest[..end].to_owned());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    parts
}

fn join(base: &[String], path: &[String]) -> Vec<String> {
    base.iter().chain(path).cloned().collect()
}

/// The pairs of module files (paths relative to `src/`, with their text) that name each
/// other. A file naming its own ancestor or descendant does not count: a parent declares
/// its children, so that relation is built in.
fn mutual_imports(files: &[(&str, &str)]) -> Vec<Mutual> {
    let modules: BTreeMap<Vec<String>, &str> = files
        .iter()
        .filter_map(|(f, _)| module_of(f).map(|m| (m, *f)))
        .collect();
    // edges[a][b]: the first line of file a that names module file b.
    let mut edges: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (file, text) in files {
        let Some(me) = module_of(file) else {
            continue;
        };
        for (path, line) in named_paths(&me, text) {
            // The longest prefix of the path that is a module file.
            let target = (1..=path.len())
                .rev()
                .find_map(|k| modules.get_key_value(&path[..k]));
            let Some((target, target_file)) = target else {
                continue;
            };
            if target.starts_with(&me) || me.starts_with(target) {
                continue;
            }
            edges
                .entry(file)
                .or_default()
                .entry(target_file)
                .or_insert(line);
        }
    }
    let mut pairs = Vec::new();
    for (a, targets) in &edges {
        for (b, a_line) in targets {
            if a < b
                && let Some(b_line) = edges.get(b).and_then(|t| t.get(a))
            {
                pairs.push(Mutual {
                    a: (*a).to_owned(),
                    b: (*b).to_owned(),
                    a_line: *a_line,
                    b_line: *b_line,
                });
            }
        }
    }
    pairs
}

// ---------------------------------------------------------------------------------------------
// Forbidden calls

/// A call that belongs in few places.
#[derive(Debug)]
struct Rule {
    /// Text that marks the call; it matches at the start of a path or macro name (so
    /// `println!` does not match inside `eprintln!`).
    patterns: &'static [&'static str],
    /// Where it belongs: path prefixes relative to the repository.
    home: &'static [&'static str],
    /// Where the rule is checked: path prefixes (empty: everywhere).
    scope: &'static [&'static str],
    /// Files outside `home` that still have it, each with the reason. An entry that no
    /// longer matches fails too, so that the list only shrinks.
    exceptions: &'static [(&'static str, &'static str)],
    /// Why, for the failure message.
    why: &'static str,
}

/// Test, example and benchmark code (test-support included) and xtask may do all of these:
/// they are not what ships. Inside `src/`, a test module is a file named `tests.rs` or
/// `testing.rs` (test helpers behind a `testing` feature), or the `#[cfg(test)] mod tests`
/// that ends a file (see [`shipped`]).
fn exempt(path: &str) -> bool {
    path.starts_with("xtask/")
        || path.ends_with("/tests.rs")
        || path.ends_with("/testing.rs")
        || path.starts_with("tests/")
        // The end-to-end tests' shared harness, once tests/ is one binary.
        || path.starts_with("crates/test-support/")
        || path
            .split('/')
            .any(|part| matches!(part, "tests" | "examples" | "benches"))
}

const RULES: &[Rule] = &[
    Rule {
        patterns: &["OffsetDateTime::now_utc"],
        home: &["crates/kg-cli/"],
        exceptions: &[
            // mkcert and tailscale date certificates by their own clock, after ours was
            // read: their output is verified against the later of the two.
            (
                "crates/kg-cascade/src/provision.rs",
                "external tools' certificates are checked against a clock read after they ran",
            ),
        ],
        scope: &[],
        why: "the clock is read in one place (`kg_cli::now`), so the test clock (test.now) \
              reaches everything: take `now` as an argument",
    },
    Rule {
        patterns: &["CryptoProvider", "default_provider"],
        home: &["crates/kg-tls/"],
        exceptions: &[],
        scope: &[],
        why: "one place names the rustls crypto provider (aws-lc-rs, ARCHITECTURE.md \"One \
              crypto decision\"): take a provider from it",
    },
    Rule {
        patterns: &["env::var"],
        home: &[
            "crates/kg-config/",
            // KEYGATE_CODEGEN, for the freshness tests.
            "crates/kg-cli/src/codegen.rs",
            // SSL_CERT_FILE and CAROOT: other tools' conventions.
            "crates/kg-cascade/src/lib.rs",
            // BROWSER, DISPLAY, WAYLAND_DISPLAY, SSH_CONNECTION: other tools' conventions.
            "crates/tokenctl/src/browser.rs",
            "crates/kg-cascade/src/tiers.rs",
        ],
        exceptions: &[],
        scope: &[],
        why: "only documented environment variables are read (ARCHITECTURE.md): read \
              settings through kg-config, or document the variable and add the file here",
    },
    Rule {
        patterns: &["print!", "println!", "eprint!", "eprintln!"],
        home: &["crates/kg-cli/"],
        exceptions: &[],
        scope: &[],
        why: "print! panics on a closed pipe (`| head` exited 101): use `kg_cli::out` for \
              output and `kg_cli::note` for notes",
    },
    Rule {
        patterns: &["chown(", "fchown(", "lchown(", "fchownat("],
        home: &["crates/kg-fs/"],
        exceptions: &[],
        scope: &[],
        why: "no secret root writes is owned by another user (ARCHITECTURE.md, ownership of \
              secrets): who owns a file keygate writes is decided in kg-fs alone",
    },
    Rule {
        patterns: &["\"sh\"", "\"/bin/sh\"", "\"bash\""],
        home: &["crates/kg-cascade/src/renew.rs"],
        exceptions: &[],
        scope: &[],
        why: "a shell command runs only in `run_deploy_hook`, after `check_deploy_hook` \
              (ARCHITECTURE.md, config integrity): no hook runs from a file another user can \
              change",
    },
    Rule {
        patterns: &["rusqlite"],
        home: &["crates/kg-store/"],
        exceptions: &[],
        scope: &[],
        why: "kg-store is the only crate that speaks SQL (ARCHITECTURE.md): add a method to \
              its trait, with a conformance check, and call that",
    },
    Rule {
        // Verifying a token or judging one by id, charging the failure limiter, checking a
        // scope, counting a decision, writing an audit line of one.
        patterns: &[
            ".verify(",
            ".check_id(",
            ".check_and_fail(",
            ".fail(",
            ".has_scope(",
            ".is_met_by(",
            ".decision(",
            ".log(&",
        ],
        home: &["crates/kg-verifier/"],
        exceptions: &[],
        // The server's rooms; kg-http defines the limiter, the audit sink and the metrics
        // (their own definitions and tests), and knows no credential to use them on.
        scope: &[
            "crates/kg-login/",
            "crates/kg-gateway/",
            "crates/kg-server/",
            "crates/keygate/",
        ],
        why: "kg-verifier is the only crate that decides whether a credential is good \
              (ARCHITECTURE.md): ask `Verifier::judge`, or `Verifier::record` for an outcome \
              decided without a credential",
    },
];

fn covered(prefixes: &[&str], path: &str) -> bool {
    prefixes.iter().any(|p| path.starts_with(p))
}

fn check_rule(rule: &Rule, path: &str, text: &str) -> Vec<Problem> {
    if exempt(path)
        || covered(rule.home, path)
        || !(rule.scope.is_empty() || covered(rule.scope, path))
        || rule.exceptions.iter().any(|(p, _)| *p == path)
    {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (i, line) in shipped(text).enumerate() {
        if let Some(pattern) = rule.patterns.iter().find(|p| mentions(code_part(line), p)) {
            problems.push(Problem::new(
                path,
                i + 1,
                format!(
                    "`{pattern}` belongs in {}; {}",
                    rule.home.join(", "),
                    rule.why
                ),
            ));
        }
    }
    problems
}

fn stale_exceptions(rule: &Rule, sources: &[(String, String)]) -> Vec<Problem> {
    rule.exceptions
        .iter()
        .filter(|(path, _)| {
            !sources.iter().any(|(p, text)| {
                p == path
                    && text
                        .lines()
                        .any(|l| rule.patterns.iter().any(|pat| mentions(code_part(l), pat)))
            })
        })
        .map(|(path, why)| {
            Problem::new(
                THIS_FILE,
                line_in_this_file(path),
                format!(
                    "the exception for `{}` in {path} ({why}) no longer applies: remove it \
                     from RULES",
                    rule.patterns.join("`, `")
                ),
            )
        })
        .collect()
}

/// The lines of `text` that ship: all of them up to a `#[cfg(test)]` followed by
/// `mod tests` (the test module that ends a file, by this workspace's convention).
fn shipped(text: &str) -> impl Iterator<Item = &str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]"
                && lines
                    .get(i + 1)
                    .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        })
        .unwrap_or(lines.len());
    lines.into_iter().take(end)
}

/// Whether `code` contains `pattern` where a name starts (not preceded by an identifier
/// character); a pattern that starts with `.` is a method call, after any receiver.
fn mentions(code: &str, pattern: &str) -> bool {
    code.match_indices(pattern).any(|(at, _)| {
        pattern.starts_with('.')
            || !code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// A line without its `//` comment (a `//` inside a string literal is not one).
fn code_part(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, toml: &str) -> Package {
        Package {
            name: name.to_owned(),
            dir: format!("crates/{name}"),
            in_crates: true,
            has_src: true,
            manifest: parse_manifest(toml),
        }
    }

    fn workspace() -> Vec<Package> {
        vec![
            package(
                "app",
                "[package]\nname = \"app\"\n\n[dependencies]\nmid.workspace = true\n\
                 low = { path = \"../low\" }\nserde.workspace = true\n\n\
                 [dev-dependencies]\ntest-only.workspace = true\n",
            ),
            package(
                "mid",
                "[package]\nname = \"mid\"\n[dependencies.low]\nworkspace = true\n",
            ),
            package("low", "[package]\nname = \"low\"\n[dependencies]\n"),
            package("test-only", "[package]\nname = \"test-only\"\n"),
        ]
    }

    fn problems_for(block: &str) -> Vec<String> {
        let doc = format!(
            "# A\n\napp mid low test-only described.\n\n## Layers\n\n```layers\n{block}```\n"
        );
        let layers = parse_layers(&doc).unwrap();
        let packages = workspace();
        let mut found: Vec<String> = check_layers(&layers, &packages)
            .iter()
            .map(ToString::to_string)
            .collect();
        found.extend(
            check_described(&doc, &layers, &packages)
                .iter()
                .map(ToString::to_string),
        );
        found
    }

    #[test]
    fn manifests_give_normal_dependencies_only() {
        let m = parse_manifest(
            "[package]\nname = \"x\" # a comment\n\n[dependencies]\na.workspace = true\n\
             b = { workspace = true, features = [\"f\"] }\nc2 = { package = \"c\", path = \"c\" }\n\
             [dependencies.d]\nworkspace = true\n[dependencies.e2]\npackage = \"e\"\n\
             [target.'cfg(unix)'.dependencies]\nf = \"1\"\n\
             [dev-dependencies]\ndev.workspace = true\n[build-dependencies]\nbuild = \"1\"\n",
        );
        assert_eq!(m.name.as_deref(), Some("x"));
        let names: Vec<&str> = m.deps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(m.deps[0].1, 5);
    }

    #[test]
    fn a_true_layers_block_passes() {
        let found = problems_for("app: mid, low\nmid: low\ntest-only:\nlow:\n");
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn a_layers_block_that_lies_fails_with_where_and_what() {
        // mid is missing from app's line, test-only's line is gone, low is drawn above mid,
        // and app is drawn depending on test-only (a dev-dependency).
        let found = problems_for("app: low, test-only\nlow:\nmid: low\n");
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("ARCHITECTURE.md:7: test-only (crates/test-only) is missing"));
        assert!(found[1].starts_with("crates/app/Cargo.toml:5: app depends on mid, which"));
        assert!(found[2].contains("app is drawn depending on test-only, but"));
        assert!(
            found[3].starts_with("ARCHITECTURE.md:10: mid depends on low, drawn above it (line 9)")
        );
    }

    #[test]
    fn a_crate_drawn_twice_or_unknown_fails() {
        let found = problems_for("app: mid, low\nmid: low\ntest-only:\nlow:\nlow:\nghost: low\n");
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("low is drawn twice (also line 11)"));
        assert!(found[1].contains("ghost is not a workspace crate"));
    }

    #[test]
    fn a_crate_named_only_in_the_block_is_not_described() {
        let doc = "# A\n\napp\n\n## Layers\n\n```layers\napp:\nmid:\n```\n";
        let layers = parse_layers(doc).unwrap();
        let packages = [package("app", ""), package("mid", "")];
        let found = check_described(doc, &layers, &packages);
        assert_eq!(found.len(), 1);
        assert!(found[0].what.starts_with("crates/mid is not described"));
    }

    #[test]
    fn a_missing_or_malformed_block_is_reported() {
        assert!(parse_layers("# A\n").is_err());
        assert!(parse_layers("## Layers\n\n```layers\napp:\n").is_err());
        let e = parse_layers("## Layers\n```layers\napp depends on mid\n```\n").unwrap_err();
        assert_eq!(e.at, "ARCHITECTURE.md:3");
    }

    #[test]
    fn modules_and_the_paths_they_name() {
        assert_eq!(module_of("lib.rs"), None);
        assert_eq!(module_of("a.rs"), Some(vec!["a".to_owned()]));
        assert_eq!(module_of("a/mod.rs"), Some(vec!["a".to_owned()]));
        assert_eq!(
            module_of("a/b.rs"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        let me = vec!["a".to_owned(), "b".to_owned()];
        let text = "use crate::x::Y; // crate::commented\nuse super::{c, d::E,\n  f::{g, h}};\n\
                    let s = \"not // a comment\"; my_crate::z(); super::*;";
        let named: Vec<(String, usize)> = named_paths(&me, text)
            .into_iter()
            .map(|(p, n)| (p.join("::"), n))
            .collect();
        let want = [
            ("x::Y", 1),
            ("a::c", 2),
            ("a::d::E", 2),
            ("a::f", 2),
            ("a", 4),
        ];
        let want: Vec<(String, usize)> = want.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect();
        assert_eq!(named, want);
    }

    #[test]
    fn files_that_import_each_other_are_found() {
        let files = [
            ("lib.rs", "mod a; mod b; mod c; use crate::a::A;"),
            ("a.rs", "use crate::b::B;\nuse crate::c;"),
            ("b.rs", "//! doc\nfn f() { crate::a::g(); }"),
            ("c.rs", "use crate::Root;"),
            // A child naming its parent and the parent naming the child are built in.
            ("c/d.rs", "use super::C;"),
            ("d.rs", "use crate::c::d::D;"),
        ];
        let found = mutual_imports(&files);
        assert_eq!(
            found,
            [Mutual {
                a: "a.rs".into(),
                b: "b.rs".into(),
                a_line: 1,
                b_line: 2
            }]
        );
        assert!(mutual_imports(&files[2..]).is_empty());
    }

    #[test]
    fn forbidden_calls_outside_their_home_fail() {
        let rule = &RULES[3];
        let bad = "fn f() {\n    println!(\"x\");\n}\n";
        let found = check_rule(rule, "crates/app/src/lib.rs", bad);
        assert_eq!(found.len(), 1);
        assert!(found[0].to_string().starts_with(
            "crates/app/src/lib.rs:2: `println!` belongs in crates/kg-cli/; print! panics"
        ));
        // Its home, test code, comments and longer names are fine.
        for home in [
            "crates/kg-cli/src/lib.rs",
            "crates/app/tests/t.rs",
            "xtask/src/main.rs",
        ] {
            assert!(check_rule(rule, home, bad).is_empty(), "{home}");
        }
        let fine = "// println!(\"x\")\nlet s = \"a // b\"; // println!\nmy_println!(x);";
        assert!(check_rule(rule, "crates/app/src/lib.rs", fine).is_empty());
        // eprintln! is its own pattern, not a match of println! inside it.
        let found = check_rule(rule, "crates/app/src/lib.rs", "eprintln!(\"x\");");
        assert!(found[0].what.starts_with("`eprintln!`"), "{found:?}");
    }

    #[test]
    fn only_the_verifier_judges_credentials_in_the_server_rooms() {
        let rule = RULES.last().unwrap();
        let judging = "fn f(t: &Tokens) {\n    t.verify(token, now, m, |v| v);\n}\n";
        let found = check_rule(rule, "crates/kg-gateway/src/lib.rs", judging);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].what.contains("Verifier::judge"), "{found:?}");
        for fine in [
            "crates/kg-verifier/src/lib.rs",
            // tokenctl verify checks a token offline, outside the server.
            "crates/tokenctl/src/tokens.rs",
            "crates/kg-login/src/tests.rs",
        ] {
            assert!(check_rule(rule, fine, judging).is_empty(), "{fine}");
        }
        let charge = "self.audit.log(&Entry { status: 401 });\nlimiter.fail(key);";
        assert_eq!(
            check_rule(rule, "crates/kg-login/src/lib.rs", charge).len(),
            2
        );
    }

    #[test]
    fn only_the_store_speaks_sql() {
        let rule = RULES
            .iter()
            .find(|r| r.patterns == ["rusqlite"])
            .expect("the SQL rule");
        let sql = "fn f(c: &rusqlite::Connection) {}\n";
        assert_eq!(check_rule(rule, "crates/kg-login/src/lib.rs", sql).len(), 1);
        assert!(check_rule(rule, "crates/kg-store/src/sqlite.rs", sql).is_empty());
    }

    #[test]
    fn the_test_module_that_ends_a_file_does_not_ship() {
        let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\n";
        assert_eq!(shipped(text).collect::<Vec<_>>(), ["fn a() {}"]);
        let gated = "#[cfg(test)]\nfn helper() {}\nfn c() {}";
        assert_eq!(shipped(gated).count(), 3);
    }

    #[test]
    fn an_exception_that_no_longer_applies_fails() {
        let clock = &RULES[0];
        let sources = |text: &str| -> Vec<(String, String)> {
            clock
                .exceptions
                .iter()
                .map(|(p, _)| ((*p).to_owned(), text.to_owned()))
                .collect()
        };
        assert!(stale_exceptions(clock, &sources("let t = OffsetDateTime::now_utc();")).is_empty());
        let stale = stale_exceptions(clock, &sources("// OffsetDateTime::now_utc()"));
        assert_eq!(stale.len(), clock.exceptions.len());
        assert!(stale[0].what.contains("no longer applies"));
        // It points at the entry to remove.
        let line: usize = stale[0].at.rsplit(':').next().unwrap().parse().unwrap();
        let entry = include_str!("tidy.rs").lines().nth(line - 1).unwrap();
        assert!(entry.contains(clock.exceptions[0].0), "{entry}");
    }

    #[test]
    fn comments_are_cut_outside_strings() {
        assert_eq!(code_part("a // b"), "a ");
        assert_eq!(code_part("\"http://x\" // c"), "\"http://x\" ");
        assert_eq!(code_part("\"\\\"//\" x"), "\"\\\"//\" x");
        assert_eq!(code_part("/// doc"), "");
    }
}
