//! Where things are: the workspace, the built bootstrap, the ministack venv, the examples.
//!
//! The end-to-end suites never skip themselves: when something they need is missing,
//! these functions panic with the command that provides it. Environment overrides are
//! read through [`Env`] so the resolution rules are unit-tested with a map.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where `cargo build --release -p up-proxy --target x86_64-unknown-linux-musl` puts the
/// binary, relative to the target directory.
const BOOTSTRAP_IN_TARGET: &str = "x86_64-unknown-linux-musl/release/bootstrap";

const BOOTSTRAP_MISSING: &str = "bootstrap not built: run scripts/test (or cargo build --release -p up-proxy --target x86_64-unknown-linux-musl)";

const VENV_MISSING: &str =
    "ministack venv missing: run scripts/test, which creates .venv with ministack";

/// The one seam through which this module reads the environment.
trait Env {
    fn var_os(&self, name: &str) -> Option<OsString>;
}

/// The process environment.
struct ProcessEnv;

impl Env for ProcessEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name).filter(|v| !v.is_empty())
    }
}

/// The workspace root (the directory holding the virtual `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // This crate lives in `<root>/tests`; the path is fixed at compile time.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    target_dir_in(&ProcessEnv, &workspace_root())
}

/// The static musl `bootstrap`: `$UP_BOOTSTRAP` if set, else
/// `<target>/x86_64-unknown-linux-musl/release/bootstrap`.
///
/// # Panics
/// If the file does not exist, with the command that builds it.
pub fn bootstrap_path() -> PathBuf {
    let path = bootstrap_path_in(&ProcessEnv, &workspace_root());
    assert!(
        path.is_file(),
        "{BOOTSTRAP_MISSING} (looked for {})",
        path.display()
    );
    path
}

/// The Python interpreter of the venv that has ministack installed: `$UP_VENV/bin/python`
/// if `UP_VENV` is set, else `<root>/.venv/bin/python`.
///
/// # Panics
/// If the interpreter does not exist, with the command that creates the venv.
pub fn venv_python() -> PathBuf {
    let path = venv_python_in(&ProcessEnv, &workspace_root());
    assert!(
        path.is_file(),
        "{VENV_MISSING} (looked for {})",
        path.display()
    );
    path
}

/// `examples/<name>` under the workspace root.
///
/// # Panics
/// If that directory does not exist.
pub fn example_dir(name: &str) -> PathBuf {
    let path = workspace_root().join("examples").join(name);
    assert!(
        path.is_dir(),
        "example app `{name}` missing: no directory {}",
        path.display()
    );
    path
}

fn target_dir_in(env: &dyn Env, root: &Path) -> PathBuf {
    match env.var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn bootstrap_path_in(env: &dyn Env, root: &Path) -> PathBuf {
    match env.var_os("UP_BOOTSTRAP") {
        Some(path) => root.join(path),
        None => target_dir_in(env, root).join(BOOTSTRAP_IN_TARGET),
    }
}

fn venv_python_in(env: &dyn Env, root: &Path) -> PathBuf {
    let venv = match env.var_os("UP_VENV") {
        Some(dir) => root.join(dir),
        None => root.join(".venv"),
    };
    venv.join("bin").join("python")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);

    impl Env for MapEnv {
        fn var_os(&self, name: &str) -> Option<OsString> {
            self.0.get(name).map(OsString::from)
        }
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> MapEnv {
        MapEnv(pairs.iter().copied().collect())
    }

    #[test]
    fn bootstrap_defaults_to_the_musl_release_build() {
        let root = Path::new("/ws");
        assert_eq!(
            bootstrap_path_in(&env(&[]), root),
            Path::new("/ws/target/x86_64-unknown-linux-musl/release/bootstrap")
        );
    }

    #[test]
    fn bootstrap_follows_cargo_target_dir_absolute_or_relative() {
        let root = Path::new("/ws");
        assert_eq!(
            bootstrap_path_in(&env(&[("CARGO_TARGET_DIR", "/cache/t")]), root),
            Path::new("/cache/t/x86_64-unknown-linux-musl/release/bootstrap")
        );
        assert_eq!(
            bootstrap_path_in(&env(&[("CARGO_TARGET_DIR", "out")]), root),
            Path::new("/ws/out/x86_64-unknown-linux-musl/release/bootstrap")
        );
    }

    #[test]
    fn up_bootstrap_overrides_the_target_dir() {
        let root = Path::new("/ws");
        let env = env(&[
            ("UP_BOOTSTRAP", "/bin/bootstrap"),
            ("CARGO_TARGET_DIR", "/cache/t"),
        ]);
        assert_eq!(bootstrap_path_in(&env, root), Path::new("/bin/bootstrap"));
    }

    #[test]
    fn venv_defaults_to_dot_venv_and_honours_up_venv() {
        let root = Path::new("/ws");
        assert_eq!(
            venv_python_in(&env(&[]), root),
            Path::new("/ws/.venv/bin/python")
        );
        assert_eq!(
            venv_python_in(&env(&[("UP_VENV", "/opt/venv")]), root),
            Path::new("/opt/venv/bin/python")
        );
    }

    #[test]
    fn workspace_root_holds_this_crate() {
        assert!(workspace_root().join("tests").join("Cargo.toml").is_file());
    }
}
