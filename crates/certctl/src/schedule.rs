//! `certctl schedule`: the renewal job for cron or systemd, ready to install.

use kg_cli::{CliError, ExitStatus, GlobalArgs, out};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["cron", "systemd"])))]
pub(crate) struct Args {
    /// Print a crontab line (twice a day; certctl adds its own random delay)
    #[arg(long)]
    cron: bool,
    /// Print a systemd service and timer (twice a day with RandomizedDelaySec)
    #[arg(long)]
    systemd: bool,
    /// For a system-wide install (root, /var/lib/keygate) instead of the current user
    #[arg(long)]
    system: bool,
}

pub(crate) fn run(global: &GlobalArgs, args: &Args) -> Result<ExitStatus, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find certctl's own path: {e}")))?;
    if args.system {
        // The job runs this binary as root: one that another user owns or can replace (a
        // copy in ~/bin, a group-writable /opt) would run their code as root (issue 13).
        kg_fs::trust::check_owned_by_root("certctl binary", &exe)
            .map_err(|e| CliError::classified(&e, e.hint(), true, false))?;
    }
    let exe = exe.display();
    // The job must find the same files this shell does, by the rule every command uses (a
    // relative KEYGATE_HOME is refused: cron would resolve it elsewhere).
    let locations = global.locations()?;
    let home = if args.system {
        Some(
            kg_cascade::renew::system_home(&locations)
                .map_err(|(message, hint)| CliError::usage(message).with_hint(hint))?,
        )
    } else {
        locations.home.as_ref().map(|h| h.display().to_string())
    };
    let mut vars: Vec<(&str, String)> = home.iter().map(|h| ("KEYGATE_HOME", h.clone())).collect();
    let (needed, warning) = kg_cascade::renew::job_env(&locations);
    if let Some(w) = warning {
        kg_cli::note(format!("warning: {w}"));
    }
    vars.extend(needed);
    if args.cron {
        let env: String = vars
            .iter()
            .map(|(k, v)| format!("{k}={} ", kg_cli::quote_if_needed(v)))
            .collect();
        let file = if args.system {
            "/etc/cron.d/keygate (with a user field: insert `root` after the times)"
        } else {
            "`crontab -e`"
        };
        out(format!(
            "# certctl renewal, twice a day; install with {file}"
        ))?;
        // Minute 17: off the hour, where every other job on the machine starts.
        out(format!("17 3,15 * * * {env}{exe} renew --all --wait 600"))?;
        return Ok(ExitStatus::Success);
    }
    let (unit_dir, user) = if args.system {
        ("/etc/systemd/system", "")
    } else {
        ("~/.config/systemd/user", "--user ")
    };
    let env: String = vars
        .iter()
        .map(|(k, v)| {
            format!(
                "Environment={}\n",
                kg_cli::quote_if_needed(&format!("{k}={v}"))
            )
        })
        .collect();
    let state = if args.system && home.as_deref() == Some(kg_cascade::renew::SYSTEM_HOME) {
        "StateDirectory=keygate\nStateDirectoryMode=0700\n"
    } else {
        ""
    };
    out(format!("# {unit_dir}/keygate-renew.service"))?;
    out(format!(
        "[Unit]\nDescription=Renew keygate certificates\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\n{env}{state}ExecStart={exe} renew --all --no-jitter --wait 600\nUMask=0077\nNoNewPrivileges=yes\nPrivateTmp=yes\n"
    ))?;
    out(format!("# {unit_dir}/keygate-renew.timer"))?;
    out("[Unit]\nDescription=Renew keygate certificates twice a day\n\n[Timer]\nOnCalendar=*-*-* 00,12:00:00\nRandomizedDelaySec=1h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n".to_string())?;
    out(format!(
        "# then: systemctl {user}daemon-reload && systemctl {user}enable --now keygate-renew.timer"
    ))?;
    Ok(ExitStatus::Success)
}
