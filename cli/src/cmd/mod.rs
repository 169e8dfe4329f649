//! One module per subcommand.

pub mod config;
pub mod deploy;
pub mod init;
pub mod logs;
pub mod rollback;
pub mod stack;
pub mod start;
pub mod url;
pub mod version;
pub mod warm;

use crate::{Command, Globals};

/// Runs one subcommand.
pub async fn run(command: Command, globals: Globals) -> anyhow::Result<()> {
    match command {
        Command::Start(args) => start::run(args, &globals).await,
        Command::Deploy(args) => deploy::run(args, &globals).await,
        Command::Url(args) => url::run(args, &globals).await,
        Command::Logs(args) => logs::run(args, &globals).await,
        Command::Rollback(args) => rollback::run(args, &globals).await,
        Command::Warm(args) => warm::run(args, &globals).await,
        Command::Stack(args) => stack::run(args, &globals).await,
        Command::Config(args) => config::run(args, &globals).await,
        Command::Init(args) => init::run(args, &globals).await,
        Command::Version(args) => version::run(args, &globals).await,
    }
}
