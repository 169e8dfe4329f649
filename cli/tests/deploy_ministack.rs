//! `up deploy`, `url`, `rollback`, `stack plan`/`delete` end to end: the real `up` binary
//! deploys the real python-echo app with the real bootstrap to ministack, and the tests call
//! the app through the front door ministack serves.

// Helpers outside #[test] fns stop the test on failure like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deploy_common;

use deploy_common::{Project, echo, http_api_base, named_after, versions};
use serde_json::json;
use up_tests::ministack::Ministack;

#[tokio::test(flavor = "multi_thread")]
async fn deploy_change_rollback_and_delete() {
    let ms = Ministack::start().await;
    let sdk = ms.sdk_config();
    let endpoint = ms.endpoint();
    let project =
        Project::python_echo(&json!({"name": "echo", "proxy": {"command": "python3 app.py"}}));

    // First deploy: everything is created and the app answers through the HTTP API.
    let first = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert_eq!(first["stage"], "staging");
    assert_eq!(first["front_door"]["kind"], "http");
    assert_eq!(first["version"], "1");
    assert_eq!(first["published"], true);
    let base = http_api_base(endpoint, &first);
    let answer = echo(&format!("{base}/hello?x=1")).await;
    assert_eq!(answer["path"], "/hello");
    assert_eq!(answer["query"], "x=1");
    assert_eq!(answer["env"]["UP_STAGE"], "staging");
    assert!(answer.get("v").is_none(), "{answer}");

    // What ministack recorded.
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let function = lambda
        .get_function()
        .function_name("echo")
        .send()
        .await
        .unwrap();
    let config = function.configuration().unwrap();
    assert_eq!(
        config.runtime().map(|r| r.as_str()),
        Some("provided.al2023")
    );
    assert_eq!(config.handler(), Some("bootstrap"));
    assert_eq!(config.memory_size(), Some(512));
    assert_eq!(config.timeout(), Some(60));
    assert!(config.role().unwrap().ends_with(":role/echo-function"));
    assert_eq!(function.tags().unwrap()["up:app"], "echo");
    let alias = lambda
        .get_alias()
        .function_name("echo")
        .name("staging")
        .send()
        .await
        .unwrap();
    assert_eq!(alias.function_version(), Some("1"));
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = iam
        .get_role()
        .role_name("echo-function")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert!(
        role.tags()
            .iter()
            .any(|t| t.key() == "up:app" && t.value() == "echo")
    );
    let policy = iam
        .get_role_policy()
        .role_name("echo-function")
        .policy_name("up")
        .send()
        .await
        .unwrap();
    assert!(
        policy.policy_document().contains("logs%3APutLogEvents")
            || policy.policy_document().contains("logs:PutLogEvents")
    );
    let apis = aws_sdk_apigatewayv2::Client::new(&sdk)
        .get_apis()
        .send()
        .await
        .unwrap();
    let api = apis
        .items()
        .iter()
        .find(|a| a.name() == Some("echo-staging"))
        .unwrap();
    assert_eq!(api.tags().unwrap()["up:stage"], "staging");

    // A second deploy without changes converges without publishing.
    let second = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert_eq!(second["published"], false);
    assert_eq!(second["version"], "1");
    assert_eq!(second["url"], first["url"]);
    assert_eq!(versions(&sdk, "echo").await, ["1"]);
    let plan = project.up(endpoint, &["stack", "plan"]).await;
    plan.ok();
    assert!(plan.stdout.contains("0 to change"), "{}", plan.stdout);

    // A code change is a new version behind the same URL.
    project.change_app(2);
    let plan = project
        .up(endpoint, &["stack", "plan", "--output", "json"])
        .await
        .json();
    let function_step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["resource"] == "function" && s["name"] == "echo")
        .unwrap()
        .clone();
    assert_eq!(function_step["change"], "updated", "{plan}");
    let third = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert_eq!(third["version"], "2");
    assert_eq!(third["previous_version"], "1");
    assert_eq!(third["url"], first["url"]);
    assert_eq!(echo(&format!("{base}/hello")).await["v"], 2);

    let url = project
        .up(endpoint, &["url", "--output", "json"])
        .await
        .json();
    assert_eq!(url["url"], first["url"]);
    let text = project.up(endpoint, &["url"]).await;
    assert_eq!(text.ok().stdout.trim(), first["url"].as_str().unwrap());

    // Rollback serves the old answer; a second rollback toggles back.
    let back = project
        .up(endpoint, &["rollback", "--output", "json"])
        .await
        .json();
    assert_eq!(
        (back["from"].as_str(), back["to"].as_str()),
        (Some("2"), Some("1"))
    );
    assert!(echo(&format!("{base}/hello")).await.get("v").is_none());
    let again = project
        .up(endpoint, &["rollback", "--output", "json"])
        .await
        .json();
    assert_eq!(
        (again["from"].as_str(), again["to"].as_str()),
        (Some("1"), Some("2"))
    );
    assert_eq!(echo(&format!("{base}/hello")).await["v"], 2);

    // Delete leaves nothing named after the app.
    let deleted = project
        .up(endpoint, &["stack", "delete", "--yes", "--output", "json"])
        .await
        .json();
    assert!(!deleted["deleted"].as_array().unwrap().is_empty());
    assert_eq!(named_after(&sdk, "echo").await, Vec::<String>::new());
    let url = project.up(endpoint, &["url"]).await;
    assert!(
        url.error_line().contains("is not deployed"),
        "{}",
        url.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redeploy_converges_after_interruptions() {
    let ms = Ministack::start().await;
    let sdk = ms.sdk_config();
    let endpoint = ms.endpoint();
    let project =
        Project::python_echo(&json!({"name": "halt", "proxy": {"command": "python3 app.py"}}));

    // Kill the first deploy as soon as the function exists (before alias and API).
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let mut child = project
        .command(endpoint, &["deploy"], &[])
        .spawn()
        .expect("spawn up deploy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if lambda
            .get_function()
            .function_name("halt")
            .send()
            .await
            .is_ok()
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("up deploy ended ({status}) before the function existed");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the function never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let resumed = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    let base = http_api_base(endpoint, &resumed);
    assert_eq!(
        echo(&format!("{base}/after-kill")).await["path"],
        "/after-kill"
    );

    // Remove the alias and the API behind up's back: the next deploy puts them back.
    lambda
        .delete_alias()
        .function_name("halt")
        .name("staging")
        .send()
        .await
        .unwrap();
    let v2 = aws_sdk_apigatewayv2::Client::new(&sdk);
    v2.delete_api()
        .api_id(resumed["front_door"]["api_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let repaired = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    let changes: Vec<(String, String)> = repaired["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["resource"].as_str().unwrap().to_owned(),
                s["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("alias".into(), "created".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("http-api".into(), "created".into())),
        "{changes:?}"
    );
    assert_eq!(repaired["published"], false, "the code did not change");
    let base = http_api_base(endpoint, &repaired);
    assert_eq!(echo(&format!("{base}/repaired")).await["path"], "/repaired");
    let steady = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert!(
        steady["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["change"] == "unchanged"),
        "{steady}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_get_http_rest_and_function_url_doors() {
    let ms = Ministack::start().await;
    let sdk = ms.sdk_config();
    let endpoint = ms.endpoint();
    let up_json = json!({
        "name": "doors",
        "proxy": {"command": "python3 app.py"},
        "environment": {"GREETING": "hi"},
        "stages": {
            "production": {"lambda": {"endpoint": "rest", "memory": 1024}},
            "preview": {"url": true}
        }
    });
    let project = Project::python_echo(&up_json);

    let staging = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert_eq!(
        echo(&format!("{}/s", http_api_base(endpoint, &staging))).await["env"]["UP_STAGE"],
        "staging"
    );

    let production = project
        .up(endpoint, &["deploy", "production", "--output", "json"])
        .await
        .json();
    assert_eq!(production["front_door"]["kind"], "rest");
    let rest_id = production["front_door"]["api_id"].as_str().unwrap();
    let rest = aws_sdk_apigateway::Client::new(&sdk)
        .get_rest_api()
        .rest_api_id(rest_id)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.binary_media_types(), ["*/*"]);
    let answer = echo(&format!(
        "{endpoint}/_aws/execute-api/{rest_id}/production/p"
    ))
    .await;
    assert_eq!(answer["env"]["UP_STAGE"], "production");
    assert_eq!(answer["path"], "/p");
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let prod = lambda
        .get_function_configuration()
        .function_name("doors")
        .qualifier("production")
        .send()
        .await
        .unwrap();
    assert_eq!(prod.memory_size(), Some(1024));
    assert_eq!(
        prod.environment().unwrap().variables().unwrap()["GREETING"],
        "hi"
    );

    let preview = project
        .up(endpoint, &["deploy", "preview", "--output", "json"])
        .await
        .json();
    assert_eq!(preview["front_door"]["kind"], "url");
    let url = preview["url"].as_str().unwrap();
    let url_id = url
        .strip_prefix("https://")
        .and_then(|u| u.split('.').next())
        .unwrap();
    let answer = echo(&format!("{endpoint}/_aws/lambda-url/{url_id}/v")).await;
    assert_eq!(answer["env"]["UP_STAGE"], "preview");

    // Each stage kept its own version; staging still answers as staging.
    assert_eq!(
        echo(&format!("{}/s", http_api_base(endpoint, &staging))).await["env"]["UP_STAGE"],
        "staging"
    );

    // Moving staging to a REST API removes its HTTP API.
    let mut moved = up_json.clone();
    moved["lambda"] = json!({"endpoint": "rest"});
    project.write_up_json(&moved);
    let restaged = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert_eq!(restaged["front_door"]["kind"], "rest");
    let apis = aws_sdk_apigatewayv2::Client::new(&sdk)
        .get_apis()
        .send()
        .await
        .unwrap();
    assert!(
        !apis
            .items()
            .iter()
            .any(|a| a.name() == Some("doors-staging")),
        "the old HTTP API is still there"
    );
    let rest_id = restaged["front_door"]["api_id"].as_str().unwrap();
    let answer = echo(&format!(
        "{endpoint}/_aws/execute-api/{rest_id}/staging/moved"
    ))
    .await;
    assert_eq!(answer["path"], "/moved");

    project
        .up(endpoint, &["stack", "delete", "--yes"])
        .await
        .ok();
    assert_eq!(named_after(&sdk, "doors").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_over_the_direct_limit_goes_through_s3() {
    let ms = Ministack::start().await;
    let sdk = ms.sdk_config();
    let endpoint = ms.endpoint();
    let project =
        Project::python_echo(&json!({"name": "big", "proxy": {"command": "python3 app.py"}}));
    // 52 MB that deflate cannot shrink (xorshift noise).
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..52_000_000 / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    std::fs::write(project.path().join("blob.bin"), noise).unwrap();

    let deployed = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert_eq!(deployed["package"]["upload"], "s3");
    assert!(deployed["package"]["bytes"].as_u64().unwrap() > 50_000_000);
    let answer = echo(&format!("{}/big", http_api_base(endpoint, &deployed))).await;
    assert_eq!(answer["path"], "/big");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let objects = s3
        .list_objects_v2()
        .bucket("up-000000000000-us-east-1")
        .prefix("big/")
        .send()
        .await
        .unwrap();
    assert_eq!(objects.contents().len(), 1);

    project
        .up(endpoint, &["stack", "delete", "--yes"])
        .await
        .ok();
    assert_eq!(named_after(&sdk, "big").await, Vec::<String>::new());
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(
        !buckets
            .buckets()
            .iter()
            .any(|b| b.name() == Some("up-000000000000-us-east-1")),
        "the emptied bucket is left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn git_commit_gets_its_alias_and_variable() {
    let ms = Ministack::start().await;
    let sdk = ms.sdk_config();
    let endpoint = ms.endpoint();
    let project =
        Project::python_echo(&json!({"name": "gitapp", "proxy": {"command": "python3 app.py"}}));
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=up", "-c", "user.email=up@example.com"])
            .args(args)
            .current_dir(project.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    let sha = String::from_utf8(
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(project.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();

    let deployed = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    let alias = format!("commit-{}", &sha[..12]);
    assert_eq!(deployed["commit"], sha.as_str());
    assert_eq!(deployed["commit_alias"], alias.as_str());
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let found = lambda
        .get_alias()
        .function_name("gitapp")
        .name(&alias)
        .send()
        .await
        .unwrap();
    assert_eq!(found.function_version(), Some("1"));
    let config = lambda
        .get_function_configuration()
        .function_name("gitapp")
        .qualifier("staging")
        .send()
        .await
        .unwrap();
    assert_eq!(
        config.environment().unwrap().variables().unwrap()["UP_COMMIT"],
        sha
    );
}
