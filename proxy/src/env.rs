//! The one seam through which the bootstrap reads its environment.
//!
//! Everything the bootstrap needs from Lambda's environment is read here, once, into [`Env`];
//! tests build an [`Env`] from a map instead of mutating the process environment.

use crate::error::StartError;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The variables the bootstrap reads, captured at start-up.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

/// Variables `lambda_runtime` requires before it will start (it panics without them).
const REQUIRED: &[&str] = &[
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

impl Env {
    /// The process environment (variables that are not UTF-8 are skipped).
    pub fn from_process() -> Self {
        Self::from_iter(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// A value, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Fails with the list of missing variables unless the Lambda runtime variables are set.
    pub fn check_runtime(&self) -> Result<(), StartError> {
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|k| self.get(k).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(StartError::MissingEnv(missing.join(", ")))
    }

    /// `$LAMBDA_TASK_ROOT`, else the working directory.
    pub fn task_root(&self) -> PathBuf {
        self.get("LAMBDA_TASK_ROOT")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// `$UP_STAGE`, if set.
    pub fn stage(&self) -> Option<&str> {
        self.get("UP_STAGE")
    }

    /// The Runtime API base URI, with `http://` added when Lambda gives a bare `host:port`.
    pub fn runtime_api(&self) -> Option<String> {
        self.get("AWS_LAMBDA_RUNTIME_API").map(|api| {
            if api.starts_with("http://") || api.starts_with("https://") {
                api.trim_end_matches('/').to_owned()
            } else {
                format!("http://{}", api.trim_end_matches('/'))
            }
        })
    }
}

impl FromIterator<(String, String)> for Env {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self {
            vars: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn runtime_api_with_or_without_scheme() {
        assert_eq!(
            env(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")])
                .runtime_api()
                .as_deref(),
            Some("http://127.0.0.1:9001")
        );
        assert_eq!(
            env(&[("AWS_LAMBDA_RUNTIME_API", "http://127.0.0.1:9001/")])
                .runtime_api()
                .as_deref(),
            Some("http://127.0.0.1:9001")
        );
    }

    #[test]
    fn missing_runtime_variables_are_named() {
        let e = env(&[
            ("AWS_LAMBDA_RUNTIME_API", "x"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
        ]);
        let err = e.check_runtime().unwrap_err().to_string();
        assert!(
            err.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_VERSION"),
            "{err}"
        );
    }

    #[test]
    fn task_root_prefers_lambda_task_root() {
        assert_eq!(
            env(&[("LAMBDA_TASK_ROOT", "/var/task")]).task_root(),
            PathBuf::from("/var/task")
        );
    }
}
