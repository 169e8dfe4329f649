//! The project: its directory and its `up.json` resolved for a stage.

use anyhow::Context;
use std::path::Path;
use up_config::Config;

/// `up.json` in `dir`, with `stage`'s overrides applied.
pub fn load(dir: &Path, stage: &str) -> anyhow::Result<Config> {
    up_config::load(dir, Some(stage))
        .with_context(|| format!("loading {}", dir.join(up_config::FILE_NAME).display()))
}
