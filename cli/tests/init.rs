//! `up init` through the real binary: the written `up.json` loads with up-config, an existing
//! one is kept unless `--force`, and a directory without a recognisable app is a clear error.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

fn up_init(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_up"))
        .arg("-C")
        .arg(dir)
        .arg("init")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A project directory named `name` inside a temporary directory.
fn project(name: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for (file, content) in files {
        std::fs::write(dir.join(file), content).unwrap();
    }
    (tmp, dir)
}

#[test]
fn writes_a_loadable_up_json_for_a_python_app() {
    let (_tmp, dir) = project("my shop", &[("app.py", "print()")]);
    let out = up_init(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Python app"),
        "{}",
        text(&out.stdout)
    );
    let config = up_config::load(&dir, None).unwrap();
    assert_eq!(config.name, "my-shop");
    assert_eq!(config.proxy.command.as_deref(), Some("python3 app.py"));
    // Written explicitly, not left to detection at run time.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("up.json")).unwrap()).unwrap();
    assert_eq!(
        written,
        serde_json::json!({"name": "my-shop", "proxy": {"command": "python3 app.py"}})
    );
}

#[test]
fn detects_node_and_reports_json() {
    let (_tmp, dir) = project(
        "web",
        &[(
            "package.json",
            r#"{"scripts": {"start": "node server.js"}}"#,
        )],
    );
    let out = up_init(&dir, &["--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["runtime"], "Node.js");
    assert_eq!(report["command"], "node server.js");
    assert_eq!(report["name"], "web");
    let config = up_config::load(&dir, None).unwrap();
    assert_eq!(config.proxy.command.as_deref(), Some("node server.js"));
}

#[test]
fn go_projects_get_the_build_hint() {
    let (_tmp, dir) = project("api", &[("go.mod", "module api\n")]);
    let out = up_init(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("go build -o server"));
    let config = up_config::load(&dir, None).unwrap();
    assert_eq!(config.proxy.command.as_deref(), Some("./server"));
}

#[test]
fn keeps_an_existing_up_json_unless_forced() {
    let original = r#"{"name": "mine", "proxy": {"command": "./run"}}"#;
    let (_tmp, dir) = project("app", &[("app.py", ""), ("up.json", original)]);
    let out = up_init(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("up: ") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("up.json")).unwrap(),
        original
    );

    let out = up_init(&dir, &["--force", "--name", "renamed"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = up_config::load(&dir, None).unwrap();
    assert_eq!(config.name, "renamed");
    assert_eq!(config.proxy.command.as_deref(), Some("python3 app.py"));
}

#[test]
fn unknown_projects_and_bad_names_are_clear_errors() {
    let (_tmp, dir) = project("empty", &[("README.md", "hi")]);
    let out = up_init(&dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--command"), "{stderr}");
    assert!(!dir.join("up.json").exists());

    let out = up_init(&dir, &["--command", "./run.sh"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = up_config::load(&dir, None).unwrap();
    assert_eq!(config.proxy.command.as_deref(), Some("./run.sh"));

    let (_tmp, dir) = project("x", &[("app.py", "")]);
    let out = up_init(&dir, &["--name", "bad name!"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("name"), "{}", text(&out.stderr));
    assert!(
        !dir.join("up.json").exists(),
        "nothing written for a bad name"
    );
}
