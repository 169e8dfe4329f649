//! `up rollback` (being written).

use crate::Globals;

/// Arguments of `up rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up rollback`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up rollback is not built yet")
}
