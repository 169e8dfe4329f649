//! Reading `up.json`, choosing a stage, and turning every problem into one clear line.

use crate::error::ConfigError;
use crate::schema::{AppType, Config, STAGE_OVERRIDABLE};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The name of the config file.
pub const FILE_NAME: &str = "up.json";

/// Stages that exist without being declared under `stages`.
pub const IMPLICIT_STAGES: &[&str] = &["development", "staging", "production"];

/// Loads `dir/up.json` (defaults when the file does not exist), applies `stage`'s overrides and
/// fills in a detected `proxy.command`. Every stage is validated, not only the chosen one.
pub fn load(dir: &Path, stage: Option<&str>) -> Result<Config, ConfigError> {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let mut config = parse(text.as_deref().unwrap_or("{}"), &path, stage)?;
    if config.name.is_empty() {
        config.name = default_name(dir);
    }
    if config.kind == AppType::Server && config.proxy.command.is_none() {
        config.proxy.command = Some(crate::detect::detect_command(dir));
    }
    Ok(config)
}

fn default_name(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name()
        .map_or_else(|| "app".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// Parses `text` (the contents of `path`) with `stage`'s overrides applied. No file system
/// access: the name and command stay as written.
pub fn parse(text: &str, path: &Path, stage: Option<&str>) -> Result<Config, ConfigError> {
    let root: Value = serde_json::from_str(text).map_err(|e| syntax(path, &e))?;
    let base: Config = from_value(root.clone(), path, "")?;
    validate_name(&base.name, path)?;

    // Every stage must be valid, whichever one this process runs as.
    let mut chosen = None;
    for (name, stage_config) in &base.stages {
        let prefix = format!("stages.{name}.");
        let mut merged = root.clone();
        for (key, value) in &stage_config.overrides {
            if !STAGE_OVERRIDABLE.contains(&key.as_str()) {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key: format!("{prefix}{key}"),
                    message: format!(
                        "unknown key; a stage may set domain, zone, path, cert, {}",
                        STAGE_OVERRIDABLE.join(", ")
                    ),
                });
            }
            merge(merged_section(&mut merged, key), value.clone());
        }
        let config = from_value(merged, path, &prefix)?;
        if stage == Some(name.as_str()) {
            chosen = Some(config);
        }
    }
    match (stage, chosen) {
        (_, Some(config)) => Ok(config),
        (None, None) => Ok(base),
        (Some(s), None) if IMPLICIT_STAGES.contains(&s) => Ok(base),
        (Some(s), None) => {
            let mut known: Vec<&str> = IMPLICIT_STAGES.to_vec();
            known.extend(
                base.stages
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !IMPLICIT_STAGES.contains(k)),
            );
            Err(ConfigError::UnknownStage {
                path: path.to_path_buf(),
                stage: s.to_owned(),
                known: known.join(", "),
            })
        }
    }
}

fn merged_section<'a>(root: &'a mut Value, key: &str) -> &'a mut Value {
    // `root` is an object: `parse` deserialized it into `Config`, which only accepts objects.
    match root {
        Value::Object(map) => map.entry(key.to_owned()).or_insert(Value::Null),
        other => other,
    }
}

/// Objects merge key by key (recursively); anything else replaces.
fn merge(target: &mut Value, overlay: Value) {
    match (target, overlay) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, v) in o {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, o) => *t = o,
    }
}

fn from_value(value: Value, path: &Path, prefix: &str) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = match e.path().to_string() {
            p if p == "." => prefix.trim_end_matches('.').to_owned(),
            p => format!("{prefix}{p}"),
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            key: if key.is_empty() {
                "(top level)".to_owned()
            } else {
                key
            },
            message: e.into_inner().to_string(),
        }
    })
}

fn validate_name(name: &str, path: &Path) -> Result<(), ConfigError> {
    let ok = name.len() <= 50
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        path: path.to_path_buf(),
        key: "name".into(),
        message: format!("expected letters, digits, '-' or '_' (at most 50), got {name:?}"),
    })
}

fn syntax(path: &Path, e: &serde_json::Error) -> ConfigError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    ConfigError::Syntax {
        path: PathBuf::from(path),
        message: full.strip_suffix(&suffix).unwrap_or(&full).to_owned(),
        line: e.line(),
        column: e.column(),
    }
}
