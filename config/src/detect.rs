//! Runtime detection: the command that starts an app when `proxy.command` is not set.

use std::path::Path;

/// The command that starts the app in `dir`, tried in this order:
/// 1. `package.json` with a `scripts.start` → that script (run directly, without npm's start-up);
/// 2. `app.js` → `node app.js`;
/// 3. `app.py` → `python3 app.py`; `main.py` → `python3 main.py`;
/// 4. otherwise `./server` (apex/up's default: a binary built into the project).
pub fn detect_command(dir: &Path) -> String {
    if let Some(start) = package_start_script(dir) {
        return start;
    }
    let candidates = [
        ("app.js", "node app.js"),
        ("app.py", "python3 app.py"),
        ("main.py", "python3 main.py"),
    ];
    candidates
        .iter()
        .find(|(file, _)| dir.join(file).is_file())
        .map_or_else(
            || "./server".to_owned(),
            |(_, command)| (*command).to_owned(),
        )
}

fn package_start_script(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).ok()?;
    let start = package.get("scripts")?.get("start")?.as_str()?.trim();
    (!start.is_empty()).then(|| start.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_order() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect_command(dir.path()), "./server");
        std::fs::write(dir.path().join("main.py"), "").unwrap();
        assert_eq!(detect_command(dir.path()), "python3 main.py");
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        assert_eq!(detect_command(dir.path()), "python3 app.py");
        std::fs::write(dir.path().join("app.js"), "").unwrap();
        assert_eq!(detect_command(dir.path()), "node app.js");
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"scripts":{"start":"node server.js"}}"#,
        )
        .unwrap();
        assert_eq!(detect_command(dir.path()), "node server.js");
    }

    #[test]
    fn package_without_start_script_falls_through() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), r#"{"name":"x"}"#).unwrap();
        std::fs::write(dir.path().join("app.js"), "").unwrap();
        assert_eq!(detect_command(dir.path()), "node app.js");
    }
}
