//! The project: its directory and its `up.json` resolved for a stage.

use std::path::Path;
use up_config::Config;

/// `up.json` in `dir`, with `stage`'s overrides applied. The error (a `ConfigError`) already
/// names the file and the key.
pub fn load(dir: &Path, stage: &str) -> anyhow::Result<Config> {
    Ok(up_config::load(dir, Some(stage))?)
}
