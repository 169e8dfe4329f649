//! `up warm [stage] [-n N]`: warm a stage's instances now and report how many answered.
//!
//! Sends N warm pings at once to the stage's alias (the exact qualifier the front door
//! invokes) with `up_warmer`, the same fan-out the scheduled warmer runs, and prints its
//! report: `warmed 4/4: 4 distinct instances, 4 cold, 0 throttled, 0 errors in 312 ms`, or with
//! `--output json` the report itself. Exits non-zero when no ping was answered.

use crate::{Globals, Output};
use aws_sdk_lambda::operation::get_alias::GetAliasError;
use up_warmer::{Options, Report, Target};

/// Arguments of `up warm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage to warm.
    #[arg(default_value = "staging")]
    pub stage: String,
    /// How many instances to warm at once (default: `lambda.warm_count` of up.json, 4 unless set).
    #[arg(short = 'n', long = "count", value_parser = clap::value_parser!(u32).range(1..=i64::from(up_warmer::MAX_CONCURRENCY)))]
    pub count: Option<u32>,
    /// How long each instance holds its reply (ms), so that N pings in flight occupy N
    /// instances.
    #[arg(long, default_value_t = up_warmer::DEFAULT_HOLD_MS)]
    pub hold_ms: u64,
}

/// Runs `up warm`.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    let config = crate::project::load(&globals.dir, &args.stage)?;
    let function = crate::names::function_name(&config);
    let qualifier = crate::names::alias(&args.stage);
    let concurrency = match args.count {
        Some(n) => n,
        // `warm_count` is bounded to 1..=1000 by up.json's validation.
        None => u32::try_from(config.lambda.warm_count.get()).unwrap_or(up_warmer::MAX_CONCURRENCY),
    };
    let clients = crate::aws::Clients::for_config(&config).await?;

    // One ordinary call first (with the SDK's retries): an unreachable endpoint, missing
    // credentials or an undeployed stage each get their own clear line, not N ping errors.
    if let Err(err) = clients
        .lambda
        .get_alias()
        .function_name(&function)
        .name(&qualifier)
        .send()
        .await
    {
        if matches!(
            err.as_service_error(),
            Some(GetAliasError::ResourceNotFoundException(_))
        ) {
            anyhow::bail!(
                "stage {} is not deployed: function {function} has no alias {qualifier}; run `up deploy {}` first",
                args.stage,
                args.stage
            );
        }
        return Err(clients
            .error("lambda:GetAlias", &format!("{function}:{qualifier}"), err)
            .into());
    }

    let client = up_warmer::client(&clients.sdk, &Options::default());
    let mut target = Target::new(function, qualifier, concurrency);
    target.hold_ms = args.hold_ms;
    target.app = Some(config.name.clone());
    target.stage = Some(args.stage.clone());
    let report = up_warmer::warm(&client, &target).await;

    match globals.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            println!("{}", summary(&report));
            // With nothing answered, the error line below says why.
            if report.answered > 0 {
                for message in &report.error_messages {
                    eprintln!("up: warning: a warm ping failed: {message}");
                }
            }
        }
    }
    if report.answered == 0 {
        let why = report
            .error_messages
            .first()
            .map_or_else(String::new, |m| format!(": {m}"));
        anyhow::bail!(
            "no instance of {}:{} answered the warm pings{why}",
            report.function,
            report.qualifier
        );
    }
    Ok(())
}

/// `warmed 4/4: 4 distinct instances, 4 cold, 0 throttled, 0 errors in 312 ms`.
pub fn summary(report: &Report) -> String {
    format!(
        "warmed {}/{}: {} distinct {}, {} cold, {} throttled, {} {} in {} ms",
        report.answered,
        report.requested,
        report.distinct,
        if report.distinct == 1 {
            "instance"
        } else {
            "instances"
        },
        report.cold,
        report.throttled,
        report.errors,
        if report.errors == 1 {
            "error"
        } else {
            "errors"
        },
        report.duration_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(answered: u32, distinct: u32, errors: u32) -> Report {
        Report {
            function: "app".into(),
            qualifier: "staging".into(),
            run: "r".into(),
            requested: 4,
            answered,
            distinct,
            cold: distinct,
            throttled: 0,
            errors,
            duration_ms: 312,
            instances: Vec::new(),
            error_messages: Vec::new(),
        }
    }

    #[test]
    fn summary_is_one_line() {
        assert_eq!(
            summary(&report(4, 4, 0)),
            "warmed 4/4: 4 distinct instances, 4 cold, 0 throttled, 0 errors in 312 ms"
        );
        assert_eq!(
            summary(&report(3, 1, 1)),
            "warmed 3/4: 1 distinct instance, 1 cold, 0 throttled, 1 error in 312 ms"
        );
    }
}
