//! Aliases: `<stage>` (what the stage's front door invokes) and `commit-<sha>`.
//!
//! Moving a stage's alias records the version it pointed at before in the alias description
//! (`up:previous=<n>`), which `up rollback` reads to go back, and again to toggle.

use super::{Change, Ctx};
use crate::error::AwsError;

const PREVIOUS: &str = "up:previous=";

/// The previous version recorded in an alias description.
pub fn previous(description: Option<&str>) -> Option<String> {
    description?
        .split_whitespace()
        .find_map(|word| word.strip_prefix(PREVIOUS))
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

/// The description that records `previous`.
pub fn description(previous: Option<&str>) -> String {
    previous.map_or_else(String::new, |p| format!("{PREVIOUS}{p}"))
}

/// Points alias `alias` of `function` at `version`. `current` is the version it points at now
/// (`None`: it does not exist). Returns what changed.
pub async fn point(
    ctx: &Ctx<'_>,
    function: &str,
    alias: &str,
    version: &str,
    current: Option<&str>,
) -> Result<Change, AwsError> {
    if current == Some(version) {
        return Ok(Change::Unchanged);
    }
    if ctx.dry_run {
        return Ok(if current.is_some() {
            Change::Updated
        } else {
            Change::Created
        });
    }
    let lambda = &ctx.clients.lambda;
    let resource = format!("alias {function}:{alias}");
    if let Some(previous) = current {
        ctx.progress
            .step(&format!("{resource}: moving to version {version}"));
        lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .description(description(Some(previous)))
            .send()
            .await
            .map_err(|e| ctx.clients.error("lambda:UpdateAlias", &resource, e))?;
        return Ok(Change::Updated);
    }
    ctx.progress.step(&format!("{resource}: creating"));
    match lambda
        .create_alias()
        .function_name(function)
        .name(alias)
        .function_version(version)
        .send()
        .await
    {
        Ok(_) => Ok(Change::Created),
        // It exists after all (created meanwhile): move it.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_conflict_exception()) =>
        {
            lambda
                .update_alias()
                .function_name(function)
                .name(alias)
                .function_version(version)
                .send()
                .await
                .map_err(|e| ctx.clients.error("lambda:UpdateAlias", &resource, e))?;
            Ok(Change::Updated)
        }
        Err(e) => Err(ctx.clients.error("lambda:CreateAlias", &resource, e)),
    }
}

/// Points `commit-<sha>` at `version`, creating it or moving it.
pub async fn commit(
    ctx: &Ctx<'_>,
    function: &str,
    alias: &str,
    version: &str,
) -> Result<Change, AwsError> {
    if ctx.dry_run {
        return Ok(Change::Updated);
    }
    let lambda = &ctx.clients.lambda;
    let resource = format!("alias {function}:{alias}");
    match lambda
        .create_alias()
        .function_name(function)
        .name(alias)
        .function_version(version)
        .send()
        .await
    {
        Ok(_) => Ok(Change::Created),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_conflict_exception()) =>
        {
            let now = lambda
                .get_alias()
                .function_name(function)
                .name(alias)
                .send()
                .await
                .map_err(|e| ctx.clients.error("lambda:GetAlias", &resource, e))?;
            if now.function_version() == Some(version) {
                return Ok(Change::Unchanged);
            }
            lambda
                .update_alias()
                .function_name(function)
                .name(alias)
                .function_version(version)
                .send()
                .await
                .map_err(|e| ctx.clients.error("lambda:UpdateAlias", &resource, e))?;
            Ok(Change::Updated)
        }
        Err(e) => Err(ctx.clients.error("lambda:CreateAlias", &resource, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_version_round_trips_through_the_description() {
        assert_eq!(previous(Some(&description(Some("7")))), Some("7".into()));
        assert_eq!(previous(Some("")), None);
        assert_eq!(previous(None), None);
        assert_eq!(previous(Some("up:previous=$LATEST")), None);
        assert_eq!(description(None), "");
    }
}
