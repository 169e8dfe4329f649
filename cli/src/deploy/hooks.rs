//! `hooks`: shell commands run around a deploy, each via `sh -c` in the project directory with
//! `UP_STAGE` set. Their output goes to stderr (stdout is kept for `--output json`).

use std::path::Path;
use std::process::Command;
use up_config::Hooks;

/// The hook points, in the order a deploy reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Before `build`.
    Prebuild,
    /// Builds the app.
    Build,
    /// After `build`.
    Postbuild,
    /// After packaging, before the AWS calls.
    Predeploy,
    /// After a successful deploy.
    Postdeploy,
    /// After packaging: removes build output.
    Clean,
}

impl Hook {
    /// The key in `up.json`'s `hooks`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prebuild => "prebuild",
            Self::Build => "build",
            Self::Postbuild => "postbuild",
            Self::Predeploy => "predeploy",
            Self::Postdeploy => "postdeploy",
            Self::Clean => "clean",
        }
    }

    fn commands(self, hooks: &Hooks) -> &[String] {
        match self {
            Self::Prebuild => &hooks.prebuild.0,
            Self::Build => &hooks.build.0,
            Self::Postbuild => &hooks.postbuild.0,
            Self::Predeploy => &hooks.predeploy.0,
            Self::Postdeploy => &hooks.postdeploy.0,
            Self::Clean => &hooks.clean.0,
        }
    }
}

/// A hook command that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `sh` could not be started.
    #[error("hook {hook}: cannot run `{command}` with sh: {source}")]
    Spawn {
        /// The hook point.
        hook: &'static str,
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command exited unsuccessfully.
    #[error("hook {hook}: `{command}` failed ({status}); its output is above")]
    Failed {
        /// The hook point.
        hook: &'static str,
        /// The command.
        command: String,
        /// How it ended.
        status: std::process::ExitStatus,
    },
}

/// Runs `hook`'s commands in order, stopping at the first failure. Returns how many ran.
pub fn run(hook: Hook, hooks: &Hooks, dir: &Path, stage: &str) -> Result<usize, HookError> {
    let commands = hook.commands(hooks);
    for command in commands {
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir)
            .env("UP_STAGE", stage)
            .stdin(std::process::Stdio::null())
            .stdout(std::io::stderr())
            .status()
            .map_err(|source| HookError::Spawn {
                hook: hook.name(),
                command: command.clone(),
                source,
            })?;
        if !status.success() {
            return Err(HookError::Failed {
                hook: hook.name(),
                command: command.clone(),
                status,
            });
        }
    }
    Ok(commands.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use up_config::value::Commands;

    #[test]
    fn commands_run_in_order_in_the_project_with_the_stage() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            build: Commands(vec![
                "echo \"$UP_STAGE\" > out".into(),
                "echo second >> out".into(),
            ]),
            ..Hooks::default()
        };
        assert_eq!(
            run(Hook::Build, &hooks, dir.path(), "production").unwrap(),
            2
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "production\nsecond\n"
        );
        assert_eq!(
            run(Hook::Clean, &hooks, dir.path(), "production").unwrap(),
            0
        );
    }

    #[test]
    fn a_failing_command_stops_the_hook_and_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            prebuild: Commands(vec!["exit 3".into(), "touch never".into()]),
            ..Hooks::default()
        };
        let err = run(Hook::Prebuild, &hooks, dir.path(), "staging").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("hook prebuild: `exit 3` failed (exit status: 3)"),
            "{err}"
        );
        assert!(!dir.path().join("never").exists());
    }
}
