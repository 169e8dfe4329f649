//! What `up` says when it cannot work: each failure is one line naming what to do, exit status
//! 1, no panic or backtrace. The real binary runs against a closed port, an environment
//! without region or credentials, bad `up.json` files, failing hooks, and ministack with IAM
//! enforcement for a missing permission.

// Helpers outside #[test] fns stop the test on failure like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deploy_common;

use deploy_common::{AuthMinistack, Project, sdk_for};
use serde_json::json;
use up_tests::ministack::closed_endpoint;

fn echo_project() -> Project {
    Project::python_echo(&json!({"name": "errs", "proxy": {"command": "python3 app.py"}}))
}

#[tokio::test]
async fn unreachable_endpoint_is_named() {
    let project = echo_project();
    let endpoint = closed_endpoint();
    for args in [&["deploy"][..], &["url"], &["rollback"], &["stack", "plan"]] {
        let line = project.up(&endpoint, args).await.error_line();
        assert!(
            line.starts_with(&format!("up: cannot reach {endpoint}: ")),
            "{args:?}: {line}"
        );
        assert!(line.contains("AWS_ENDPOINT_URL"), "{line}");
    }
}

#[tokio::test]
async fn missing_region_says_where_to_set_it() {
    let project = echo_project();
    let endpoint = closed_endpoint();
    let run = project
        .up_with(&endpoint, &["deploy"], &[("AWS_REGION", "")])
        .await;
    assert_eq!(
        run.error_line(),
        "up: no AWS region: set AWS_REGION or \"regions\" in up.json"
    );
    // `regions` in up.json is enough (the endpoint is closed: the next problem is reaching it).
    project.write_up_json(&json!({"name": "errs", "regions": ["eu-west-1"]}));
    let run = project
        .up_with(&endpoint, &["url"], &[("AWS_REGION", "")])
        .await;
    assert!(
        run.error_line().starts_with("up: cannot reach "),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn missing_credentials_say_how_to_provide_them() {
    let project = echo_project();
    let run = project
        .up_with(
            &closed_endpoint(),
            &["url"],
            &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
        )
        .await;
    let line = run.error_line();
    assert!(
        line.starts_with("up: no AWS credentials: set AWS_ACCESS_KEY_ID"),
        "{line}"
    );
}

#[tokio::test]
async fn bad_up_json_names_the_file_and_key() {
    let project = echo_project();
    let endpoint = closed_endpoint();
    project.write_up_json(&json!({"name": "errs", "lambda": {"memory": 64}}));
    let line = project.up(&endpoint, &["deploy"]).await.error_line();
    assert!(line.starts_with("up: "), "{line}");
    assert!(
        line.ends_with("up.json: lambda.memory: expected an integer (128..=10240), got 64"),
        "{line}"
    );
    std::fs::write(project.path().join("up.json"), "{\"name\": ").unwrap();
    let line = project.up(&endpoint, &["config"]).await.error_line();
    assert!(line.contains("up.json: not valid JSON"), "{line}");
    project.write_up_json(&json!({"name": "errs"}));
    let line = project.up(&endpoint, &["deploy", "qa"]).await.error_line();
    assert!(line.contains("unknown stage \"qa\""), "{line}");
    let line = project.up(&endpoint, &["deploy", "12"]).await.error_line();
    assert!(line.contains("not only digits"), "{line}");
}

#[tokio::test]
async fn failing_hook_stops_the_deploy_before_aws() {
    let project = echo_project();
    project.write_up_json(&json!({
        "name": "errs",
        "hooks": {"build": ["echo building >&2", "exit 3"], "clean": "touch cleaned"}
    }));
    // The endpoint is closed: reaching AWS would be another error.
    let run = project.up(&closed_endpoint(), &["deploy"]).await;
    assert_eq!(
        run.error_line(),
        "up: hook build: `exit 3` failed (exit status: 3); its output is above"
    );
    assert!(run.stderr.contains("building"), "{}", run.stderr);
    assert!(
        !project.path().join("cleaned").exists(),
        "clean ran although build failed"
    );
}

#[tokio::test]
async fn missing_bootstrap_says_how_to_get_one() {
    let project = echo_project();
    let run = project
        .up_with(
            &closed_endpoint(),
            &["deploy"],
            &[("UP_BOOTSTRAP", "/nonexistent/bootstrap")],
        )
        .await;
    let line = run.error_line();
    assert!(
        line.starts_with("up: UP_BOOTSTRAP=/nonexistent/bootstrap: "),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_permission_names_the_action() {
    let ms = AuthMinistack::start().await;
    // An identity that may manage IAM and read functions, but not create them.
    let iam = aws_sdk_iam::Client::new(&ms.root_sdk());
    iam.create_user().user_name("dev").send().await.unwrap();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:*", "lambda:GetFunction"], "Resource": "*"}]
    });
    iam.put_user_policy()
        .user_name("dev")
        .policy_name("partial")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("dev")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let project = echo_project();
    let env = [
        ("AWS_ACCESS_KEY_ID", key.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key()),
    ];
    let run = project.up_with(ms.endpoint(), &["deploy"], &env).await;
    assert_eq!(
        run.error_line(),
        "up: missing permission lambda:CreateFunction on function errs: grant it to your AWS identity"
    );
    // Wrong credentials are a different message.
    let run = project
        .up_with(
            ms.endpoint(),
            &["deploy"],
            &[
                ("AWS_ACCESS_KEY_ID", "AKIANOTAKEY000000000"),
                ("AWS_SECRET_ACCESS_KEY", "x"),
            ],
        )
        .await;
    assert!(
        run.error_line()
            .starts_with("up: AWS rejected the credentials"),
        "{}",
        run.stderr
    );
    // With the permission granted, the same deploy goes through.
    let full = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:*", "lambda:*", "apigateway:*", "sts:*"], "Resource": "*"}]
    });
    iam.put_user_policy()
        .user_name("dev")
        .policy_name("partial")
        .policy_document(full.to_string())
        .send()
        .await
        .unwrap();
    project.up_with(ms.endpoint(), &["deploy"], &env).await.ok();
    let lambda = aws_sdk_lambda::Client::new(&sdk_for(
        ms.endpoint(),
        key.access_key_id(),
        key.secret_access_key(),
    ));
    lambda
        .get_function()
        .function_name("errs")
        .send()
        .await
        .unwrap();
}
