//! `up`: parse the command line and run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = up::Cli::parse();
    up::main(cli)
}
