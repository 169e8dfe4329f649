//! `up config [stage]`: `up.json` as `up` reads it for a stage, defaults and overrides applied.

use crate::{Globals, Output, project};

/// Arguments of `up config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage whose overrides apply.
    #[arg(default_value = "staging")]
    pub stage: String,
}

/// Runs `up config`: the resolved configuration as JSON (pretty for `text`, one line for `json`).
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    let config = project::load(&globals.dir, &args.stage)?;
    let text = match globals.output {
        Output::Text => serde_json::to_string_pretty(&config)?,
        Output::Json => serde_json::to_string(&config)?,
    };
    println!("{text}");
    Ok(())
}
