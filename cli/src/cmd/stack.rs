//! `up stack` (being written).

use crate::Globals;

/// Arguments of `up stack`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `up stack`.
pub async fn run(_args: Args, _globals: &Globals) -> anyhow::Result<()> {
    anyhow::bail!("up stack is not built yet")
}
