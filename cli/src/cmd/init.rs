//! `up init`: write a minimal `up.json` for the app in the project directory.
//!
//! The runtime is detected from the files present, in `up-config`'s order (a `package.json`
//! start script, `app.js`, `app.py`, `main.py`), then a `package.json` `main`, `server.js`,
//! `index.js`, a Go module or a Cargo package (both run as `./server`, built for Lambda
//! first), or a `./server` binary. The file names the app (after the directory unless
//! `--name`) and sets `proxy.command`; it is checked with `up-config` before it is written, and
//! an existing `up.json` is kept unless `--force`.

use crate::{Globals, Output};
use anyhow::{Context, bail};
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Arguments of `up init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replace an existing up.json.
    #[arg(long)]
    pub force: bool,
    /// The app's name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// The command that starts the server (default: detected).
    #[arg(long)]
    pub command: Option<String>,
}

/// What `up init` found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// `Node.js`, `Python`, `Go`, `Rust`, `binary` or `custom`.
    pub runtime: &'static str,
    /// `proxy.command`.
    pub command: String,
    /// What to do before deploying, when something must be built.
    pub hint: Option<String>,
}

/// Runs `up init`.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    let dir = globals.dir.as_path();
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let path = dir.join(up_config::FILE_NAME);
    if path.exists() && !args.force {
        bail!(
            "{} already exists: keep it, or run `up init --force` to replace it",
            path.display()
        );
    }
    let detected = match args.command {
        Some(command) if !command.trim().is_empty() => Detected {
            runtime: "custom",
            command: command.trim().to_owned(),
            hint: None,
        },
        Some(_) => bail!("--command is empty"),
        None => detect(dir).with_context(|| {
            format!(
                "cannot tell how to start the app in {}: expected package.json, app.js, app.py, main.py, go.mod, Cargo.toml or ./server; pass --command \"<start command>\"",
                dir.display()
            )
        })?,
    };
    let name = match args.name {
        Some(name) => name,
        None => default_name(dir),
    };
    let text = document(&name, &detected.command);
    // The file must load as written: the same parser as `up` and the bootstrap.
    up_config::parse(&text, &path, None)?;
    write(&path, &text, args.force)?;

    match globals.output {
        Output::Json => println!(
            "{}",
            json!({
                "path": path.display().to_string(),
                "name": name,
                "runtime": detected.runtime,
                "command": detected.command,
                "hint": detected.hint,
            })
        ),
        Output::Text => {
            println!(
                "up: wrote {} for {} ({} app): proxy.command {:?}",
                path.display(),
                name,
                detected.runtime,
                detected.command
            );
            if let Some(hint) = &detected.hint {
                println!("up: {hint}");
            }
            println!("up: run it locally with `up start`, deploy it with `up deploy`");
        }
    }
    Ok(())
}

/// The runtime and start command of the app in `dir`, if one is recognised.
pub fn detect(dir: &Path) -> Option<Detected> {
    let has = |file: &str| dir.join(file).is_file();
    let known = up_config::detect_command(dir);
    if known != "./server" {
        // package.json's start script, `node app.js`, `python3 app.py` or `python3 main.py`.
        let runtime = if known.starts_with("python3 ") {
            "Python"
        } else {
            "Node.js"
        };
        return Some(Detected {
            runtime,
            command: known,
            hint: None,
        });
    }
    let node = |command: String| Detected {
        runtime: "Node.js",
        command,
        hint: None,
    };
    if let Some(main) = package_main(dir) {
        return Some(node(format!("node {main}")));
    }
    for file in ["server.js", "index.js"] {
        if has(file) {
            return Some(node(format!("node {file}")));
        }
    }
    if has("go.mod") {
        return Some(Detected {
            runtime: "Go",
            command: "./server".into(),
            hint: Some(
                "build the server for Lambda first: GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -o server .".into(),
            ),
        });
    }
    if has("Cargo.toml") {
        return Some(Detected {
            runtime: "Rust",
            command: "./server".into(),
            hint: Some(
                "build the server for Lambda first: cargo build --release --target x86_64-unknown-linux-musl, then copy the binary to ./server".into(),
            ),
        });
    }
    if has("server") {
        return Some(Detected {
            runtime: "binary",
            command: "./server".into(),
            hint: None,
        });
    }
    None
}

/// `package.json`'s `main`, when it names a file that exists.
fn package_main(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).ok()?;
    let main = package.get("main")?.as_str()?.trim();
    let safe = !main.is_empty()
        && main
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    (safe && dir.join(main).is_file()).then(|| main.to_owned())
}

/// The directory's name as an app name: letters, digits, `-` and `_`, at most 50.
pub fn default_name(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    app_name(&raw)
}

/// `raw` with every other character replaced by `-`, trimmed of `-`, cut to 50; `app` if
/// nothing is left.
pub fn app_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cut: String = cleaned.trim_matches('-').chars().take(50).collect();
    let cut = cut.trim_end_matches('-');
    if cut.is_empty() {
        "app".to_owned()
    } else {
        cut.to_owned()
    }
}

/// The file's text: the name and the start command, pretty-printed.
fn document(name: &str, command: &str) -> String {
    let value = json!({ "name": name, "proxy": { "command": command } });
    // Serializing a `Value` cannot fail.
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn write(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // Not `create`: another process may have written one since the check above.
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists: keep it, or run `up init --force` to replace it",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(files: &[(&str, &str)]) -> Option<Detected> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        detect(dir.path())
    }

    #[test]
    fn detects_each_runtime() {
        let d = detected(&[("app.py", "")]).unwrap();
        assert_eq!(
            (d.runtime, d.command.as_str()),
            ("Python", "python3 app.py")
        );
        let d = detected(&[("main.py", "")]).unwrap();
        assert_eq!(
            (d.runtime, d.command.as_str()),
            ("Python", "python3 main.py")
        );
        let d = detected(&[("app.js", "")]).unwrap();
        assert_eq!((d.runtime, d.command.as_str()), ("Node.js", "node app.js"));
        let d = detected(&[
            ("package.json", r#"{"scripts":{"start":"node srv.js"}}"#),
            ("app.py", ""),
        ])
        .unwrap();
        assert_eq!((d.runtime, d.command.as_str()), ("Node.js", "node srv.js"));
        let d = detected(&[("package.json", r#"{"main":"lib/main.js"}"#)]);
        assert_eq!(d, None, "main names a missing file");
        let d = detected(&[
            ("package.json", r#"{"main":"server.js"}"#),
            ("server.js", ""),
        ])
        .unwrap();
        assert_eq!(d.command, "node server.js");
        let d = detected(&[("index.js", "")]).unwrap();
        assert_eq!(d.command, "node index.js");
        let d = detected(&[("go.mod", "module x")]).unwrap();
        assert_eq!((d.runtime, d.command.as_str()), ("Go", "./server"));
        assert!(d.hint.unwrap().contains("go build -o server"));
        let d = detected(&[("Cargo.toml", "[package]")]).unwrap();
        assert_eq!((d.runtime, d.command.as_str()), ("Rust", "./server"));
        let d = detected(&[("server", "")]).unwrap();
        assert_eq!((d.runtime, d.command.as_str()), ("binary", "./server"));
        assert_eq!(detected(&[("README.md", "")]), None);
    }

    #[test]
    fn names_come_from_the_directory() {
        assert_eq!(app_name("my-app"), "my-app");
        assert_eq!(app_name("My App.v2"), "My-App-v2");
        assert_eq!(app_name("..."), "app");
        assert_eq!(app_name(""), "app");
        assert_eq!(app_name(&"x".repeat(80)).len(), 50);
    }

    #[test]
    fn the_document_loads() {
        let text = document("shop", "python3 app.py");
        let config = up_config::parse(&text, Path::new("up.json"), None).unwrap();
        assert_eq!(config.name, "shop");
        assert_eq!(config.proxy.command.as_deref(), Some("python3 app.py"));
    }
}
