//! The same deploys against moto server, a second control plane written independently of
//! ministack: what each recorded (function, versions, aliases, role, HTTP and REST APIs,
//! permissions, warm rule, warmer) must match once account and generated ids are normalised.
//! moto cannot run `provided.al2023` code, so nothing is invoked there (the prewarm fails and
//! stays a warning).

// Helpers outside #[test] fns stop the test on failure like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deploy_common;

use aws_config::SdkConfig;
use deploy_common::{Project, named_after, sdk_for, warmer_path};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use up_tests::ministack::Ministack;

/// A moto server on a free loopback port; dropping it stops it.
struct Moto {
    child: std::process::Child,
    endpoint: String,
    _log_dir: tempfile::TempDir,
}

impl Moto {
    async fn start() -> Self {
        let python = up_tests::paths::venv_python();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = tempfile::Builder::new()
            .prefix("up-moto-")
            .tempdir()
            .unwrap();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let mut command = std::process::Command::new(&python);
        command
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start moto with {} ({e}): install it with .venv/bin/pip install 'moto[server]==5.2.5'",
                python.display()
            )
        });
        let endpoint = format!("http://127.0.0.1:{port}");
        let ready = format!("{endpoint}/moto-api/");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("moto.log")).unwrap_or_default();
                panic!(
                    "moto exited ({status}); is moto[server] installed in the venv (.venv/bin/pip install 'moto[server]==5.2.5')?\n{log}"
                );
            }
            let probe = tokio::time::timeout(
                Duration::from_secs(2),
                up_tests::ministack::http_request("GET", &ready, &[], Vec::<u8>::new()),
            );
            if let Ok(Ok(r)) = probe.await
                && r.status == 200
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "moto not ready at {ready}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Moto {
            child,
            endpoint,
            _log_dir: dir,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_records_what_ministack_records() {
    warmer_path();
    let ms = Ministack::start().await;
    let moto = Moto::start().await;
    let up_json = json!({
        "name": "twin",
        "proxy": {"command": "python3 app.py"},
        "environment": {"GREETING": "hi"},
        "lambda": {"memory": 256, "timeout": 20,
                   "policy": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
        "stages": {"production": {"lambda": {"endpoint": "rest", "warm": true, "warm_count": 3}}}
    });
    let project = Project::python_echo(&up_json);
    let mut summaries = Vec::new();
    for endpoint in [ms.endpoint(), moto.endpoint.as_str()] {
        let staging = project
            .up(endpoint, &["deploy", "--output", "json"])
            .await
            .json();
        let production = project
            .up(endpoint, &["deploy", "production", "--output", "json"])
            .await
            .json();
        // A redeploy converges without changes on both.
        let again = project
            .up(endpoint, &["deploy", "--output", "json"])
            .await
            .json();
        assert_eq!(again["published"], false, "{endpoint}: {again}");
        summaries.push((staging, production));
    }
    let on_moto = &summaries[1].1;
    assert!(
        on_moto["warm"]["prewarm_error"].is_string(),
        "moto cannot run the warmer: the prewarm is a warning there: {on_moto}"
    );

    let recorded_ms = record(&ms.sdk_config(), "twin").await;
    let recorded_moto = record(&sdk_for(&moto.endpoint, "test", "test"), "twin").await;
    assert_eq!(
        recorded_ms,
        recorded_moto,
        "ministack:\n{}\nmoto:\n{}",
        serde_json::to_string_pretty(&recorded_ms).unwrap(),
        serde_json::to_string_pretty(&recorded_moto).unwrap()
    );

    // Both end empty after `up stack delete`.
    for (endpoint, sdk) in [
        (ms.endpoint(), ms.sdk_config()),
        (
            moto.endpoint.as_str(),
            sdk_for(&moto.endpoint, "test", "test"),
        ),
    ] {
        project
            .up(endpoint, &["stack", "delete", "--yes"])
            .await
            .ok();
        let left: Vec<String> = named_after(&sdk, "twin")
            .await
            .into_iter()
            // Log groups come from invocations; moto runs none.
            .filter(|r| !r.starts_with("log group"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "{endpoint}");
    }
}

/// Replaces account ids and generated API ids so two control planes compare.
struct Normaliser {
    replacements: Vec<(String, String)>,
}

impl Normaliser {
    fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (from, to) in &self.replacements {
            if !from.is_empty() {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    }

    fn value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, self.value(v))).collect())
            }
            other => other,
        }
    }
}

fn sorted<K: Into<String>, V: Into<Value>>(map: impl IntoIterator<Item = (K, V)>) -> Value {
    let map: BTreeMap<String, Value> = map.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    Value::Object(map.into_iter().collect::<Map<_, _>>())
}

fn url_decoded_json(text: &str) -> Value {
    let decoded = percent_decode(text);
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// What the control plane at `sdk` recorded for `app`, normalised.
async fn record(sdk: &SdkConfig, app: &str) -> Value {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let iam = aws_sdk_iam::Client::new(sdk);
    let v2 = aws_sdk_apigatewayv2::Client::new(sdk);
    let v1 = aws_sdk_apigateway::Client::new(sdk);
    let events = aws_sdk_cloudwatchevents::Client::new(sdk);

    let function = lambda
        .get_function()
        .function_name(app)
        .send()
        .await
        .unwrap();
    let config = function.configuration().unwrap();
    let account = config
        .function_arn()
        .unwrap()
        .split(':')
        .nth(4)
        .unwrap()
        .to_owned();
    let api = v2
        .get_apis()
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .find(|a| a.name() == Some(&format!("{app}-staging")))
        .cloned()
        .expect("HTTP API");
    let api_id = api.api_id().unwrap().to_owned();
    let rest = v1
        .get_rest_apis()
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .find(|a| a.name() == Some(&format!("{app}-production")))
        .cloned()
        .expect("REST API");
    let rest_id = rest.id().unwrap().to_owned();
    let n = Normaliser {
        replacements: vec![
            (account.clone(), "<account>".into()),
            (api_id.clone(), "<api>".into()),
            (rest_id.clone(), "<rest>".into()),
        ],
    };
    let function_record = |c: &aws_sdk_lambda::types::FunctionConfiguration| {
        json!({
            "runtime": c.runtime().map(|r| r.as_str().to_owned()),
            "handler": c.handler(),
            "memory": c.memory_size(),
            "timeout": c.timeout(),
            "role": c.role(),
            "architectures": c.architectures().iter().map(|a| a.as_str().to_owned()).collect::<Vec<_>>(),
            // An empty environment is `{}` on one, absent on the other.
            "environment": c
                .environment()
                .and_then(|e| e.variables())
                .filter(|v| !v.is_empty())
                .map(|v| sorted(v.clone())),
            "description": c.description().unwrap_or_default(),
        })
    };
    let mut aliases = Map::new();
    for stage in ["staging", "production"] {
        let alias = lambda
            .get_alias()
            .function_name(app)
            .name(stage)
            .send()
            .await
            .unwrap();
        let version = lambda
            .get_function_configuration()
            .function_name(app)
            .qualifier(stage)
            .send()
            .await
            .unwrap();
        let version_config = aws_sdk_lambda::types::FunctionConfiguration::builder()
            .set_runtime(version.runtime().cloned())
            .set_handler(version.handler().map(str::to_owned))
            .set_memory_size(version.memory_size())
            .set_timeout(version.timeout())
            .set_role(version.role().map(str::to_owned))
            .set_architectures(Some(version.architectures().to_vec()))
            .set_environment(version.environment().cloned())
            .set_description(version.description().map(str::to_owned))
            .build();
        aliases.insert(
            stage.to_owned(),
            json!({
                "version": alias.function_version(),
                "config": function_record(&version_config),
            }),
        );
    }
    let mut permissions = Map::new();
    for stage in ["staging", "production"] {
        let policy = lambda
            .get_policy()
            .function_name(app)
            .qualifier(stage)
            .send()
            .await
            .unwrap();
        let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
        let statement = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == format!("up-{stage}-invoke"))
            .cloned()
            .unwrap_or(Value::Null);
        permissions.insert(
            stage.to_owned(),
            json!({
                "principal": statement["Principal"]["Service"],
                "action": statement["Action"],
                "source": statement["Condition"]["ArnLike"]["AWS:SourceArn"],
            }),
        );
    }
    let mut roles = Map::new();
    for role_name in [format!("{app}-function"), format!("{app}-warmer")] {
        let role = iam
            .get_role()
            .role_name(&role_name)
            .send()
            .await
            .unwrap()
            .role
            .unwrap();
        let inline = iam
            .list_role_policies()
            .role_name(&role_name)
            .send()
            .await
            .unwrap();
        let document = iam
            .get_role_policy()
            .role_name(&role_name)
            .policy_name("up")
            .send()
            .await
            .unwrap();
        roles.insert(
            role_name,
            json!({
                "trust": url_decoded_json(role.assume_role_policy_document().unwrap_or_default()),
                "inline": inline.policy_names(),
                "policy": url_decoded_json(document.policy_document()),
                // `up:policy` hashes the policies, which name the account: compare the policies.
                "tags": sorted(role.tags().iter().map(|t| {
                    let value = if t.key() == "up:policy" { "<hash>" } else { t.value() };
                    (t.key().to_owned(), value.to_owned())
                })),
            }),
        );
    }
    let integrations = v2.get_integrations().api_id(&api_id).send().await.unwrap();
    let integration = &integrations.items()[0];
    let routes = v2.get_routes().api_id(&api_id).send().await.unwrap();
    let stages = v2.get_stages().api_id(&api_id).send().await.unwrap();
    let resources = v1
        .get_resources()
        .rest_api_id(&rest_id)
        .send()
        .await
        .unwrap();
    let mut rest_resources = Map::new();
    for resource in resources.items() {
        let path = resource.path().unwrap_or_default().to_owned();
        let integration = v1
            .get_integration()
            .rest_api_id(&rest_id)
            .resource_id(resource.id().unwrap())
            .http_method("ANY")
            .send()
            .await
            .ok();
        rest_resources.insert(
            path,
            json!({
                "type": integration.as_ref().and_then(|i| i.r#type()).map(|t| t.as_str().to_owned()),
                "method": integration.as_ref().and_then(|i| i.http_method()),
                "uri": integration.as_ref().and_then(|i| i.uri()),
            }),
        );
    }
    let rest_stages = v1.get_stages().rest_api_id(&rest_id).send().await.unwrap();
    let rule = events
        .describe_rule()
        .name(format!("{app}-warm-production"))
        .send()
        .await
        .unwrap();
    let targets = events
        .list_targets_by_rule()
        .rule(format!("{app}-warm-production"))
        .send()
        .await
        .unwrap();
    let warmer = lambda
        .get_function_configuration()
        .function_name(format!("{app}-warmer"))
        .send()
        .await
        .unwrap();
    let warmer_config = aws_sdk_lambda::types::FunctionConfiguration::builder()
        .set_runtime(warmer.runtime().cloned())
        .set_handler(warmer.handler().map(str::to_owned))
        .set_memory_size(warmer.memory_size())
        .set_timeout(warmer.timeout())
        .set_role(warmer.role().map(str::to_owned))
        .set_architectures(Some(warmer.architectures().to_vec()))
        .set_environment(warmer.environment().cloned())
        .set_description(warmer.description().map(str::to_owned))
        .build();

    n.value(json!({
        "function": function_record(config),
        "function_tags": sorted(function.tags().cloned().unwrap_or_default()),
        "aliases": aliases,
        "permissions": permissions,
        "roles": roles,
        "http_api": {
            "name": api.name(),
            "protocol": api.protocol_type().map(|p| p.as_str().to_owned()),
            "tags": api.tags().map(|t| sorted(t.clone())),
            "integration": {
                "type": integration.integration_type().map(|t| t.as_str().to_owned()),
                "uri": integration.integration_uri(),
                "payload": integration.payload_format_version(),
            },
            "routes": routes.items().iter().map(|r| json!([r.route_key(), r.target().map(|t| t.starts_with("integrations/"))])).collect::<Vec<_>>(),
            "stages": stages.items().iter().map(|s| s.stage_name().map(str::to_owned)).collect::<Vec<_>>(),
        },
        "rest_api": {
            "name": rest.name(),
            // Not compared: moto 5.2.5 drops `binaryMediaTypes` on CreateRestApi (ministack and
            // AWS keep `*/*`); deploy_ministack checks it.
            "tags": rest.tags().map(|t| sorted(t.clone())),
            "resources": rest_resources,
            "stages": rest_stages.item().iter().map(|s| s.stage_name().map(str::to_owned)).collect::<Vec<_>>(),
        },
        "rule": {
            "schedule": rule.schedule_expression(),
            "state": rule.state().map(|s| s.as_str().to_owned()),
            "targets": targets.targets().iter().map(|t| json!({
                "id": t.id(),
                "arn": t.arn(),
                "input": t.input().map(|i| serde_json::from_str::<Value>(i).unwrap()),
            })).collect::<Vec<_>>(),
        },
        "warmer": function_record(&warmer_config),
    }))
}
