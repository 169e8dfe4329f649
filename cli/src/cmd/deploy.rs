//! `up deploy [stage]`: package the app and bring the stage's AWS resources to it.

use crate::aws::Clients;
use crate::deploy::{self, Options};
use crate::progress::Progress;
use crate::{Globals, Output, project};

/// Arguments of `up deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage: `staging`, `production`, or any key of `stages` in up.json.
    #[arg(default_value = "staging")]
    pub stage: String,
}

/// Runs `up deploy`: progress on stderr, then the URL (or the JSON summary) on stdout.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    deploy::check_stage(&args.stage)?;
    let config = project::load(&globals.dir, &args.stage)?;
    let clients = Clients::for_config(&config).await?;
    let progress = match globals.output {
        Output::Text => Progress::new(),
        Output::Json => Progress::plain(),
    };
    let options = Options {
        dir: globals.dir.clone(),
        stage: args.stage,
        dry_run: false,
    };
    let summary = deploy::deploy(&clients, &config, &options, &progress).await?;
    progress.finish();
    match globals.output {
        Output::Text => println!("{}", summary.url),
        Output::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
    }
    Ok(())
}
