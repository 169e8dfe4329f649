//! The `up` command: deploy an unchanged HTTP server to AWS Lambda, run it locally exactly as
//! Lambda would, and operate it.
//!
//! # Layout
//! - `cmd`: one module per subcommand, each with its `Args` and `run`.
//! - `aws`: the AWS SDK configuration (`AWS_ENDPOINT_URL`, credential chain, `profile`, region).
//! - `project`: the project directory and its `up.json` for a stage.
//! - `names`: the deterministic names of every AWS resource up creates.
//! - `deploy`: `up deploy`'s steps (package, role, function, alias, front door, warmer), shared
//!   by `stack plan` (as a dry run) and `stack delete`.
//! - `error`: AWS failures classified into lines that say what to do.
//! - `progress`: a spinner on a terminal, plain lines otherwise.

pub mod aws;
pub mod cmd;
pub mod deploy;
pub mod error;
pub mod names;
pub mod progress;
pub mod project;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run any ordinary HTTP server on AWS Lambda, unchanged.
#[derive(Debug, Parser)]
#[command(name = "up", version, about, propagate_version = true)]
pub struct Cli {
    /// The project directory (holding `up.json`).
    #[arg(short = 'C', long = "dir", global = true, default_value = ".")]
    pub dir: PathBuf,
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Lines for people.
    Text,
    /// One JSON document for scripts.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the app locally exactly as Lambda would (HTTP API v2 events through the real bootstrap).
    Start(cmd::start::Args),
    /// Package and deploy the app to a stage (default `staging`).
    Deploy(cmd::deploy::Args),
    /// Print a stage's URL.
    Url(cmd::url::Args),
    /// Show or follow the function's logs.
    Logs(cmd::logs::Args),
    /// Point a stage back at the previous version (again to toggle).
    Rollback(cmd::rollback::Args),
    /// Warm a stage's instances now and report how many answered.
    Warm(cmd::warm::Args),
    /// Plan or delete every resource up created for the app.
    Stack(cmd::stack::Args),
    /// Print the resolved configuration for a stage.
    Config(cmd::config::Args),
    /// Write an `up.json` for the project in the current directory.
    Init(cmd::init::Args),
    /// Print up's version.
    Version(cmd::version::Args),
}

/// Global options every command sees.
#[derive(Debug, Clone)]
pub struct Globals {
    /// The project directory.
    pub dir: PathBuf,
    /// The output format.
    pub output: Output,
}

/// Runs the command line; errors become one line on stderr and exit status 1.
pub fn main(cli: Cli) -> ExitCode {
    let globals = Globals {
        dir: cli.dir,
        output: cli.output,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("up: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli.command, globals)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("up: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn stage_defaults_to_staging() {
        let cli = Cli::parse_from(["up", "deploy"]);
        assert!(matches!(cli.command, Command::Deploy(a) if a.stage == "staging"));
        let cli = Cli::parse_from(["up", "rollback", "production", "3"]);
        assert!(
            matches!(cli.command, Command::Rollback(a) if a.stage == "production" && a.to.as_deref() == Some("3"))
        );
    }
}
