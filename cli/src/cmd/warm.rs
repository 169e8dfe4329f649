//! `up warm` (being written).

use crate::Globals;

/// Arguments of `up warm`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up warm`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up warm is not built yet")
}
