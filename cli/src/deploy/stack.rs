//! Everything `up` created for an app, found by name and by the `up:app` tag, and its removal
//! (`up stack delete`). A resource named like the app but tagged for another app (or not
//! tagged) is left alone; log groups and S3 zips are found by their names only.

use super::{Change, Ctx, iam, upload, warmer};
use crate::names;

/// Deletes (or, dry run, lists) every resource of the app in `ctx.config`, all stages.
pub async fn delete(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let config = ctx.config;
    let app = config.name.as_str();
    // Schedules first, so nothing invokes what is being removed.
    for rule in rules(ctx).await? {
        if !ctx.dry_run {
            warmer::delete_rule(ctx, &rule).await?;
        }
        ctx.record("rule", &rule, Change::Deleted, "");
    }
    delete_apis(ctx).await?;
    for function in [names::function_name(config), names::warmer_function(config)] {
        if owned_function(ctx, &function).await? {
            if !ctx.dry_run {
                delete_function(ctx, &function).await?;
            }
            ctx.record(
                "function",
                &function,
                Change::Deleted,
                "versions, aliases, URLs",
            );
        }
    }
    for role in [names::role(config), names::warmer_role(config)] {
        if iam::delete(ctx, &role, app).await? {
            ctx.record("role", &role, Change::Deleted, "");
        }
    }
    for group in [names::log_group(config), names::warmer_log_group(config)] {
        if delete_log_group(ctx, &group).await? {
            ctx.record("log-group", &group, Change::Deleted, "");
        }
    }
    let zips = upload::delete_all(ctx).await?;
    if zips > 0 {
        ctx.record(
            "s3",
            &format!("{app}/*.zip"),
            Change::Deleted,
            &format!("{zips} zips"),
        );
    }
    Ok(())
}

/// The app's warm rules: named `<name>-warm-*` and tagged `up:app` = the app.
async fn rules(ctx: &Ctx<'_>) -> anyhow::Result<Vec<String>> {
    let events = &ctx.clients.events;
    let prefix = names::warm_rule(ctx.config, "");
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = events
            .list_rules()
            .name_prefix(&prefix)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                ctx.clients
                    .error("events:ListRules", &format!("rules {prefix}*"), e)
            })?;
        for rule in out.rules() {
            let (Some(name), Some(arn)) = (rule.name(), rule.arn()) else {
                continue;
            };
            let tags = events
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| ctx.clients.error("events:ListTagsForResource", arn, e))?;
            if tags
                .tags()
                .iter()
                .any(|t| t.key() == names::TAG_APP && t.value() == ctx.config.name)
            {
                found.push(name.to_owned());
            }
        }
        match out.next_token() {
            Some(next) if !next.is_empty() && !out.rules().is_empty() => {
                token = Some(next.to_owned());
            }
            _ => return Ok(found),
        }
    }
}

fn tagged_for(tags: Option<&std::collections::HashMap<String, String>>, app: &str) -> bool {
    tags.and_then(|t| t.get(names::TAG_APP))
        .is_some_and(|v| v == app)
}

async fn delete_apis(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let app = ctx.config.name.as_str();
    let v2 = &ctx.clients.apigatewayv2;
    let apis = v2
        .get_apis()
        .max_results("500")
        .send()
        .await
        .map_err(|e| ctx.clients.error("apigateway:GET", "/apis", e))?;
    for api in apis.items() {
        if !tagged_for(api.tags(), app) {
            continue;
        }
        let id = api.api_id().unwrap_or_default();
        if !ctx.dry_run {
            v2.delete_api().api_id(id).send().await.map_err(|e| {
                ctx.clients
                    .error("apigateway:DELETE", &format!("/apis/{id}"), e)
            })?;
        }
        ctx.record("http-api", api.name().unwrap_or(id), Change::Deleted, id);
    }
    let v1 = &ctx.clients.apigateway;
    let rest = v1
        .get_rest_apis()
        .limit(500)
        .send()
        .await
        .map_err(|e| ctx.clients.error("apigateway:GET", "/restapis", e))?;
    for api in rest.items() {
        if !tagged_for(api.tags(), app) {
            continue;
        }
        let id = api.id().unwrap_or_default();
        if !ctx.dry_run {
            v1.delete_rest_api()
                .rest_api_id(id)
                .send()
                .await
                .map_err(|e| {
                    ctx.clients
                        .error("apigateway:DELETE", &format!("/restapis/{id}"), e)
                })?;
        }
        ctx.record("rest-api", api.name().unwrap_or(id), Change::Deleted, id);
    }
    Ok(())
}

/// Whether function `name` exists and is tagged for this app.
async fn owned_function(ctx: &Ctx<'_>, name: &str) -> anyhow::Result<bool> {
    match ctx
        .clients
        .lambda
        .get_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(tagged_for(out.tags(), &ctx.config.name)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(ctx
            .clients
            .error("lambda:GetFunction", &format!("function {name}"), e)
            .into()),
    }
}

/// Deletes function `name` (all versions, aliases and URLs). Returns whether it existed.
pub async fn delete_function(ctx: &Ctx<'_>, name: &str) -> anyhow::Result<bool> {
    if ctx.dry_run {
        return Ok(true);
    }
    match ctx
        .clients
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(ctx
            .clients
            .error("lambda:DeleteFunction", &format!("function {name}"), e)
            .into()),
    }
}

/// Deletes log group `group`. Returns whether it existed.
pub async fn delete_log_group(ctx: &Ctx<'_>, group: &str) -> anyhow::Result<bool> {
    let logs = &ctx.clients.logs;
    let found = logs
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .map_err(|e| ctx.clients.error("logs:DescribeLogGroups", group, e))?
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(group));
    if !found || ctx.dry_run {
        return Ok(found);
    }
    match logs.delete_log_group().log_group_name(group).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(ctx.clients.error("logs:DeleteLogGroup", group, e).into()),
    }
}
