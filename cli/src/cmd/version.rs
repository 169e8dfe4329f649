//! `up version`: the version of this `up`.

use crate::{Globals, Output};

/// Arguments of `up version`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up version`.
pub async fn run(_args: Args, globals: &Globals) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    match globals.output {
        Output::Text => println!("up {version}"),
        Output::Json => println!("{}", serde_json::json!({ "version": version })),
    }
    Ok(())
}
