//! `up rollback [stage] [version]`: point a stage back at the version it served before (or at
//! `version`). Each deploy and rollback records the version it moved away from, so a second
//! rollback toggles back.

use crate::aws::Clients;
use crate::deploy::{Ctx, alias, warmer};
use crate::progress::Progress;
use crate::{Globals, Output, names, project};
use anyhow::{Context as _, bail};

/// Arguments of `up rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage.
    #[arg(default_value = "staging")]
    pub stage: String,
    /// The version to serve (default: the one served before the last deploy or rollback).
    #[arg(id = "target_version", value_name = "VERSION")]
    pub to: Option<String>,
}

/// Runs `up rollback`.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    crate::deploy::check_stage(&args.stage)?;
    let config = project::load(&globals.dir, &args.stage)?;
    let clients = Clients::for_config(&config).await?;
    let progress = match globals.output {
        Output::Text => Progress::new(),
        Output::Json => Progress::plain(),
    };
    let ctx = Ctx::new(&clients, &config, &args.stage, &progress, false);
    let function = names::function_name(&config);
    let alias_name = names::alias(&args.stage);
    let resource = format!("alias {function}:{alias_name}");
    let lambda = &clients.lambda;
    let current = match lambda
        .get_alias()
        .function_name(&function)
        .name(&alias_name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            bail!(
                "stage {} of {} is not deployed: run `up deploy {}`",
                args.stage,
                config.name,
                args.stage
            )
        }
        Err(e) => return Err(clients.error("lambda:GetAlias", &resource, e).into()),
    };
    let from = current
        .function_version()
        .context("the alias names no version")?
        .to_owned();
    let to = match args.to {
        Some(v) => v,
        None => match alias::previous(current.description()) {
            Some(v) => v,
            None => earlier_version(&ctx, &function, &from)
                .await?
                .with_context(|| {
                    format!(
                        "stage {} has no version before {from} to roll back to",
                        args.stage
                    )
                })?,
        },
    };
    if to == from {
        bail!("stage {} already serves version {to}", args.stage);
    }
    // A version that does not exist is refused by UpdateAlias with a clear not-found.
    lambda
        .update_alias()
        .function_name(&function)
        .name(&alias_name)
        .function_version(&to)
        .description(alias::description(Some(&from)))
        .send()
        .await
        .map_err(|e| clients.error("lambda:UpdateAlias", &resource, e))?;
    ctx.record(
        "alias",
        &format!("{function}:{alias_name}"),
        crate::deploy::Change::Updated,
        &format!("version {from} → {to}"),
    );
    if config.lambda.warm {
        let input = warmer::event(&ctx, &function, &args.stage);
        if let Err(why) = warmer::prewarm(&ctx, &names::warmer_function(&config), &input).await {
            progress.warn(&format!("prewarm failed: {why}"));
        }
    }
    progress.finish();
    match globals.output {
        Output::Text => println!("{}: version {from} → {to}", args.stage),
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "app": config.name,
                "stage": args.stage,
                "from": from,
                "to": to,
                "api_calls": clients.calls.count(),
            })
        ),
    }
    Ok(())
}

/// The highest published version below `current`.
async fn earlier_version(
    ctx: &Ctx<'_>,
    function: &str,
    current: &str,
) -> anyhow::Result<Option<String>> {
    let current: u64 = current.parse().unwrap_or(u64::MAX);
    let mut best: Option<u64> = None;
    let mut marker: Option<String> = None;
    loop {
        let out = ctx
            .clients
            .lambda
            .list_versions_by_function()
            .function_name(function)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| {
                ctx.clients
                    .error("lambda:ListVersionsByFunction", function, e)
            })?;
        for v in out.versions() {
            if let Some(n) = v.version().and_then(|v| v.parse::<u64>().ok())
                && n < current
                && best.is_none_or(|b| n > b)
            {
                best = Some(n);
            }
        }
        match out.next_marker() {
            Some(next) if !next.is_empty() && !out.versions().is_empty() => {
                marker = Some(next.to_owned());
            }
            _ => return Ok(best.map(|b| b.to_string())),
        }
    }
}
