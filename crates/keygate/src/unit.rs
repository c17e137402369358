//! `keygate unit`: a systemd service running `keygate serve`, ready to install, hardened for
//! a system install, and a logrotate snippet for a file audit log. Printed like `certctl
//! schedule` prints the renewal timer: the same home, the same rule for what root runs.

use kg_cli::{CliError, ExitStatus, GlobalArgs, out};
use kg_server::AuditTarget;

#[derive(Debug, clap::Args)]
pub(crate) struct UnitArgs {
    /// For a system-wide install (root; KEYGATE_HOME, else /var/lib/keygate) instead of the
    /// current user's systemd
    #[arg(long)]
    system: bool,
    #[command(flatten)]
    flags: crate::serve::ServerFlags,
}

pub(crate) fn run(global: &GlobalArgs, args: &UnitArgs) -> Result<ExitStatus, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find keygate's own path: {e}")))?;
    if args.system {
        // Root runs this binary: one another user owns or can replace would run their code.
        kg_fs::trust::check_owned_by_root("keygate binary", &exe)
            .map_err(|e| CliError::classified(&e, e.hint(), true, false))?;
    }
    let locations = global.locations()?;
    let home = if args.system {
        Some(
            kg_cascade::renew::system_home(&locations)
                .map_err(|(message, hint)| CliError::usage(message).with_hint(hint))?,
        )
    } else {
        locations.home.as_ref().map(|h| h.display().to_string())
    };
    // What the service will load, so that the unit grants exactly what it needs.
    let settings = crate::serve::settings(global, &args.flags)?;
    let serve_flags = args.flags.as_args();
    let audit = match &settings.audit {
        AuditTarget::File(path) => Some(path.clone()),
        AuditTarget::Stderr => None,
    };
    let low_port = settings.listen.iter().any(|a| a.port() < 1024);

    let mut service = String::from(
        "[Unit]\nDescription=keygate: verify tokens, answer /auth, protect web apps\n\
         Wants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=exec\n",
    );
    if let Some(h) = &home {
        service.push_str(&format!(
            "Environment={}\n",
            kg_cli::quote_if_needed(&format!("KEYGATE_HOME={h}"))
        ));
    }
    // glibc raises its mmap threshold each time a large block is freed, after which the
    // megabyte-sized arrays of each token-store reload stay in the heap, fragmented: at
    // 100,000 tokens resident memory settles near 330 MB instead of 92 (BENCHMARKS.md,
    // `reload`). A fixed threshold keeps them in mappings returned on free.
    service.push_str("Environment=MALLOC_MMAP_THRESHOLD_=1048576\n");
    let exec: Vec<String> = std::iter::once(exe.display().to_string())
        .chain(std::iter::once("serve".to_owned()))
        .chain(serve_flags)
        .map(|a| kg_cli::quote_if_needed(&a))
        .collect();
    service.push_str(&format!(
        "ExecStart={}\n\
         # SIGHUP reopens a file audit log (for logrotate); certificates and tokens reload by\n\
         # themselves.\n\
         ExecReload=/bin/kill -HUP $MAINPID\nRestart=on-failure\nRestartSec=2\nUMask=0077\n\
         NoNewPrivileges=yes\n",
        exec.join(" ")
    ));
    if args.system {
        // serve reads its home and writes only the audit log.
        // A home under /tmp (a trial) would vanish behind a private /tmp.
        let in_tmp = home
            .as_deref()
            .is_some_and(|h| h.starts_with("/tmp/") || h.starts_with("/var/tmp/"));
        if !in_tmp {
            service.push_str("PrivateTmp=yes\n");
        }
        service.push_str(
            "ProtectSystem=strict\nProtectHome=read-only\nPrivateDevices=yes\n\
             ProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\n\
             ProtectControlGroups=yes\nProtectClock=yes\nProtectHostname=yes\n\
             RestrictNamespaces=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\n\
             LockPersonality=yes\nMemoryDenyWriteExecute=yes\nSystemCallArchitectures=native\n\
             # AF_NETLINK: the localhost bypass asks the kernel who owns a loopback peer.\n\
             RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n",
        );
        if low_port {
            service.push_str(
                "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n\
                 AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
            );
        } else {
            service.push_str("CapabilityBoundingSet=\n");
        }
        if let Some(dir) = audit.as_ref().and_then(|p| p.parent()) {
            service.push_str(&format!(
                "ReadWritePaths={}\n",
                kg_cli::quote_if_needed(&dir.display().to_string())
            ));
        }
        if home.as_deref() == Some(kg_cascade::renew::SYSTEM_HOME) {
            service.push_str("StateDirectory=keygate\nStateDirectoryMode=0700\n");
        }
    }
    let (unit_dir, user, target) = if args.system {
        ("/etc/systemd/system", "", "multi-user.target")
    } else {
        ("~/.config/systemd/user", "--user ", "default.target")
    };
    service.push_str(&format!("\n[Install]\nWantedBy={target}"));
    out(format!("# {unit_dir}/keygate.service"))?;
    out(service)?;
    if let Some(path) = &audit {
        let (file, how) = if args.system {
            ("/etc/logrotate.d/keygate", "")
        } else {
            (
                "a file your own logrotate reads (`logrotate --state ~/.local/state/logrotate.state FILE` from cron)",
                "--user ",
            )
        };
        out(format!("# {file}"))?;
        out(format!(
            "{} {{\n    weekly\n    rotate 8\n    compress\n    delaycompress\n    missingok\n    \
             notifempty\n    # keygate creates the new log itself, 0600, on SIGHUP.\n    nocreate\n    \
             postrotate\n        systemctl {how}reload keygate.service\n    endscript\n}}",
            kg_cli::quote_if_needed(&path.display().to_string())
        ))?;
    }
    out(format!(
        "# then: systemctl {user}daemon-reload && systemctl {user}enable --now keygate.service"
    ))?;
    Ok(ExitStatus::Success)
}
