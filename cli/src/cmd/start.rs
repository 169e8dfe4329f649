//! `up start` (being written).

use crate::Globals;

/// Arguments of `up start`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up start`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up start is not built yet")
}
