//! `up config` (being written).

use crate::Globals;

/// Arguments of `up config`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up config`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up config is not built yet")
}
