//! `up version` (being written).

use crate::Globals;

/// Arguments of `up version`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up version`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up version is not built yet")
}
