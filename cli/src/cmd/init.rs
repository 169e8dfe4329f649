//! `up init` (being written).

use crate::Globals;

/// Arguments of `up init`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up init`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up init is not built yet")
}
