//! `up url` (being written).

use crate::Globals;

/// Arguments of `up url`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up url`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up url is not built yet")
}
