//! `up url [stage]`: the URL of a deployed stage.

use crate::aws::Clients;
use crate::deploy::{Ctx, door};
use crate::progress::Progress;
use crate::{Globals, Output, names, project};
use anyhow::Context as _;

/// Arguments of `up url`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage.
    #[arg(default_value = "staging")]
    pub stage: String,
}

/// Runs `up url`.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    crate::deploy::check_stage(&args.stage)?;
    let config = project::load(&globals.dir, &args.stage)?;
    let clients = Clients::for_config(&config).await?;
    let progress = Progress::plain();
    let ctx = Ctx::new(&clients, &config, &args.stage, &progress, true);
    let kind = door::Kind::of(&config);
    let name = names::api(&config, &args.stage);
    let not_deployed = || {
        format!(
            "stage {} of {} is not deployed (no {} front door): run `up deploy {}`",
            args.stage,
            config.name,
            kind.name(),
            args.stage
        )
    };
    let (url, api_id) = match kind {
        door::Kind::Http => {
            let api = door::find_http(&ctx, &name)
                .await?
                .with_context(not_deployed)?;
            (
                format!(
                    "{}/",
                    api.api_endpoint().unwrap_or_default().trim_end_matches('/')
                ),
                api.api_id().map(str::to_owned),
            )
        }
        door::Kind::Rest => {
            let api = door::find_rest(&ctx, &name)
                .await?
                .with_context(not_deployed)?;
            let id = api.id().unwrap_or_default().to_owned();
            (door::rest_url(&clients.region, &id, &args.stage), Some(id))
        }
        door::Kind::Url => {
            let function = names::function_name(&config);
            let (url, _) = door::find_url(&ctx, &function, &names::alias(&args.stage))
                .await?
                .with_context(not_deployed)?;
            (url, None)
        }
    };
    match globals.output {
        Output::Text => println!("{url}"),
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "app": config.name,
                "stage": args.stage,
                "kind": kind,
                "url": url,
                "api_id": api_id,
            })
        ),
    }
    Ok(())
}
