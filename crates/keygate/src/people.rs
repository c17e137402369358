//! `keygate users` and `keygate groups`: the people who sign in to the portal, and the
//! groups that say where they may go. The work is kg-accounts' (`Admin`); this parses,
//! reads passwords without echo (never from argv), prints, and maps errors to exit codes.

use std::path::PathBuf;
use std::sync::Arc;

use kg_accounts::admin::{Admin, AdminError, Bootstrap};
use kg_cli::{CliError, ExitStatus, GlobalArgs, note, out, out_doc, summary, summary_note, tty};
use kg_store::{SqliteStore, UserRecord};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

/// Where a new password comes from: a terminal prompt (twice, without echo) unless a
/// file or stdin is named.
#[derive(Debug, clap::Args)]
pub(crate) struct PasswordSource {
    /// Read the password from the first line of FILE
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    password_file: Option<PathBuf>,
    /// Read the password from the first line of standard input
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a person; prints a temporary password, to be changed at their first sign-in
    Add {
        /// Sign-in name: lowercase letters, digits and . _ - @
        name: String,
        /// Where password-reset links go
        #[arg(long)]
        email: Option<String>,
        /// Also add them to GROUP (repeatable; the groups must exist)
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List people
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one person
    Show {
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Set a person's password (prompted twice) or, with --temporary, print a new temporary one; ends their sessions
    Passwd {
        name: String,
        /// Make a temporary password instead, to be changed at the next sign-in
        #[arg(long, conflicts_with_all = ["password_file", "password_stdin"])]
        temporary: bool,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Refuse a person's sign-ins and end their sessions
    Disable { name: String },
    /// Let a disabled person sign in again
    Enable { name: String },
    /// Remove a person, their memberships and their sessions
    Remove { name: String },
    /// Make the first administrator (member of `admins`), prompting twice for the password; does nothing once `admins` has members
    BootstrapAdmin {
        /// Sign-in name
        #[arg(default_value = "admin")]
        name: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Enroll a TOTP second factor: prints the otpauth URI, its secret and ten recovery codes once
    Totp {
        name: String,
        /// Remove the second factor and recovery codes instead
        #[arg(long)]
        remove: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List a person's browser sessions (everyone's without NAME); --end ends them
    Sessions {
        name: Option<String>,
        /// End the sessions listed
        #[arg(long)]
        end: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum GroupsCommand {
    /// Make a group
    Add {
        name: String,
        /// What it is for
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List groups and their members
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a group (its members stay, without it)
    Remove { name: String },
    /// Add people to a group
    AddMember {
        group: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Take people out of a group
    RemoveMember {
        group: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AccessCommand {
    /// Say whether a person may enter a service, and which group lets them (or why not)
    Explain {
        /// The person
        #[arg(long)]
        user: String,
        /// The service ([service.NAME])
        #[arg(long)]
        service: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// `keygate audit`: the people's audit trail in the store.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Only this person's lines
    #[arg(long)]
    user: Option<String>,
    /// How far back, e.g. 24h or 30d
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    since: String,
    /// At most this many lines, newest first
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

struct Ctx {
    store: Arc<SqliteStore>,
    admin: Admin,
    now_ms: i64,
    realm: String,
    config: kg_config::Config,
}

fn open(global: &GlobalArgs) -> Result<Ctx, CliError> {
    let ctx = global.load(&[])?;
    let now = kg_cli::now(&ctx.config)?;
    let store = Arc::new(SqliteStore::open_in(&ctx.locations.state_dir).map_err(store_error)?);
    if let Some(e) = store.exposed() {
        kg_cli::warn_exposed(std::slice::from_ref(e));
    }
    Ok(Ctx {
        admin: Admin::new(store.clone()),
        store,
        now_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
        realm: ctx
            .config
            .str("server.realm")
            .unwrap_or("keygate")
            .to_owned(),
        config: ctx.config,
    })
}

fn store_error(e: kg_store::Error) -> CliError {
    admin_error(AdminError::Store(e))
}

fn admin_error(e: AdminError) -> CliError {
    CliError::classified(&e, e.hint(), e.is_usage(), false)
}

fn user_json(u: &UserRecord, groups: &[String]) -> serde_json::Value {
    json!({
        "name": u.name,
        "id": u.id,
        "email": u.email,
        "groups": groups,
        "state": if u.disabled { "disabled" } else { "active" },
        "must_change_password": u.must_change,
        "second_factor": u.totp.as_ref().map(|_| "totp"),
        "revision": u.revision,
        "created_at": kg_cli::rfc3339_millis(u.created),
        "changed_at": kg_cli::rfc3339_millis(u.changed),
    })
}

/// A new password from the named source, or prompted twice on the terminal.
fn read_password(source: &PasswordSource, what: &str) -> Result<SecretString, CliError> {
    let read_err = |from: String| {
        move |e: std::io::Error| {
            CliError::usage(format!("cannot read the password from {from}: {e}"))
        }
    };
    if let Some(file) = &source.password_file {
        let f = std::fs::File::open(file).map_err(read_err(format!("'{}'", file.display())))?;
        return tty::read_line(f).map_err(read_err(format!("'{}'", file.display())));
    }
    if source.password_stdin {
        return tty::read_line(std::io::stdin().lock()).map_err(read_err("stdin".into()));
    }
    let no_tty = || {
        CliError::usage(format!("no terminal to ask for {what}'s password on"))
            .with_hint("pass --password-file FILE or --password-stdin")
    };
    let first = tty::prompt_secret(&format!("New password for {what}: "))
        .map_err(read_err("the terminal".into()))?
        .ok_or_else(no_tty)?;
    let again = tty::prompt_secret("Again: ")
        .map_err(read_err("the terminal".into()))?
        .ok_or_else(no_tty)?;
    if first.expose_secret() != again.expose_secret() {
        return Err(CliError::usage(
            "the two passwords differ; nothing was changed",
        ));
    }
    Ok(first)
}

pub(crate) fn users(global: &GlobalArgs, cmd: &UsersCommand) -> Result<ExitStatus, CliError> {
    let c = open(global)?;
    match cmd {
        UsersCommand::Add {
            name,
            email,
            groups,
            json: as_json,
        } => {
            // The groups are checked before the person is added, so a typo adds nobody.
            for g in groups {
                if c.admin.group(g).map_err(admin_error)?.is_none() {
                    return Err(CliError::usage(format!("no group named '{g}'"))
                        .with_hint("`keygate groups add NAME` makes one"));
                }
            }
            let added = c
                .admin
                .add(name, email.as_deref(), None, c.now_ms)
                .map_err(admin_error)?;
            for g in groups {
                c.admin
                    .add_members(g, std::slice::from_ref(name), c.now_ms)
                    .map_err(admin_error)?;
            }
            let temporary = added.temporary.as_deref().map(String::as_str).unwrap_or("");
            if *as_json {
                let mut doc = user_json(&added.user, groups);
                doc["temporary_password"] = json!(temporary);
                out_doc("keygate.users.add/1", &doc)?;
            } else {
                summary_note(format!(
                    "added '{name}'; their temporary password is shown only this once, and must be \
                     changed at the first sign-in"
                ));
                out(temporary)?;
            }
        }
        UsersCommand::List { json: as_json } => {
            let all = c.admin.users().map_err(admin_error)?;
            if *as_json {
                let rows: Vec<_> = all.iter().map(|(u, g)| user_json(u, g)).collect();
                out_doc("keygate.users.list/1", &json!({ "users": rows }))?;
            } else if all.is_empty() {
                note("no people; `keygate users bootstrap-admin` makes the first administrator");
            } else {
                let rows: Vec<[String; 4]> = all
                    .iter()
                    .map(|(u, g)| {
                        [
                            u.name.clone(),
                            if u.disabled { "disabled" } else { "active" }.into(),
                            if u.totp.is_some() { "totp" } else { "-" }.into(),
                            g.join(","),
                        ]
                    })
                    .collect();
                kg_cli::table(["NAME", "STATE", "2FA", "GROUPS"], &rows)?;
            }
        }
        UsersCommand::Show {
            name,
            json: as_json,
        } => {
            let u = c.admin.user(name).map_err(admin_error)?;
            let groups = kg_store::UserStore::groups_of(&*c.store, &u.id).map_err(store_error)?;
            let doc = user_json(&u, &groups);
            if *as_json {
                out_doc("keygate.users.show/1", &doc)?;
            } else {
                out(serde_json::to_string_pretty(&doc).unwrap_or_default())?;
            }
        }
        UsersCommand::Passwd {
            name,
            temporary,
            source,
        } => {
            // The person must exist before anyone is asked for a password.
            c.admin.user(name).map_err(admin_error)?;
            if *temporary {
                let t = c
                    .admin
                    .set_password(name, None, c.now_ms)
                    .map_err(admin_error)?;
                summary_note(format!(
                    "'{name}' has a new temporary password, shown only this once; their sessions ended"
                ));
                out(t.as_deref().map(String::as_str).unwrap_or(""))?;
            } else {
                let p = read_password(source, name)?;
                c.admin
                    .set_password(name, Some(p.expose_secret()), c.now_ms)
                    .map_err(admin_error)?;
                summary(format!(
                    "set the password of '{name}'; their sessions ended"
                ))?;
            }
        }
        UsersCommand::Disable { name } | UsersCommand::Enable { name } => {
            let disable = matches!(cmd, UsersCommand::Disable { .. });
            let changed = c
                .admin
                .set_disabled(name, disable, c.now_ms)
                .map_err(admin_error)?;
            let state = if disable { "disabled" } else { "enabled" };
            if changed {
                summary(format!("{state} '{name}'"))?;
            } else {
                summary(format!("'{name}' was {state} already"))?;
            }
        }
        UsersCommand::Remove { name } => {
            if c.admin.remove(name, c.now_ms).map_err(admin_error)? {
                summary(format!("removed '{name}' and ended their sessions"))?;
            } else {
                summary(format!("there was no '{name}'"))?;
            }
        }
        UsersCommand::BootstrapAdmin { name, source } => {
            // Idempotent: nothing is asked when there is an administrator already.
            if let Some(g) = c.admin.group(kg_store::ADMINS).map_err(admin_error)?
                && !g.members.is_empty()
            {
                return report_bootstrap(&c, name, "");
            }
            kg_accounts::names::check_user(name).map_err(|e| admin_error(AdminError::Input(e)))?;
            let p = read_password(source, name)?;
            return report_bootstrap(&c, name, p.expose_secret());
        }
        UsersCommand::Totp {
            name,
            remove,
            json: as_json,
        } => {
            if *remove {
                if c.admin.remove_totp(name, c.now_ms).map_err(admin_error)? {
                    summary(format!("removed the second factor of '{name}'"))?;
                } else {
                    summary(format!("'{name}' had no second factor"))?;
                }
                return Ok(ExitStatus::Success);
            }
            let e = c
                .admin
                .enroll_totp(name, &c.realm, c.now_ms)
                .map_err(admin_error)?;
            let codes: Vec<&str> = e.recovery_codes.iter().map(|c| c.as_str()).collect();
            if *as_json {
                out_doc(
                    "keygate.users.totp/1",
                    &json!({
                        "name": name,
                        "otpauth_uri": e.uri.as_str(),
                        "secret": e.secret.as_str(),
                        "recovery_codes": codes,
                    }),
                )?;
            } else {
                summary_note(format!(
                    "enrolled a TOTP second factor for '{name}': add the URI (or the secret) to an \
                     authenticator app; the recovery codes work once each; all are shown only this once"
                ));
                out(e.uri.as_str())?;
                out(e.secret.as_str())?;
                for code in codes {
                    out(code)?;
                }
            }
        }
        UsersCommand::Sessions {
            name,
            end,
            json: as_json,
        } => return sessions(&c, name.as_deref(), *end, *as_json),
    }
    Ok(ExitStatus::Success)
}

fn report_bootstrap(c: &Ctx, name: &str, password: &str) -> Result<ExitStatus, CliError> {
    match c
        .admin
        .bootstrap_admin(name, password, c.now_ms)
        .map_err(admin_error)?
    {
        Bootstrap::Created(u) => summary(format!(
            "made '{}' the first administrator (group '{}')",
            u.name,
            kg_store::ADMINS
        ))?,
        Bootstrap::Exists(names) => summary(format!(
            "nothing to do: '{}' has members already ({})",
            kg_store::ADMINS,
            names.join(", ")
        ))?,
    }
    Ok(ExitStatus::Success)
}

fn sessions(c: &Ctx, name: Option<&str>, end: bool, as_json: bool) -> Result<ExitStatus, CliError> {
    use kg_store::{SessionStore as _, UserStore as _};
    let users = c.store.users().map_err(store_error)?;
    let name_of = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| users.iter().find(|u| &u.id == id))
            .map(|u| u.name.clone())
    };
    let list = match name {
        Some(n) => {
            let u = c.admin.user(n).map_err(admin_error)?;
            c.store.sessions_of_user(&u.id).map_err(store_error)?
        }
        None => c.store.all_sessions().map_err(store_error)?,
    };
    let rows: Vec<_> = list
        .iter()
        .map(|s| {
            json!({
                "user": name_of(&s.user_id),
                "token_id": (!s.token_id.is_empty()).then_some(&s.token_id),
                "created_at": kg_cli::rfc3339_millis(s.created),
                "used_at": kg_cli::rfc3339_millis(s.used),
            })
        })
        .collect();
    let mut ended = 0;
    if end {
        for s in &list {
            ended += usize::from(c.store.end_session(&s.digest).map_err(store_error)?);
        }
    }
    if as_json {
        out_doc(
            "keygate.users.sessions/1",
            &json!({ "sessions": rows, "ended": ended }),
        )?;
    } else if end {
        summary(format!("ended {ended} session(s)"))?;
    } else if list.is_empty() {
        note("no sessions");
    } else {
        let table: Vec<[String; 4]> = list
            .iter()
            .map(|s| {
                [
                    name_of(&s.user_id).unwrap_or_else(|| "-".into()),
                    if s.token_id.is_empty() {
                        "-".into()
                    } else {
                        s.token_id.clone()
                    },
                    kg_cli::rfc3339_millis(s.created),
                    kg_cli::rfc3339_millis(s.used),
                ]
            })
            .collect();
        kg_cli::table(["USER", "TOKEN", "BEGAN", "LAST USED"], &table)?;
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn groups(global: &GlobalArgs, cmd: &GroupsCommand) -> Result<ExitStatus, CliError> {
    let c = open(global)?;
    match cmd {
        GroupsCommand::Add { name, description } => {
            if c.admin
                .add_group(name, description, c.now_ms)
                .map_err(admin_error)?
            {
                summary(format!("made group '{name}'"))?;
            } else {
                summary(format!("group '{name}' exists already"))?;
            }
        }
        GroupsCommand::List { json: as_json } => {
            let all = c.admin.groups().map_err(admin_error)?;
            if *as_json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|(g, members)| {
                        json!({
                            "name": g.name,
                            "description": g.description,
                            "members": members,
                            "created_at": kg_cli::rfc3339_millis(g.created),
                        })
                    })
                    .collect();
                out_doc("keygate.groups.list/1", &json!({ "groups": rows }))?;
            } else if all.is_empty() {
                note("no groups; `keygate groups add NAME` makes one");
            } else {
                let rows: Vec<[String; 3]> = all
                    .iter()
                    .map(|(g, m)| [g.name.clone(), m.join(","), g.description.clone()])
                    .collect();
                kg_cli::table(["GROUP", "MEMBERS", "DESCRIPTION"], &rows)?;
            }
        }
        GroupsCommand::Remove { name } => {
            if c.admin.remove_group(name, c.now_ms).map_err(admin_error)? {
                summary(format!("removed group '{name}'"))?;
            } else {
                summary(format!("there was no group '{name}'"))?;
            }
        }
        GroupsCommand::AddMember { group, users } => {
            let n = c
                .admin
                .add_members(group, users, c.now_ms)
                .map_err(admin_error)?;
            summary(format!("added {n} member(s) to '{group}'"))?;
        }
        GroupsCommand::RemoveMember { group, users } => {
            let n = c
                .admin
                .remove_members(group, users, c.now_ms)
                .map_err(admin_error)?;
            summary(format!("took {n} member(s) out of '{group}'"))?;
        }
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn access(global: &GlobalArgs, cmd: &AccessCommand) -> Result<ExitStatus, CliError> {
    let AccessCommand::Explain {
        user,
        service,
        json: as_json,
    } = cmd;
    let c = open(global)?;
    let Some((_, s)) = c.config.services().find(|(n, _)| n == service) else {
        let names: Vec<&str> = c.config.services().map(|(n, _)| n).collect();
        return Err(
            CliError::usage(format!("no service named '{service}'")).with_hint(
                if names.is_empty() {
                    "add a [service.NAME] table to the config".to_owned()
                } else {
                    format!("the services are: {}", names.join(", "))
                },
            ),
        );
    };
    let u = c.admin.user(user).map_err(admin_error)?;
    let groups = kg_store::UserStore::groups_of(&*c.store, &u.id).map_err(store_error)?;
    let granting: Vec<&String> = s.groups.iter().filter(|g| groups.contains(g)).collect();
    let (allowed, why) = if u.disabled {
        (false, format!("'{user}' is disabled"))
    } else if s.groups.is_empty() {
        (
            true,
            format!("'{service}' admits everyone signed in (it names no groups)"),
        )
    } else if let Some(g) = granting.first() {
        (
            true,
            format!("'{user}' is in group '{g}', which '{service}' admits"),
        )
    } else {
        (
            false,
            format!(
                "'{service}' admits the groups {}; '{user}' is in {}",
                s.groups.join(", "),
                if groups.is_empty() {
                    "none".to_owned()
                } else {
                    groups.join(", ")
                }
            ),
        )
    };
    if *as_json {
        out_doc(
            "keygate.access.explain/1",
            &json!({
                "user": user,
                "service": service,
                "allowed": allowed,
                "granted_by": granting,
                "service_groups": s.groups,
                "user_groups": groups,
                "reason": why,
            }),
        )?;
    } else {
        out(format!(
            "{}: {why}",
            if allowed { "allowed" } else { "refused" }
        ))?;
    }
    Ok(if allowed {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

pub(crate) fn audit(global: &GlobalArgs, a: &AuditArgs) -> Result<ExitStatus, CliError> {
    let c = open(global)?;
    let since = kg_config::parse_duration(&a.since).map_err(|e| {
        CliError::usage(format!("--since {:?}: {e}", a.since))
            .with_hint("for example 24h, 7d or 90d")
    })?;
    let since_ms = c
        .now_ms
        .saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    let lines = kg_store::UserStore::events(&*c.store, since_ms, a.user.as_deref(), a.limit)
        .map_err(store_error)?;
    if a.json {
        let rows: Vec<_> = lines
            .iter()
            .map(|e| {
                json!({
                    "at": kg_cli::rfc3339_millis(e.at),
                    "event": e.event,
                    "user": e.user,
                    "client": e.client,
                    "detail": e.detail,
                })
            })
            .collect();
        out_doc("keygate.audit/1", &json!({ "events": rows }))?;
    } else if lines.is_empty() {
        note("no audit lines in that time");
    } else {
        let rows: Vec<[String; 5]> = lines
            .iter()
            .map(|e| {
                [
                    kg_cli::rfc3339_millis(e.at),
                    e.event.clone(),
                    e.user.clone().unwrap_or_else(|| "-".into()),
                    e.client.clone().unwrap_or_else(|| "-".into()),
                    e.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        kg_cli::table(["AT", "EVENT", "USER", "CLIENT", "DETAIL"], &rows)?;
    }
    Ok(ExitStatus::Success)
}
