//! `up deploy` (being written).

use crate::Globals;

/// Arguments of `up deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up deploy`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up deploy is not built yet")
}
