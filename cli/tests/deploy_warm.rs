//! `lambda.warm`: `up deploy` puts up the warmer function (the real `warmer` binary), its role,
//! the stage's schedule and permission, and prewarms right after the alias moves; turning warm
//! off removes them again. Against ministack, with the real bootstrap and python-echo.

// Helpers outside #[test] fns stop the test on failure like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deploy_common;

use deploy_common::{Project, echo, http_api_base, named_after, warmer_path};
use serde_json::{Value, json};
use up_tests::ministack::Ministack;

#[tokio::test(flavor = "multi_thread")]
async fn warm_stage_gets_warmer_schedule_and_prewarm() {
    warmer_path();
    let ms = Ministack::start().await;
    let sdk = ms.sdk_config();
    let endpoint = ms.endpoint();
    let up_json = json!({
        "name": "hot",
        "proxy": {"command": "python3 app.py"},
        "lambda": {"warm": true, "warm_count": 2, "warm_rate": 1}
    });
    let project = Project::python_echo(&up_json);

    let deployed = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    let warm = &deployed["warm"];
    assert_eq!(warm["function"], "hot-warmer");
    assert_eq!(warm["rule"], "hot-warm-staging");
    assert_eq!(warm["schedule"], "rate(1 minute)");
    let input = json!({"targets": [{
        "function": "hot", "qualifier": "staging", "concurrency": 2, "app": "hot", "stage": "staging"
    }]});
    assert_eq!(warm["input"], input);
    assert!(
        warm["prewarm_error"].is_null(),
        "prewarm failed: {}",
        warm["prewarm_error"]
    );
    let report = &warm["prewarm"]["reports"][0];
    assert_eq!(report["requested"], 2, "{warm}");
    assert_eq!(report["answered"], 2, "{warm}");
    // The app still answers through its front door.
    assert_eq!(
        echo(&format!("{}/warm", http_api_base(endpoint, &deployed))).await["path"],
        "/warm"
    );

    // What ministack recorded: the rule, its target and input, the permission, the role.
    let events = aws_sdk_cloudwatchevents::Client::new(&sdk);
    let rule = events
        .describe_rule()
        .name("hot-warm-staging")
        .send()
        .await
        .unwrap();
    assert_eq!(rule.schedule_expression(), Some("rate(1 minute)"));
    let targets = events
        .list_targets_by_rule()
        .rule("hot-warm-staging")
        .send()
        .await
        .unwrap();
    let target = &targets.targets()[0];
    assert!(
        target.arn().ends_with(":function:hot-warmer"),
        "{}",
        target.arn()
    );
    let sent: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(sent, input);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let policy = lambda
        .get_policy()
        .function_name("hot-warmer")
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statement = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "up-staging-warm")
        .expect("permission for the rule");
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role_policy = iam
        .get_role_policy()
        .role_name("hot-warmer")
        .policy_name("up")
        .send()
        .await
        .unwrap();
    let document = role_policy.policy_document();
    let document = percent_decode(document);
    let document: Value = serde_json::from_str(&document).unwrap();
    let invoke = document["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "lambda:InvokeFunction")
        .expect("invoke statement");
    assert!(
        invoke["Resource"]
            .as_str()
            .unwrap()
            .ends_with(":function:hot:*"),
        "{invoke}"
    );

    // A redeploy without changes touches nothing.
    let again = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert!(
        again["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["change"] == "unchanged"),
        "{again}"
    );

    // Warm off: the schedule, the warmer and its role go away.
    let mut cold = up_json.clone();
    cold["lambda"] = json!({});
    project.write_up_json(&cold);
    let off = project
        .up(endpoint, &["deploy", "--output", "json"])
        .await
        .json();
    assert!(off["warm"].is_null());
    let left = named_after(&sdk, "hot").await;
    assert!(
        left.iter().all(|r| !r.contains("warm")),
        "warm resources left: {left:?}"
    );
    project
        .up(endpoint, &["stack", "delete", "--yes"])
        .await
        .ok();
    assert_eq!(named_after(&sdk, "hot").await, Vec::<String>::new());
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
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
