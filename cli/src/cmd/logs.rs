//! `up logs` (being written).

use crate::Globals;

/// Arguments of `up logs`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up logs`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up logs is not built yet")
}
