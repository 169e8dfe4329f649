//! IAM roles: the function's `<name>-function` (trust `lambda.amazonaws.com`, CloudWatch Logs,
//! plus `lambda.policy`) and the warmer's `<name>-warmer` (logs, and `lambda:InvokeFunction`
//! on the app function's qualifiers only).
//!
//! One inline policy per role, named [`crate::names::ROLE_POLICY`]. The role carries the tag
//! `up:policy`, a hash of its trust and inline policy: a redeploy reads the role once
//! (`GetRole`) and writes nothing when the hash matches.

use super::{Change, Ctx};
use crate::error::AwsError;
use crate::names;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The tag holding the hash of a role's policies.
pub const TAG_POLICY: &str = "up:policy";

/// What a role should look like.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// Trust policy.
    pub trust: Value,
    /// The inline policy.
    pub policy: Value,
    /// Tags (besides [`TAG_POLICY`]).
    pub tags: BTreeMap<String, String>,
}

impl RoleSpec {
    /// Hash of the trust and inline policies: the value of the [`TAG_POLICY`] tag.
    pub fn hash(&self) -> String {
        let text = json!({"trust": self.trust, "policy": self.policy}).to_string();
        Sha256::digest(text.as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A trust policy letting `service` assume the role.
pub fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole"
        }]
    })
}

fn logs_statement() -> Value {
    json!({
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*"
    })
}

/// The function's inline policy: logs, then `lambda.policy`'s statements as written.
pub fn function_policy(extra: &[Value]) -> Value {
    let mut statements = vec![logs_statement()];
    statements.extend(extra.iter().cloned());
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The warmer's inline policy: logs, and invoking `function_arn`'s qualifiers only.
pub fn warmer_policy(function_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            logs_statement(),
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": format!("{function_arn}:*")
            }
        ]
    })
}

/// Creates the role or brings its policies up to date. Returns its ARN and what changed.
pub async fn ensure(ctx: &Ctx<'_>, spec: &RoleSpec) -> anyhow::Result<(String, Change)> {
    let iam = &ctx.clients.iam;
    let hash = spec.hash();
    let resource = format!("role {}", spec.name);
    let found = match iam.get_role().role_name(&spec.name).send().await {
        Ok(out) => out.role,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => return Err(ctx.clients.error("iam:GetRole", &resource, e).into()),
    };
    match found {
        Some(role) => {
            let arn = role.arn.clone();
            let current = role
                .tags()
                .iter()
                .find(|t| t.key() == TAG_POLICY)
                .map(|t| t.value().to_owned());
            if current.as_deref() == Some(hash.as_str()) {
                return Ok((arn, Change::Unchanged));
            }
            if ctx.dry_run {
                return Ok((arn, Change::Updated));
            }
            ctx.progress.step(&format!("{resource}: updating policies"));
            iam.update_assume_role_policy()
                .role_name(&spec.name)
                .policy_document(spec.trust.to_string())
                .send()
                .await
                .map_err(|e| {
                    ctx.clients
                        .error("iam:UpdateAssumeRolePolicy", &resource, e)
                })?;
            put_policy(ctx, spec).await?;
            iam.tag_role()
                .role_name(&spec.name)
                .set_tags(Some(tags(spec, &hash)?))
                .send()
                .await
                .map_err(|e| ctx.clients.error("iam:TagRole", &resource, e))?;
            Ok((arn, Change::Updated))
        }
        None => {
            if ctx.dry_run {
                let account = ctx.account().await?;
                return Ok((
                    format!("arn:aws:iam::{account}:role/{}", spec.name),
                    Change::Created,
                ));
            }
            ctx.progress.step(&format!("{resource}: creating"));
            // Without the hash tag first: it is added once the policy is in place, so an
            // interrupted create is finished by the next deploy.
            let created = iam
                .create_role()
                .role_name(&spec.name)
                .assume_role_policy_document(spec.trust.to_string())
                .description("created by up deploy")
                .set_tags(Some(tags(spec, "")?))
                .send()
                .await;
            let arn = match created {
                Ok(out) => out.role.map(|r| r.arn).unwrap_or_default(),
                // Created meanwhile (another deploy): converge it like an existing one.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_entity_already_exists_exception()) =>
                {
                    iam.get_role()
                        .role_name(&spec.name)
                        .send()
                        .await
                        .map_err(|e| ctx.clients.error("iam:GetRole", &resource, e))?
                        .role
                        .map(|r| r.arn)
                        .unwrap_or_default()
                }
                Err(e) => return Err(ctx.clients.error("iam:CreateRole", &resource, e).into()),
            };
            put_policy(ctx, spec).await?;
            iam.tag_role()
                .role_name(&spec.name)
                .set_tags(Some(tags(spec, &hash)?))
                .send()
                .await
                .map_err(|e| ctx.clients.error("iam:TagRole", &resource, e))?;
            Ok((arn, Change::Created))
        }
    }
}

async fn put_policy(ctx: &Ctx<'_>, spec: &RoleSpec) -> Result<(), AwsError> {
    let resource = format!("role {}", spec.name);
    ctx.clients
        .iam
        .put_role_policy()
        .role_name(&spec.name)
        .policy_name(names::ROLE_POLICY)
        .policy_document(spec.policy.to_string())
        .send()
        .await
        .map_err(|e| ctx.clients.error("iam:PutRolePolicy", &resource, e))?;
    Ok(())
}

fn tags(spec: &RoleSpec, hash: &str) -> anyhow::Result<Vec<aws_sdk_iam::types::Tag>> {
    let mut all = spec.tags.clone();
    if !hash.is_empty() {
        all.insert(TAG_POLICY.to_owned(), hash.to_owned());
    }
    all.into_iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(anyhow::Error::from)
        })
        .collect()
}

/// Deletes role `name` with its inline and attached policies, when it exists and carries
/// `up:app` = `app`. Returns whether it was deleted.
pub async fn delete(ctx: &Ctx<'_>, name: &str, app: &str) -> anyhow::Result<bool> {
    let iam = &ctx.clients.iam;
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(false);
        }
        Err(e) => {
            return Err(ctx
                .clients
                .error("iam:GetRole", &format!("role {name}"), e)
                .into());
        }
    };
    let ours = role.as_ref().is_some_and(|r| {
        r.tags()
            .iter()
            .any(|t| t.key() == names::TAG_APP && t.value() == app)
    });
    if !ours {
        return Ok(false);
    }
    if ctx.dry_run {
        return Ok(true);
    }
    let inline = iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| {
            ctx.clients
                .error("iam:ListRolePolicies", &format!("role {name}"), e)
        })?;
    for policy in inline.policy_names() {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| {
                ctx.clients
                    .error("iam:DeleteRolePolicy", &format!("role {name}"), e)
            })?;
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| {
            ctx.clients
                .error("iam:ListAttachedRolePolicies", &format!("role {name}"), e)
        })?;
    for policy in attached.attached_policies() {
        if let Some(arn) = policy.policy_arn() {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| {
                    ctx.clients
                        .error("iam:DetachRolePolicy", &format!("role {name}"), e)
                })?;
        }
    }
    iam.delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| {
            ctx.clients
                .error("iam:DeleteRole", &format!("role {name}"), e)
        })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_follows_the_policies() {
        let spec = RoleSpec {
            name: "demo-function".into(),
            trust: trust("lambda.amazonaws.com"),
            policy: function_policy(&[]),
            tags: BTreeMap::new(),
        };
        let same = spec.clone();
        assert_eq!(spec.hash(), same.hash());
        let more = RoleSpec {
            policy: function_policy(&[
                json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
            ]),
            ..spec.clone()
        };
        assert_ne!(spec.hash(), more.hash());
    }

    #[test]
    fn warmer_may_only_invoke_qualifiers_of_the_function() {
        let policy = warmer_policy("arn:aws:lambda:us-east-1:1:function:demo");
        assert_eq!(
            policy["Statement"][1],
            json!({
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:us-east-1:1:function:demo:*"
            })
        );
    }
}
