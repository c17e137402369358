//! Shell completions and man pages, generated from each binary's clap definition and
//! committed (`completions/`, `man/`) so that packagers and users need no build step.
//!
//! Each binary has a test that calls [`check`]: it fails when a committed file differs from
//! what the current definition generates. `cargo xtask codegen` runs those tests with
//! `KEYGATE_CODEGEN=write`, which rewrites the files instead.

use std::path::{Path, PathBuf};

/// The files generated for `cmd`, as (path relative to the repository, contents).
pub fn render(cmd: &clap::Command) -> Vec<(PathBuf, Vec<u8>)> {
    let name = cmd.get_name().to_owned();
    let mut files = Vec::new();
    for (shell, file) in [
        (
            clap_complete::Shell::Bash,
            format!("completions/{name}.bash"),
        ),
        (clap_complete::Shell::Zsh, format!("completions/_{name}")),
        (
            clap_complete::Shell::Fish,
            format!("completions/{name}.fish"),
        ),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut out);
        files.push((PathBuf::from(file), out));
    }
    let mut built = cmd.clone();
    built.build();
    man_pages(&built, &name, &mut files);
    files
}

/// `man/NAME.1`, and one page per subcommand (`NAME-SUB.1`, as the parent page's SEE ALSO
/// and SUBCOMMANDS sections name them), recursively.
fn man_pages(cmd: &clap::Command, name: &str, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name.to_owned()))
        .render(&mut man)
        .expect("rendering to memory cannot fail");
    files.push((PathBuf::from(format!("man/{name}.1")), man));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        man_pages(sub, &format!("{name}-{}", sub.get_name()), files);
    }
}

/// Compares (or, with `KEYGATE_CODEGEN=write`, rewrites) the committed files of `cmd` under
/// the repository root `repo`. Panics with the command that fixes a stale file.
pub fn check(cmd: &clap::Command, repo: &Path) {
    let write = std::env::var("KEYGATE_CODEGEN").as_deref() == Ok("write");
    for (rel, contents) in render(cmd) {
        let path = repo.join(&rel);
        if write {
            std::fs::create_dir_all(path.parent().expect("a file in a directory"))
                .expect("create the directory");
            std::fs::write(&path, &contents).expect("write the generated file");
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == contents,
            "{} is stale or missing: run `cargo xtask codegen` and commit the result",
            rel.display()
        );
    }
}
