//! `keygate store`: the database sign-in keeps its sessions in.

use std::path::PathBuf;

use kg_cli::{CliError, ExitStatus, GlobalArgs};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum StoreCommand {
    /// Write a consistent copy of the store to FILE (0600), while a server may be using it
    Backup {
        /// Where the copy goes (replaced whole, or left as it was on failure)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub(crate) fn run(global: &GlobalArgs, cmd: &StoreCommand) -> Result<ExitStatus, CliError> {
    match cmd {
        StoreCommand::Backup { file } => {
            let settings = crate::serve::settings(global, &crate::serve::ServerFlags::none())?;
            kg_server::backup_store(&settings, file).map_err(crate::serve::serve_error)?;
            kg_cli::summary(format!("backed up the store to '{}'", file.display()))?;
            Ok(ExitStatus::Success)
        }
    }
}
