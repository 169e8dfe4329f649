//! A stage's front door: an HTTP API (default), a REST API (`"lambda": {"endpoint": "rest"}`) or
//! a Function URL (`"url"`), always pointing at the stage's alias, plus the permission that
//! lets it invoke the alias.
//!
//! APIs are found by name (`<name>-<stage>`). Once an API is complete its description ends with
//! `spec=<hash>` of what it was built for (the description, unlike tags set after creation, is
//! in every API listing, emulators included); a redeploy reads the API list once and touches
//! nothing when the hash matches. An API without the marker (an interrupted create) or with
//! another hash is inspected part by part and repaired.

use super::{Change, Ctx, Door, permission};
use crate::error::AwsError;
use crate::names;
use anyhow::Context as _;
use aws_sdk_lambda::types::FunctionUrlAuthType;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The description word holding the hash of an API's wanted shape.
const SPEC: &str = "spec=";

/// The hash in an API description, if any.
fn spec_of(description: Option<&str>) -> Option<&str> {
    description?
        .split_whitespace()
        .find_map(|w| w.strip_prefix(SPEC))
}

/// The description of a complete API.
fn description(ctx: &Ctx<'_>, spec: &str) -> String {
    format!("up: {} {} {SPEC}{spec}", ctx.config.name, ctx.stage)
}

/// The kind of front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// HTTP API, payload 2.0, `$default` route and stage.
    Http,
    /// REST API, `{proxy+}` ANY, binary `*/*`.
    Rest,
    /// Lambda Function URL on the alias.
    Url,
}

impl Kind {
    /// The kind `config` asks for.
    pub fn of(config: &up_config::Config) -> Self {
        if config.url.is_some() {
            Self::Url
        } else if config.lambda.endpoint == up_config::Endpoint::Rest {
            Self::Rest
        } else {
            Self::Http
        }
    }

    /// Its name in tags and output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Rest => "rest",
            Self::Url => "url",
        }
    }

    /// The resource name in deploy steps: `http-api`, `rest-api`, `function-url`.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Http => "http-api",
            Self::Rest => "rest-api",
            Self::Url => "function-url",
        }
    }

    /// Parses [`Kind::name`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "rest" => Some(Self::Rest),
            "url" => Some(Self::Url),
            _ => None,
        }
    }
}

/// Everything a door needs to know about its target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Function name.
    pub function: String,
    /// Stage (= alias name).
    pub stage: String,
    /// The alias ARN.
    pub alias_arn: String,
    /// Account id.
    pub account: String,
    /// The alias was just created (no permission can exist yet).
    pub alias_is_new: bool,
}

fn spec_hash(parts: &[&str]) -> String {
    Sha256::digest(parts.join("\n").as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tags(ctx: &Ctx<'_>) -> BTreeMap<String, String> {
    ctx.tags(true)
}

/// Brings the door of `kind` to `target`. Returns the door (URL, API id) and what changed.
pub async fn ensure(ctx: &Ctx<'_>, kind: Kind, target: &Target) -> anyhow::Result<Door> {
    let (mut door, api_new) = match kind {
        Kind::Http => http(ctx, target).await?,
        Kind::Rest => rest(ctx, target).await?,
        Kind::Url => url(ctx, target).await?,
    };
    let permissions = invoke_permissions(ctx, kind, target, door.api_id.as_deref());
    let changed = permission::ensure(ctx, &permissions, target.alias_is_new || api_new).await?;
    if door.change == Change::Unchanged && changed != Change::Unchanged {
        door.change = Change::Updated;
    }
    Ok(door)
}

/// The statements that let `kind`'s door invoke the alias. A Function URL needs two:
/// `lambda:InvokeFunctionUrl`, and `lambda:InvokeFunction` only through the URL.
fn invoke_permissions(
    ctx: &Ctx<'_>,
    kind: Kind,
    target: &Target,
    api_id: Option<&str>,
) -> Vec<permission::Permission> {
    let base = permission::Permission {
        function: target.function.clone(),
        qualifier: Some(target.stage.clone()),
        sid: names::invoke_statement(&target.stage),
        principal: "apigateway.amazonaws.com".to_owned(),
        action: "lambda:InvokeFunction".to_owned(),
        source_arn: None,
        url_auth_type: None,
        via_function_url: false,
    };
    match kind {
        Kind::Http | Kind::Rest => vec![permission::Permission {
            source_arn: Some(format!(
                "arn:aws:execute-api:{}:{}:{}/*",
                ctx.clients.region,
                target.account,
                api_id.unwrap_or("*")
            )),
            ..base
        }],
        Kind::Url => vec![
            permission::Permission {
                sid: names::url_statement(&target.stage),
                principal: "*".to_owned(),
                action: "lambda:InvokeFunctionUrl".to_owned(),
                url_auth_type: Some(url_auth_type(ctx)),
                ..base.clone()
            },
            permission::Permission {
                sid: names::url_invoke_statement(&target.stage),
                principal: "*".to_owned(),
                via_function_url: true,
                ..base
            },
        ],
    }
}

fn url_auth_type(ctx: &Ctx<'_>) -> FunctionUrlAuthType {
    match ctx.config.url.as_ref().map(|u| u.auth_type.as_str()) {
        Some("AWS_IAM") => FunctionUrlAuthType::AwsIam,
        _ => FunctionUrlAuthType::None,
    }
}

// ---- HTTP API ----------------------------------------------------------------------------

/// The HTTP API named `name`, if any.
pub async fn find_http(
    ctx: &Ctx<'_>,
    name: &str,
) -> Result<Option<aws_sdk_apigatewayv2::types::Api>, AwsError> {
    let mut token: Option<String> = None;
    loop {
        let out = ctx
            .clients
            .apigatewayv2
            .get_apis()
            .set_next_token(token.clone())
            .max_results("500")
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:GET", "/apis", e))?;
        if let Some(api) = out.items().iter().find(|a| a.name() == Some(name)) {
            return Ok(Some(api.clone()));
        }
        match out.next_token() {
            Some(next) if !next.is_empty() && !out.items().is_empty() => {
                token = Some(next.to_owned());
            }
            _ => return Ok(None),
        }
    }
}

fn http_url(api: &aws_sdk_apigatewayv2::types::Api) -> String {
    format!(
        "{}/",
        api.api_endpoint().unwrap_or_default().trim_end_matches('/')
    )
}

async fn http(ctx: &Ctx<'_>, target: &Target) -> anyhow::Result<(Door, bool)> {
    let v2 = &ctx.clients.apigatewayv2;
    let name = names::api(ctx.config, &target.stage);
    let spec = spec_hash(&["http", &target.alias_arn, "2.0", "$default", "$default"]);
    let found = find_http(ctx, &name).await?;
    let resource = format!("HTTP API {name}");
    let (api, change) = match found {
        Some(api) if spec_of(api.description()) == Some(spec.as_str()) => {
            return Ok((door(Kind::Http, &api, Change::Unchanged), false));
        }
        Some(api) => (api, Change::Updated),
        None if ctx.dry_run => {
            return Ok((Door::planned(Kind::Http), true));
        }
        None => {
            ctx.progress.step(&format!("{resource}: creating"));
            let out = v2
                .create_api()
                .name(&name)
                .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
                .set_tags(Some(tags(ctx).into_iter().collect()))
                .send()
                .await
                .map_err(|e| ctx.clients.error("apigateway:POST", &resource, e))?;
            let api = aws_sdk_apigatewayv2::types::Api::builder()
                .set_api_id(out.api_id().map(str::to_owned))
                .set_api_endpoint(out.api_endpoint().map(str::to_owned))
                .name(&name)
                .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
                .route_selection_expression("$request.method $request.path")
                .build();
            (api, Change::Created)
        }
    };
    let api_id = api.api_id().unwrap_or_default().to_owned();
    if ctx.dry_run {
        return Ok((door(Kind::Http, &api, change), false));
    }
    ctx.progress.step(&format!(
        "{resource}: wiring $default to {}",
        target.alias_arn
    ));
    let api_resource = format!("/apis/{api_id}");
    // The integration.
    let integrations = if change == Change::Created {
        Vec::new()
    } else {
        v2.get_integrations()
            .api_id(&api_id)
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:GET", &api_resource, e))?
            .items()
            .to_vec()
    };
    let integration_id = match integrations.iter().find(|i| {
        i.integration_type() == Some(&aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
    }) {
        Some(i)
            if i.integration_uri() == Some(target.alias_arn.as_str())
                && i.payload_format_version() == Some("2.0") =>
        {
            i.integration_id().unwrap_or_default().to_owned()
        }
        Some(i) => {
            let id = i.integration_id().unwrap_or_default().to_owned();
            v2.update_integration()
                .api_id(&api_id)
                .integration_id(&id)
                .integration_uri(&target.alias_arn)
                .payload_format_version("2.0")
                .send()
                .await
                .map_err(|e| ctx.clients.error("apigateway:PATCH", &api_resource, e))?;
            id
        }
        None => v2
            .create_integration()
            .api_id(&api_id)
            .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
            .integration_uri(&target.alias_arn)
            .payload_format_version("2.0")
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:POST", &api_resource, e))?
            .integration_id()
            .unwrap_or_default()
            .to_owned(),
    };
    // The `$default` route.
    let route_target = format!("integrations/{integration_id}");
    let routes = if change == Change::Created {
        Vec::new()
    } else {
        v2.get_routes()
            .api_id(&api_id)
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:GET", &api_resource, e))?
            .items()
            .to_vec()
    };
    match routes.iter().find(|r| r.route_key() == Some("$default")) {
        Some(r) if r.target() == Some(route_target.as_str()) => {}
        Some(r) => {
            v2.update_route()
                .api_id(&api_id)
                .route_id(r.route_id().unwrap_or_default())
                .target(&route_target)
                .send()
                .await
                .map_err(|e| ctx.clients.error("apigateway:PATCH", &api_resource, e))?;
        }
        None => {
            v2.create_route()
                .api_id(&api_id)
                .route_key("$default")
                .target(&route_target)
                .send()
                .await
                .map_err(|e| ctx.clients.error("apigateway:POST", &api_resource, e))?;
        }
    }
    // The `$default` stage: URLs without a stage prefix.
    let stages = if change == Change::Created {
        Vec::new()
    } else {
        v2.get_stages()
            .api_id(&api_id)
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:GET", &api_resource, e))?
            .items()
            .to_vec()
    };
    if !stages.iter().any(|s| s.stage_name() == Some("$default")) {
        v2.create_stage()
            .api_id(&api_id)
            .stage_name("$default")
            .auto_deploy(true)
            .set_tags(Some(tags(ctx).into_iter().collect()))
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:POST", &api_resource, e))?;
    }
    // Last: mark the API complete.
    v2.update_api()
        .api_id(&api_id)
        .description(description(ctx, &spec))
        .send()
        .await
        .map_err(|e| ctx.clients.error("apigateway:PATCH", &api_resource, e))?;
    Ok((door(Kind::Http, &api, change), change == Change::Created))
}

fn door(kind: Kind, api: &aws_sdk_apigatewayv2::types::Api, change: Change) -> Door {
    Door {
        kind,
        url: http_url(api),
        api_id: api.api_id().map(str::to_owned),
        change,
    }
}

// ---- REST API ----------------------------------------------------------------------------

/// The REST API named `name`, if any.
pub async fn find_rest(
    ctx: &Ctx<'_>,
    name: &str,
) -> Result<Option<aws_sdk_apigateway::types::RestApi>, AwsError> {
    let mut position: Option<String> = None;
    loop {
        let out = ctx
            .clients
            .apigateway
            .get_rest_apis()
            .set_position(position.clone())
            .limit(500)
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:GET", "/restapis", e))?;
        if let Some(api) = out.items().iter().find(|a| a.name() == Some(name)) {
            return Ok(Some(api.clone()));
        }
        match out.position() {
            Some(next) if !next.is_empty() && !out.items().is_empty() => {
                position = Some(next.to_owned());
            }
            _ => return Ok(None),
        }
    }
}

/// The URL of REST API `api_id`'s `stage`.
pub fn rest_url(region: &str, api_id: &str, stage: &str) -> String {
    format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/")
}

async fn rest(ctx: &Ctx<'_>, target: &Target) -> anyhow::Result<(Door, bool)> {
    let v1 = &ctx.clients.apigateway;
    let region = &ctx.clients.region;
    let name = names::api(ctx.config, &target.stage);
    let spec = spec_hash(&[
        "rest",
        &target.alias_arn,
        "{proxy+}",
        "ANY",
        "*/*",
        &target.stage,
    ]);
    let resource = format!("REST API {name}");
    let found = find_rest(ctx, &name).await?;
    let make = |id: &str, change| Door {
        kind: Kind::Rest,
        url: rest_url(region, id, &target.stage),
        api_id: Some(id.to_owned()),
        change,
    };
    let (api_id, change) = match found {
        Some(api) if spec_of(api.description()) == Some(spec.as_str()) => {
            return Ok((make(api.id().unwrap_or_default(), Change::Unchanged), false));
        }
        Some(api) => (api.id().unwrap_or_default().to_owned(), Change::Updated),
        None if ctx.dry_run => {
            return Ok((Door::planned(Kind::Rest), true));
        }
        None => {
            ctx.progress.step(&format!("{resource}: creating"));
            let out = v1
                .create_rest_api()
                .name(&name)
                .binary_media_types("*/*")
                .endpoint_configuration(
                    aws_sdk_apigateway::types::EndpointConfiguration::builder()
                        .types(aws_sdk_apigateway::types::EndpointType::Regional)
                        .build(),
                )
                .set_tags(Some(tags(ctx).into_iter().collect()))
                .send()
                .await
                .map_err(|e| ctx.clients.error("apigateway:POST", &resource, e))?;
            (
                out.id()
                    .context("CreateRestApi answered without an id")?
                    .to_owned(),
                Change::Created,
            )
        }
    };
    if ctx.dry_run {
        return Ok((make(&api_id, change), false));
    }
    ctx.progress.step(&format!(
        "{resource}: wiring {{proxy+}} to {}",
        target.alias_arn
    ));
    let api_resource = format!("/restapis/{api_id}");
    let resources = v1
        .get_resources()
        .rest_api_id(&api_id)
        .limit(500)
        .send()
        .await
        .map_err(|e| ctx.clients.error("apigateway:GET", &api_resource, e))?;
    let root = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .with_context(|| format!("{resource} has no root resource"))?
        .to_owned();
    let proxy = match resources
        .items()
        .iter()
        .find(|r| r.path_part() == Some("{proxy+}") && r.parent_id() == Some(root.as_str()))
    {
        Some(r) => r.id().unwrap_or_default().to_owned(),
        None => v1
            .create_resource()
            .rest_api_id(&api_id)
            .parent_id(&root)
            .path_part("{proxy+}")
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:POST", &api_resource, e))?
            .id()
            .unwrap_or_default()
            .to_owned(),
    };
    let uri = format!(
        "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{}/invocations",
        target.alias_arn
    );
    for resource_id in [root.as_str(), proxy.as_str()] {
        let has_method = resources.items().iter().any(|r| {
            r.id() == Some(resource_id)
                && r.resource_methods().is_some_and(|m| m.contains_key("ANY"))
        });
        if !has_method {
            v1.put_method()
                .rest_api_id(&api_id)
                .resource_id(resource_id)
                .http_method("ANY")
                .authorization_type("NONE")
                .send()
                .await
                .map_err(|e| ctx.clients.error("apigateway:PUT", &api_resource, e))?;
        }
        v1.put_integration()
            .rest_api_id(&api_id)
            .resource_id(resource_id)
            .http_method("ANY")
            .r#type(aws_sdk_apigateway::types::IntegrationType::AwsProxy)
            .integration_http_method("POST")
            .uri(&uri)
            .send()
            .await
            .map_err(|e| ctx.clients.error("apigateway:PUT", &api_resource, e))?;
    }
    v1.create_deployment()
        .rest_api_id(&api_id)
        .stage_name(&target.stage)
        .send()
        .await
        .map_err(|e| ctx.clients.error("apigateway:POST", &api_resource, e))?;
    // Last: mark the API complete.
    v1.update_rest_api()
        .rest_api_id(&api_id)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/description")
                .value(description(ctx, &spec))
                .build(),
        )
        .send()
        .await
        .map_err(|e| ctx.clients.error("apigateway:PATCH", &api_resource, e))?;
    Ok((make(&api_id, change), change == Change::Created))
}

// ---- Function URL ------------------------------------------------------------------------

/// The Function URL of `function`'s `alias`, if any: (URL, auth type).
pub async fn find_url(
    ctx: &Ctx<'_>,
    function: &str,
    alias: &str,
) -> Result<Option<(String, FunctionUrlAuthType)>, AwsError> {
    match ctx
        .clients
        .lambda
        .get_function_url_config()
        .function_name(function)
        .qualifier(alias)
        .send()
        .await
    {
        Ok(out) => Ok(Some((
            out.function_url().to_owned(),
            out.auth_type().clone(),
        ))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ctx.clients.error(
            "lambda:GetFunctionUrlConfig",
            &format!("function {function}:{alias}"),
            e,
        )),
    }
}

async fn url(ctx: &Ctx<'_>, target: &Target) -> anyhow::Result<(Door, bool)> {
    let lambda = &ctx.clients.lambda;
    let resource = format!("function {}:{}", target.function, target.stage);
    let want = url_auth_type(ctx);
    let found = if target.alias_is_new {
        None
    } else {
        find_url(ctx, &target.function, &target.stage).await?
    };
    let make = |url: String, change| Door {
        kind: Kind::Url,
        url,
        api_id: None,
        change,
    };
    match found {
        Some((url, auth)) if auth == want => Ok((make(url, Change::Unchanged), false)),
        Some((url, _)) if ctx.dry_run => Ok((make(url, Change::Updated), false)),
        Some(_) => {
            let out = lambda
                .update_function_url_config()
                .function_name(&target.function)
                .qualifier(&target.stage)
                .auth_type(want)
                .send()
                .await
                .map_err(|e| {
                    ctx.clients
                        .error("lambda:UpdateFunctionUrlConfig", &resource, e)
                })?;
            Ok((make(out.function_url().to_owned(), Change::Updated), false))
        }
        None if ctx.dry_run => Ok((make(String::new(), Change::Created), true)),
        None => {
            ctx.progress
                .step(&format!("{resource}: creating a Function URL"));
            let out = lambda
                .create_function_url_config()
                .function_name(&target.function)
                .qualifier(&target.stage)
                .auth_type(want)
                .send()
                .await
                .map_err(|e| {
                    ctx.clients
                        .error("lambda:CreateFunctionUrlConfig", &resource, e)
                })?;
            Ok((make(out.function_url().to_owned(), Change::Created), true))
        }
    }
}

// ---- Removal -----------------------------------------------------------------------------

/// Removes a stage's door of `kind` (after the stage moved to another kind). Returns whether
/// anything was there.
pub async fn remove(
    ctx: &Ctx<'_>,
    kind: Kind,
    function: &str,
    stage: &str,
) -> anyhow::Result<bool> {
    let name = names::api(ctx.config, stage);
    let found = match kind {
        Kind::Http => match find_http(ctx, &name).await? {
            Some(api) => {
                if !ctx.dry_run {
                    let id = api.api_id().unwrap_or_default();
                    ctx.clients
                        .apigatewayv2
                        .delete_api()
                        .api_id(id)
                        .send()
                        .await
                        .map_err(|e| {
                            ctx.clients
                                .error("apigateway:DELETE", &format!("/apis/{id}"), e)
                        })?;
                }
                true
            }
            None => false,
        },
        Kind::Rest => match find_rest(ctx, &name).await? {
            Some(api) => {
                if !ctx.dry_run {
                    let id = api.id().unwrap_or_default();
                    ctx.clients
                        .apigateway
                        .delete_rest_api()
                        .rest_api_id(id)
                        .send()
                        .await
                        .map_err(|e| {
                            ctx.clients
                                .error("apigateway:DELETE", &format!("/restapis/{id}"), e)
                        })?;
                }
                true
            }
            None => false,
        },
        Kind::Url => match find_url(ctx, function, stage).await? {
            Some(_) => {
                if !ctx.dry_run {
                    ctx.clients
                        .lambda
                        .delete_function_url_config()
                        .function_name(function)
                        .qualifier(stage)
                        .send()
                        .await
                        .map_err(|e| {
                            ctx.clients.error(
                                "lambda:DeleteFunctionUrlConfig",
                                &format!("function {function}:{stage}"),
                                e,
                            )
                        })?;
                }
                true
            }
            None => false,
        },
    };
    let sids = match kind {
        Kind::Http | Kind::Rest => vec![names::invoke_statement(stage)],
        Kind::Url => vec![
            names::url_statement(stage),
            names::url_invoke_statement(stage),
        ],
    };
    for sid in sids {
        permission::remove(ctx, function, Some(stage), &sid).await?;
    }
    Ok(found)
}
