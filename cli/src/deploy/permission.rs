//! Resource-policy statements on a function (or one of its aliases) that let a front door or a
//! schedule invoke it. Each has a fixed statement id, so it is read, compared and replaced.

use super::{Change, Ctx};
use crate::error::AwsError;
use aws_sdk_lambda::types::FunctionUrlAuthType;
use serde_json::Value;

/// One statement.
#[derive(Debug, Clone)]
pub struct Permission {
    /// Function name.
    pub function: String,
    /// Alias, or `None` for the unqualified function.
    pub qualifier: Option<String>,
    /// Statement id.
    pub sid: String,
    /// `apigateway.amazonaws.com`, `events.amazonaws.com` or `*`.
    pub principal: String,
    /// `lambda:InvokeFunction` or `lambda:InvokeFunctionUrl`.
    pub action: String,
    /// The only source allowed (an API or a rule ARN pattern).
    pub source_arn: Option<String>,
    /// For Function URLs: the URL's auth type.
    pub url_auth_type: Option<FunctionUrlAuthType>,
    /// Only when invoked through a Function URL (`lambda:InvokedViaFunctionUrl`).
    pub via_function_url: bool,
}

impl Permission {
    fn resource(&self) -> String {
        match &self.qualifier {
            Some(q) => format!("function {}:{q}", self.function),
            None => format!("function {}", self.function),
        }
    }

    /// Whether `statement` (from GetPolicy) says exactly this.
    fn matches(&self, statement: &Value) -> bool {
        let principal = match &statement["Principal"] {
            Value::String(s) => s.clone(),
            p => p["Service"]
                .as_str()
                .or_else(|| p["AWS"].as_str())
                .unwrap_or_default()
                .to_owned(),
        };
        let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"].as_str();
        let via_url = statement["Condition"]["Bool"]["lambda:InvokedViaFunctionUrl"]
            .as_str()
            .is_some_and(|v| v == "true")
            || statement["Condition"]["Bool"]["lambda:InvokedViaFunctionUrl"] == Value::Bool(true);
        principal == self.principal
            && statement["Action"].as_str() == Some(self.action.as_str())
            && source == self.source_arn.as_deref()
            && via_url == self.via_function_url
    }
}

/// Makes sure every statement of `all` (all on one function and qualifier) is in place, with
/// one read. `known_missing`: the alias or function was just created, so there is nothing to
/// read. Returns the biggest change.
pub async fn ensure(
    ctx: &Ctx<'_>,
    all: &[Permission],
    known_missing: bool,
) -> anyhow::Result<Change> {
    let Some(first) = all.first() else {
        return Ok(Change::Unchanged);
    };
    let policy = if known_missing {
        Value::Null
    } else {
        policy(ctx, first).await?
    };
    let mut overall = Change::Unchanged;
    for p in all {
        let existing = policy["Statement"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["Sid"].as_str() == Some(p.sid.as_str())));
        let change = match existing {
            Some(s) if p.matches(s) => continue,
            Some(_) => Change::Updated,
            None => Change::Created,
        };
        if overall == Change::Unchanged || change == Change::Updated {
            overall = change;
        }
        if ctx.dry_run {
            continue;
        }
        if existing.is_some() {
            remove(ctx, &p.function, p.qualifier.as_deref(), &p.sid).await?;
        }
        match add(ctx, p).await {
            Ok(()) => {}
            // Already there although we thought not (an alias recreated with its old policy).
            Err(AwsError::Service { code, .. }) if code == "ResourceConflictException" => {
                remove(ctx, &p.function, p.qualifier.as_deref(), &p.sid).await?;
                add(ctx, p).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(overall)
}

async fn add(ctx: &Ctx<'_>, p: &Permission) -> Result<(), AwsError> {
    ctx.clients
        .lambda
        .add_permission()
        .function_name(&p.function)
        .set_qualifier(p.qualifier.clone())
        .statement_id(&p.sid)
        .principal(&p.principal)
        .action(&p.action)
        .set_source_arn(p.source_arn.clone())
        .set_function_url_auth_type(p.url_auth_type.clone())
        .set_invoked_via_function_url(p.via_function_url.then_some(true))
        .send()
        .await
        .map_err(|e| ctx.clients.error("lambda:AddPermission", &p.resource(), e))?;
    Ok(())
}

/// The resource policy of `p`'s function/qualifier (`Null` when there is none).
async fn policy(ctx: &Ctx<'_>, p: &Permission) -> Result<Value, AwsError> {
    let out = match ctx
        .clients
        .lambda
        .get_policy()
        .function_name(&p.function)
        .set_qualifier(p.qualifier.clone())
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(Value::Null);
        }
        Err(e) => return Err(ctx.clients.error("lambda:GetPolicy", &p.resource(), e)),
    };
    Ok(out
        .policy()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null))
}

/// Removes statement `sid`; a missing one is fine.
pub async fn remove(
    ctx: &Ctx<'_>,
    function: &str,
    qualifier: Option<&str>,
    sid: &str,
) -> Result<(), AwsError> {
    if ctx.dry_run {
        return Ok(());
    }
    match ctx
        .clients
        .lambda
        .remove_permission()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_owned))
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(ctx.clients.error("lambda:RemovePermission", function, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statement_comparison_reads_principal_action_and_source() {
        let p = Permission {
            function: "demo".into(),
            qualifier: Some("staging".into()),
            sid: "up-staging-invoke".into(),
            principal: "apigateway.amazonaws.com".into(),
            action: "lambda:InvokeFunction".into(),
            source_arn: Some("arn:aws:execute-api:us-east-1:1:abc/*".into()),
            url_auth_type: None,
            via_function_url: false,
        };
        let statement = json!({
            "Sid": "up-staging-invoke",
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": "arn:aws:lambda:us-east-1:1:function:demo:staging",
            "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:1:abc/*"}}
        });
        assert!(p.matches(&statement));
        let mut other = statement.clone();
        other["Condition"]["ArnLike"]["AWS:SourceArn"] =
            json!("arn:aws:execute-api:us-east-1:1:xyz/*");
        assert!(!p.matches(&other));
    }

    #[test]
    fn function_url_invoke_statement_needs_its_condition() {
        let p = Permission {
            function: "demo".into(),
            qualifier: Some("preview".into()),
            sid: "up-preview-url-invoke".into(),
            principal: "*".into(),
            action: "lambda:InvokeFunction".into(),
            source_arn: None,
            url_auth_type: None,
            via_function_url: true,
        };
        let mut statement = json!({
            "Sid": "up-preview-url-invoke",
            "Principal": "*",
            "Action": "lambda:InvokeFunction",
            "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
        });
        assert!(p.matches(&statement));
        statement["Condition"] = json!({});
        assert!(!p.matches(&statement));
    }
}
