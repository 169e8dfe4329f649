//! Keeping a stage warm: the warmer function `<name>-warmer` (crate up-warmer's `warmer` as a
//! `provided.al2023` function, its own role allowed only `lambda:InvokeFunction` on this app's
//! function qualifiers), a CloudWatch Events rule per stage (`rate(N minutes)`) whose constant
//! input is the stage's warm targets, the permission for `events.amazonaws.com`, and a prewarm
//! right after the alias moves.

use super::{Change, Ctx, function, iam, package, permission};
use crate::error::AwsError;
use crate::names;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Memory of the warmer function (it only sends Invoke calls and counts answers).
const WARMER_MEMORY: i32 = 256;
/// Timeout of the warmer function.
const WARMER_TIMEOUT: i32 = 60;

/// The warmer's event for `stage`: the DESIGN's warm targets, one per stage.
pub fn event(ctx: &Ctx<'_>, function: &str, stage: &str) -> Value {
    json!({
        "targets": [{
            "function": function,
            "qualifier": names::alias(stage),
            "concurrency": ctx.config.lambda.warm_count.get(),
            "app": ctx.config.name,
            "stage": stage,
        }]
    })
}

/// `rate(N minutes)` for `lambda.warm_rate`.
pub fn schedule(minutes: u64) -> String {
    if minutes == 1 {
        "rate(1 minute)".to_owned()
    } else {
        format!("rate({minutes} minutes)")
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Warm {
    /// The warmer function.
    pub function: String,
    /// The stage's rule.
    pub rule: String,
    /// Its schedule expression.
    pub schedule: String,
    /// Instances kept warm.
    pub concurrency: u64,
    /// The event the rule sends.
    pub input: Value,
    /// The prewarm's answer (the warmer's report), when it ran and succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prewarm: Option<Value>,
    /// Why the prewarm did not succeed (a warning, never a failed deploy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prewarm_error: Option<String>,
}

/// Builds or converges the warmer function, its role, and `ctx.stage`'s rule.
/// `app_function_arn`: the unqualified ARN of the app's function.
pub async fn ensure(
    ctx: &Ctx<'_>,
    app_function: &str,
    app_function_arn: &str,
    warmer_zip: &package::Package,
) -> anyhow::Result<Warm> {
    let config = ctx.config;
    let tags = ctx.tags(false);
    // Role.
    let role_name = names::warmer_role(config);
    let role_spec = iam::RoleSpec {
        name: role_name.clone(),
        trust: iam::trust("lambda.amazonaws.com"),
        policy: iam::warmer_policy(app_function_arn),
        tags: tags.clone(),
    };
    let (role_arn, change) = iam::ensure(ctx, &role_spec).await?;
    ctx.record("role", &role_name, change, "");
    // Function ($LATEST; no versions).
    let name = names::warmer_function(config);
    let spec = function::Spec {
        name: name.clone(),
        role: role_arn,
        memory: WARMER_MEMORY,
        timeout: WARMER_TIMEOUT,
        environment: BTreeMap::new(),
        architecture: aws_sdk_lambda::types::Architecture::X8664,
        layers: Vec::new(),
        description: format!("up: keeps {} warm", config.name),
        tags: tags.clone(),
        reserved_concurrency: None,
    };
    let now = function::current(ctx, &spec, &warmer_zip.code_sha256, None).await?;
    let deployed = function::ensure(
        ctx,
        &spec,
        &function::Code::Zip(warmer_zip),
        &now,
        false,
        change == Change::Created,
    )
    .await?;
    ctx.record("function", &name, deployed.change, &deployed.detail);
    let warmer_arn = if deployed.function_arn.is_empty() {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            ctx.clients.region,
            ctx.account().await?
        )
    } else {
        deployed.function_arn.clone()
    };
    // Rule and target.
    let rule = names::warm_rule(config, ctx.stage);
    let schedule = schedule(config.lambda.warm_rate.get());
    let input = event(ctx, app_function, ctx.stage);
    let (rule_arn, rule_change) = ensure_rule(ctx, &rule, &schedule).await?;
    let target_change = ensure_target(ctx, &rule, &warmer_arn, &input).await?;
    let permission = permission::Permission {
        function: name.clone(),
        qualifier: None,
        sid: names::warm_statement(ctx.stage),
        principal: "events.amazonaws.com".to_owned(),
        action: "lambda:InvokeFunction".to_owned(),
        source_arn: Some(rule_arn),
        url_auth_type: None,
        via_function_url: false,
    };
    let perm_change = permission::ensure(ctx, &[permission], false).await?;
    let change = [rule_change, target_change, perm_change]
        .into_iter()
        .find(|c| *c != Change::Unchanged)
        .unwrap_or(Change::Unchanged);
    ctx.record("rule", &rule, change, &schedule);
    Ok(Warm {
        function: name,
        rule,
        schedule,
        concurrency: config.lambda.warm_count.get(),
        input,
        prewarm: None,
        prewarm_error: None,
    })
}

async fn ensure_rule(
    ctx: &Ctx<'_>,
    rule: &str,
    schedule: &str,
) -> anyhow::Result<(String, Change)> {
    let events = &ctx.clients.events;
    let resource = format!("rule {rule}");
    let found = match events.describe_rule().name(rule).send().await {
        Ok(out) => Some(out),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => {
            return Err(ctx
                .clients
                .error("events:DescribeRule", &resource, e)
                .into());
        }
    };
    let enabled = aws_sdk_cloudwatchevents::types::RuleState::Enabled;
    if let Some(out) = &found
        && out.schedule_expression() == Some(schedule)
        && out.state() == Some(&enabled)
    {
        return Ok((out.arn().unwrap_or_default().to_owned(), Change::Unchanged));
    }
    let change = if found.is_some() {
        Change::Updated
    } else {
        Change::Created
    };
    if ctx.dry_run {
        let arn = format!(
            "arn:aws:events:{}:{}:rule/{rule}",
            ctx.clients.region,
            ctx.account().await?
        );
        return Ok((arn, change));
    }
    let mut request = events
        .put_rule()
        .name(rule)
        .schedule_expression(schedule)
        .state(enabled)
        .description(format!("up: keeps {} {} warm", ctx.config.name, ctx.stage));
    if found.is_none() {
        for (k, v) in ctx.tags(true) {
            request = request.tags(
                aws_sdk_cloudwatchevents::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()?,
            );
        }
    }
    let out = request
        .send()
        .await
        .map_err(|e| ctx.clients.error("events:PutRule", &resource, e))?;
    Ok((out.rule_arn().unwrap_or_default().to_owned(), change))
}

async fn ensure_target(
    ctx: &Ctx<'_>,
    rule: &str,
    warmer_arn: &str,
    input: &Value,
) -> anyhow::Result<Change> {
    let events = &ctx.clients.events;
    let resource = format!("rule {rule}");
    let targets = match events.list_targets_by_rule().rule(rule).send().await {
        Ok(out) => out.targets().to_vec(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Vec::new()
        }
        Err(e) => {
            return Err(ctx
                .clients
                .error("events:ListTargetsByRule", &resource, e)
                .into());
        }
    };
    let current = targets.iter().find(|t| t.id() == names::WARM_TARGET_ID);
    let same = current.is_some_and(|t| {
        t.arn() == warmer_arn
            && t.input()
                .and_then(|i| serde_json::from_str::<Value>(i).ok())
                .is_some_and(|i| i == *input)
    });
    if same {
        return Ok(Change::Unchanged);
    }
    let change = if current.is_some() {
        Change::Updated
    } else {
        Change::Created
    };
    if ctx.dry_run {
        return Ok(change);
    }
    let target = aws_sdk_cloudwatchevents::types::Target::builder()
        .id(names::WARM_TARGET_ID)
        .arn(warmer_arn)
        .input(input.to_string())
        .build()?;
    let out = events
        .put_targets()
        .rule(rule)
        .targets(target)
        .send()
        .await
        .map_err(|e| ctx.clients.error("events:PutTargets", &resource, e))?;
    if out.failed_entry_count() > 0 {
        let why: Vec<String> = out
            .failed_entries()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.error_code().unwrap_or("?"),
                    f.error_message().unwrap_or("?")
                )
            })
            .collect();
        anyhow::bail!("events:PutTargets on {resource} failed: {}", why.join("; "));
    }
    Ok(change)
}

/// Invokes the warmer now with `input` and returns its report. Never fails the deploy: the
/// caller turns an error into a warning.
pub async fn prewarm(ctx: &Ctx<'_>, warmer: &str, input: &Value) -> Result<Value, String> {
    let out = ctx
        .clients
        .lambda
        .invoke()
        .function_name(warmer)
        .payload(aws_sdk_lambda::primitives::Blob::new(input.to_string()))
        .send()
        .await
        .map_err(|e| {
            ctx.clients
                .error("lambda:InvokeFunction", warmer, e)
                .to_string()
        })?;
    let payload = out
        .payload()
        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
        .unwrap_or_default();
    if let Some(kind) = out.function_error() {
        return Err(format!("the warmer failed ({kind}): {payload}"));
    }
    Ok(serde_json::from_str(&payload).unwrap_or(Value::String(payload)))
}

/// One line for people from the warmer's answer (`{"reports": [{"requested", "answered",
/// "distinct", "cold", ...}]}`).
pub fn describe(answer: &Value) -> String {
    let Some(reports) = answer["reports"].as_array() else {
        return answer.to_string();
    };
    reports
        .iter()
        .map(|r| {
            format!(
                "{} of {} pings answered by {} instances ({} cold)",
                r["answered"], r["requested"], r["distinct"], r["cold"]
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Removes `stage`'s rule (targets first) and the warmer's permission for it. Returns whether
/// the rule existed.
pub async fn remove_rule(ctx: &Ctx<'_>, stage: &str) -> Result<bool, AwsError> {
    let events = &ctx.clients.events;
    let rule = names::warm_rule(ctx.config, stage);
    let resource = format!("rule {rule}");
    match events.describe_rule().name(&rule).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(ctx.clients.error("events:DescribeRule", &resource, e)),
    }
    if ctx.dry_run {
        return Ok(true);
    }
    delete_rule(ctx, &rule).await?;
    let warmer = names::warmer_function(ctx.config);
    match permission::remove(ctx, &warmer, None, &names::warm_statement(stage)).await {
        Ok(()) => {}
        // The warmer function is gone already: nothing to remove.
        Err(AwsError::Service { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(true)
}

/// Deletes rule `rule` after removing its targets.
pub async fn delete_rule(ctx: &Ctx<'_>, rule: &str) -> Result<(), AwsError> {
    let events = &ctx.clients.events;
    let resource = format!("rule {rule}");
    let targets = events
        .list_targets_by_rule()
        .rule(rule)
        .send()
        .await
        .map_err(|e| ctx.clients.error("events:ListTargetsByRule", &resource, e))?;
    let ids: Vec<String> = targets
        .targets()
        .iter()
        .map(|t| t.id().to_owned())
        .collect();
    if !ids.is_empty() {
        events
            .remove_targets()
            .rule(rule)
            .set_ids(Some(ids))
            .send()
            .await
            .map_err(|e| ctx.clients.error("events:RemoveTargets", &resource, e))?;
    }
    events
        .delete_rule()
        .name(rule)
        .send()
        .await
        .map_err(|e| ctx.clients.error("events:DeleteRule", &resource, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_a_rate_in_minutes() {
        assert_eq!(schedule(1), "rate(1 minute)");
        assert_eq!(schedule(5), "rate(5 minutes)");
    }
}
