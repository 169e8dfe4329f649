//! Shared by the warmer's end-to-end suite and its benchmark: the built `warmer` binary, and
//! deploying the warm target (the real bootstrap wrapping `examples/python-echo`) and the
//! warmer function to ministack.

#![allow(dead_code)] // each user (suite, bench) needs a different part

use std::path::PathBuf;

use up_tests::ministack::{Ministack, Source, package_zip};
use up_tests::paths;

/// Where [`WARMER_BUILD`] puts the binary, relative to the target directory.
const WARMER_IN_TARGET: &str = "x86_64-unknown-linux-musl/release/warmer";

/// The command that builds the static `warmer`. `ring` (the SDK's TLS) compiles C, and cc-rs
/// looks for `x86_64-linux-musl-gcc` when cross-compiling to musl; the host gcc does.
pub const WARMER_BUILD: &str = "CC_x86_64_unknown_linux_musl=gcc cargo build --release -p up-warmer --target x86_64-unknown-linux-musl";

/// The static musl `warmer`: `$UP_WARMER` if set, else
/// `<target>/x86_64-unknown-linux-musl/release/warmer`.
///
/// # Panics
/// If the file does not exist, with the command that builds it.
pub fn warmer_binary() -> PathBuf {
    let path = match std::env::var_os("UP_WARMER").filter(|v| !v.is_empty()) {
        Some(path) => paths::workspace_root().join(path),
        None => paths::target_dir().join(WARMER_IN_TARGET),
    };
    assert!(
        path.is_file(),
        "warmer not built: run scripts/test (or {WARMER_BUILD}) (looked for {})",
        path.display()
    );
    path
}

/// Deploy the real bootstrap with `examples/python-echo` as `function` (stage `alias`), then
/// publish a version behind `alias`. Returns the alias ARN.
pub async fn deploy_echo(ministack: &Ministack, function: &str, alias: &str) -> String {
    let bootstrap = paths::bootstrap_path();
    let app = paths::example_dir("python-echo");
    let zip = package_zip(&[
        ("bootstrap", Source::Path(&bootstrap), true),
        ("app.py", Source::Path(&app.join("app.py")), false),
        ("up.json", Source::Path(&app.join("up.json")), false),
    ])
    .expect("packaging the target's zip");
    ministack
        .deploy_function(function, zip, &[("UP_STAGE", alias)])
        .await
        .expect("deploying the target function");
    ministack
        .publish_alias(function, alias)
        .await
        .expect("publishing the target's alias")
}

/// Deploy the real `warmer` binary as function `name`, its `AWS_ENDPOINT_URL` pointing back at
/// ministack. Returns the function ARN.
pub async fn deploy_warmer(ministack: &Ministack, name: &str) -> String {
    let warmer = warmer_binary();
    let zip = package_zip(&[("bootstrap", Source::Path(&warmer), true)])
        .expect("packaging the warmer's zip");
    ministack
        .deploy_function(name, zip, &[("AWS_ENDPOINT_URL", ministack.endpoint())])
        .await
        .expect("deploying the warmer function")
}
