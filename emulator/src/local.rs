//! What the `up-emulator` binary needs around the emulator: the function settings from
//! `up.json`, and a freshly built `bootstrap`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};

/// Lambda settings the emulator honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSettings {
    /// `lambda.timeout` in seconds (default 60).
    pub timeout: Duration,
    /// `lambda.memory` in MB (default 512).
    pub memory_mb: u32,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            memory_mb: 512,
        }
    }
}

/// Reads `lambda.timeout` and `lambda.memory` from `dir/up.json`, loosely: every other key is
/// ignored (validating `up.json` is `up-config`'s job). A missing file gives the defaults.
pub fn read_function_settings(dir: &Path) -> Result<FunctionSettings> {
    let path = dir.join("up.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FunctionSettings::default());
        }
        Err(source) => return Err(Error::ReadConfig { path, source }),
    };
    function_settings(&text).map_err(|reason| Error::BadConfig { path, reason })
}

/// [`read_function_settings`] on the file's text.
fn function_settings(text: &str) -> std::result::Result<FunctionSettings, String> {
    let value: Value = serde_json::from_str(text).map_err(|err| format!("invalid JSON: {err}"))?;
    let mut settings = FunctionSettings::default();
    let lambda = value.get("lambda");
    let number = |key: &str| -> std::result::Result<Option<u64>, String> {
        match lambda.and_then(|l| l.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("lambda.{key} must be a positive integer, got {v}")),
        }
    };
    if let Some(secs) = number("timeout")? {
        settings.timeout = Duration::from_secs(secs);
    }
    if let Some(mb) = number("memory")? {
        settings.memory_mb =
            u32::try_from(mb).map_err(|_| format!("lambda.memory {mb} is too large"))?;
    }
    Ok(settings)
}

/// The workspace root, known at compile time.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Builds the bootstrap with `cargo build --release -p up-proxy --bin bootstrap` in the
/// workspace root (cargo's output goes to stderr) and returns the binary's path under
/// `target_dir` (relative to the workspace root; default `target`).
pub async fn build_bootstrap(cargo: &OsStr, target_dir: Option<&Path>) -> Result<PathBuf> {
    let root = workspace_root();
    let args = ["build", "--release", "-p", "up-proxy", "--bin", "bootstrap"];
    let command = format!("{} {}", cargo.to_string_lossy(), args.join(" "));
    let status = tokio::process::Command::new(cargo)
        .args(args)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .await
        .map_err(|err| Error::Build {
            command: command.clone(),
            reason: err.to_string(),
        })?;
    if !status.success() {
        return Err(Error::Build {
            command,
            reason: crate::error::describe_exit(Some(status)),
        });
    }
    let target = target_dir.map_or_else(|| root.join("target"), |dir| root.join(dir));
    Ok(target.join("release").join("bootstrap"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_timeout_and_memory() {
        let settings = function_settings(
            r#"{"name": "x", "lambda": {"timeout": 15, "memory": 1024, "other": true}, "proxy": {}}"#,
        )
        .unwrap();
        assert_eq!(
            settings,
            FunctionSettings {
                timeout: Duration::from_secs(15),
                memory_mb: 1024
            }
        );
        assert_eq!(
            function_settings(r#"{"name": "x"}"#).unwrap(),
            FunctionSettings::default()
        );
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let err = function_settings(r#"{"lambda": {"timeout": "soon"}}"#).unwrap_err();
        assert!(err.contains("lambda.timeout"), "{err}");
        let err = function_settings(r#"{"lambda": {"memory": 0}}"#).unwrap_err();
        assert!(err.contains("lambda.memory"), "{err}");
        assert!(function_settings("{").unwrap_err().contains("invalid JSON"));
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_function_settings(dir.path()).unwrap(),
            FunctionSettings::default()
        );
        std::fs::write(dir.path().join("up.json"), r#"{"lambda": {"timeout": 3}}"#).unwrap();
        assert_eq!(
            read_function_settings(dir.path()).unwrap().timeout,
            Duration::from_secs(3)
        );
    }
}
