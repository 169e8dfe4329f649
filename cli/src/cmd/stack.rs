//! `up stack plan [stage]` and `up stack delete`: what a deploy would change, and removing
//! every resource `up` created for the app.

use crate::aws::Clients;
use crate::deploy::{self, Change, Ctx, Options, Step};
use crate::progress::Progress;
use crate::{Globals, Output, project};
use anyhow::bail;
use std::io::IsTerminal;

/// Arguments of `up stack`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `up stack` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Show what `up deploy <stage>` would create, change or delete (no hooks run, nothing changes).
    Plan {
        /// The stage.
        #[arg(default_value = "staging")]
        stage: String,
    },
    /// Delete every resource up created for the app, every stage.
    Delete {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
}

/// Runs `up stack`.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    match args.action {
        Action::Plan { stage } => plan(&stage, globals).await,
        Action::Delete { yes } => delete(yes, globals).await,
    }
}

fn symbol(change: Change) -> char {
    match change {
        Change::Created => '+',
        Change::Updated => '~',
        Change::Unchanged => '=',
        Change::Deleted => '-',
    }
}

fn print_steps(steps: &[Step], plan: bool) {
    for s in steps {
        let detail = if s.detail.is_empty() {
            String::new()
        } else {
            format!("  ({})", s.detail)
        };
        println!(
            "{} {:<9} {} {}{detail}",
            symbol(s.change),
            s.change.verb(plan),
            s.resource,
            s.name
        );
    }
}

async fn plan(stage: &str, globals: &Globals) -> anyhow::Result<()> {
    deploy::check_stage(stage)?;
    let config = project::load(&globals.dir, stage)?;
    let clients = Clients::for_config(&config).await?;
    // The plan is printed at the end; progress lines would repeat it.
    let progress = Progress::plain_quiet();
    let options = Options {
        dir: globals.dir.clone(),
        stage: stage.to_owned(),
        dry_run: true,
    };
    let summary = deploy::deploy(&clients, &config, &options, &progress).await?;
    match globals.output {
        Output::Text => {
            print_steps(&summary.steps, true);
            let changes = summary
                .steps
                .iter()
                .filter(|s| s.change != Change::Unchanged)
                .count();
            println!("{changes} to change; nothing was changed");
        }
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "app": config.name,
                "stage": stage,
                "steps": summary.steps,
                "api_calls": summary.api_calls,
            })
        ),
    }
    Ok(())
}

async fn delete(yes: bool, globals: &Globals) -> anyhow::Result<()> {
    let config = project::load(&globals.dir, "staging")?;
    let clients = Clients::for_config(&config).await?;
    let quiet = Progress::plain_quiet();
    // First find everything, then confirm, then delete.
    let listing = Ctx::new(&clients, &config, "staging", &quiet, true);
    deploy::stack::delete(&listing).await?;
    let found = listing.steps();
    if found.is_empty() {
        match globals.output {
            Output::Text => println!("nothing of {} to delete", config.name),
            Output::Json => {
                println!("{}", serde_json::json!({"app": config.name, "deleted": []}))
            }
        }
        return Ok(());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "up stack delete would delete {} resources of {}: pass --yes to delete without asking",
                found.len(),
                config.name
            );
        }
        print_steps(&found, true);
        eprint!(
            "delete these {} resources of {}? [y/N] ",
            found.len(),
            config.name
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("nothing deleted");
        }
    }
    let progress = match globals.output {
        Output::Text => Progress::new(),
        Output::Json => Progress::plain(),
    };
    let ctx = Ctx::new(&clients, &config, "staging", &progress, false);
    deploy::stack::delete(&ctx).await?;
    progress.finish();
    let steps = ctx.steps();
    match globals.output {
        Output::Text => println!("deleted {} resources of {}", steps.len(), config.name),
        Output::Json => println!(
            "{}",
            serde_json::json!({"app": config.name, "deleted": steps})
        ),
    }
    Ok(())
}
