//! `up start` end to end: the real `up` binary runs the real bootstrap under up-emulator with
//! the real Python example app, serves HTTP on a free loopback port, logs each request, and
//! leaves no process behind when stopped.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use up_tests::harness::task_root;
use up_tests::ministack::{has_exited, http_request, kill_pid};
use up_tests::paths;

/// Bound for `up start` to print its URL (a cold Python start on a loaded machine).
const READY_BOUND: Duration = Duration::from_secs(60);
/// Bound for `up start` to exit once signalled (2 s SIGTERM grace, then SIGKILL).
const EXIT_BOUND: Duration = Duration::from_secs(20);

/// A running `up start`.
struct Started {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
}

impl Started {
    /// Spawns `up -C dir start <args>` and waits for its `up: listening on` line.
    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Started {
        let (mut child, lines, stderr) = spawn_up(dir, args, env);
        let deadline = Instant::now() + READY_BOUND;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("up: listening on ") {
                        break url.trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "up start printed no URL within {READY_BOUND:?}; stderr:\n{}",
                        stderr.lock().unwrap()
                    );
                }
            }
        };
        Started { child, url, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` and waits (bounded) for the exit.
    fn stop(&mut self, signal: &str) -> ExitStatus {
        send_signal(self.child.id(), signal);
        wait_bounded(&mut self.child, EXIT_BOUND)
            .unwrap_or_else(|| panic!("up start still running {EXIT_BOUND:?} after SIG{signal}"))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Only while the child is unreaped does its pid still name it.
        let running = matches!(self.child.try_wait(), Ok(None));
        let descendants = if running {
            descendants(self.child.id())
        } else {
            Vec::new()
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in descendants {
            kill_pid(pid);
        }
    }
}

/// Spawns the `up` binary with stdout lines sent on a channel and stderr collected.
fn spawn_up(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, mpsc::Receiver<String>, Arc<Mutex<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_up"))
        .arg("-C")
        .arg(dir)
        .arg("start")
        .args(args)
        .env("UP_BOOTSTRAP", paths::bootstrap_path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning up");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&stderr);
    let mut pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, rx, stderr)
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

fn wait_bounded(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every live process below `pid` (children, grandchildren, ...), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Live processes whose working directory is `dir` (the bootstrap and the app run in the
/// task root).
fn running_in_now(dir: &Path) -> Vec<u32> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| !has_exited(*p))
        .filter(|p| std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

/// [`running_in_now`], once none is left or the bound passes.
fn running_in(dir: &Path) -> Vec<u32> {
    let deadline = Instant::now() + EXIT_BOUND;
    loop {
        let found = running_in_now(dir);
        if found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until every pid has exited; returns those still running.
fn survivors(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + EXIT_BOUND;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| !has_exited(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn python_echo() -> tempfile::TempDir {
    task_root(
        "python-echo",
        &json!({"name": "start-echo", "proxy": {"command": "python3 app.py"}}),
    )
}

async fn get_json(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let response = http_request("GET", url, headers, Vec::new()).await.unwrap();
    let status = response.status.as_u16();
    let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_requests_through_the_real_bootstrap_and_stops_cleanly_on_sigterm() {
    let dir = python_echo();
    let mut up = Started::spawn(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    assert!(up.url.starts_with("http://127.0.0.1:"), "{}", up.url);
    assert!(
        !up.url.ends_with(":0"),
        "the real port is printed: {}",
        up.url
    );

    // The app sees the request as the client sent it, with Lambda's stage and headers.
    let (status, echo) = get_json(
        &format!("{}/hello/a%2Fb?x=1&y=%20", up.url),
        &[("x-repeat", "one"), ("x-repeat", "two")],
    )
    .await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/hello/a%2Fb");
    assert_eq!(echo["query"], "x=1&y=%20");
    assert_eq!(echo["env"]["UP_STAGE"], "development");
    let headers: Vec<(String, String)> = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_ascii_lowercase(),
                h[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let repeated: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "x-repeat")
        .map(|(_, v)| v.as_str())
        .collect();
    // HTTP API v2 events carry a repeated header as one comma-joined value.
    assert_eq!(
        repeated.join(","),
        "one,two",
        "repeated header: {repeated:?}"
    );
    assert!(
        headers.iter().any(|(n, _)| n == "x-request-id"),
        "X-Request-Id from the event: {headers:?}"
    );

    // Status codes come back as the app answered them.
    let response = http_request("GET", &format!("{}/status/503", up.url), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(response.status.as_u16(), 503);
    assert_eq!(response.text(), "status 503");

    // One log line per request, naming path and status.
    let logged = |path: &str, status: &str| {
        up.stderr().lines().any(|l| {
            !l.starts_with('{')
                && l.contains("request")
                && l.contains(path)
                && l.contains(&format!("status={status}"))
        })
    };
    assert!(logged("/hello/a%2Fb", "200"), "stderr:\n{}", up.stderr());
    assert!(logged("/status/503", "503"), "stderr:\n{}", up.stderr());
    // The app's own output reaches the terminal, as the bootstrap's JSON log lines.
    assert!(
        up.stderr().contains("python-echo GET /status/503 503"),
        "stderr:\n{}",
        up.stderr()
    );

    // SIGTERM: up exits successfully and takes the bootstrap and the app with it.
    let app_pid = echo["pid"].as_u64().unwrap() as u32;
    let family = descendants(up.child.id());
    assert!(
        family.contains(&app_pid),
        "app {app_pid} runs below up: {family:?}"
    );
    let status = up.stop("TERM");
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; stderr:\n{}",
        up.stderr()
    );
    assert_eq!(
        survivors(&family),
        Vec::<u32>::new(),
        "orphans after SIGTERM"
    );
    assert_eq!(
        running_in(dir.path()),
        Vec::<u32>::new(),
        "orphans after SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_everything_and_the_stage_option_sets_up_stage() {
    let dir = python_echo();
    let mut up = Started::spawn(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--stage", "production"],
        &[],
    );
    let (status, echo) = get_json(&format!("{}/", up.url), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(echo["env"]["UP_STAGE"], "production");
    let family = descendants(up.child.id());
    assert!(!family.is_empty());
    let status = up.stop("INT");
    assert!(status.success(), "exit after SIGINT: {status}");
    assert_eq!(
        survivors(&family),
        Vec::<u32>::new(),
        "orphans after SIGINT"
    );
    assert_eq!(
        running_in(dir.path()),
        Vec::<u32>::new(),
        "orphans after SIGINT"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn even_a_killed_up_start_leaves_nothing_running() {
    let dir = python_echo();
    let mut up = Started::spawn(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let (status, _) = get_json(&format!("{}/", up.url), &[]).await;
    assert_eq!(status, 200);
    assert!(
        !running_in_now(dir.path()).is_empty(),
        "bootstrap and app run in the app dir"
    );
    // SIGKILL: no clean-up in up; the bootstrap loses its Runtime API and takes the app down.
    let status = up.stop("KILL");
    assert!(!status.success());
    assert_eq!(
        running_in(dir.path()),
        Vec::<u32>::new(),
        "orphans after SIGKILL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn up_init_then_up_start_serves_the_detected_app() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        paths::example_dir("python-echo").join("app.py"),
        dir.path().join("app.py"),
    )
    .unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_up"))
        .arg("-C")
        .arg(dir.path())
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let up = Started::spawn(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let (status, echo) = get_json(&format!("{}/from-init", up.url), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(echo["path"], "/from-init");
}

/// Runs `up start` expecting it to fail at once; returns its stderr.
fn failing_start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let (mut child, _lines, stderr) = spawn_up(dir, args, env);
    let status = wait_bounded(&mut child, READY_BOUND).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("up start did not fail; stderr:\n{}", stderr.lock().unwrap())
    });
    assert_eq!(
        status.code(),
        Some(1),
        "stderr:\n{}",
        stderr.lock().unwrap()
    );
    assert_eq!(
        running_in(dir),
        Vec::<u32>::new(),
        "processes left in the app directory"
    );
    // The reader thread finishes when the pipe closes; wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = stderr.lock().unwrap().clone();
        if text.contains("up: ") || Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The line `up` printed for its error (stderr's last `up:` line), checked to be the only
/// complaint: no panic, no backtrace.
fn error_line(stderr: &str) -> String {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("up: "))
        .unwrap_or_else(|| panic!("no `up:` line in:\n{stderr}"))
        .to_owned()
}

#[test]
fn a_bad_up_json_is_one_line_naming_the_key() {
    let dir = python_echo();
    std::fs::write(
        dir.path().join("up.json"),
        r#"{"name": "x", "proxy": {"listen_timeout": "abc"}}"#,
    )
    .unwrap();
    let stderr = failing_start(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    let line = error_line(&stderr);
    assert!(line.contains("proxy.listen_timeout"), "{line}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn an_app_that_cannot_start_is_reported_and_leaves_nothing_running() {
    let dir = python_echo();
    let stderr = failing_start(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[("ECHO_FAIL_START", "1")],
    );
    let line = error_line(&stderr);
    assert!(line.starts_with("up: the app failed to start"), "{line}");
    // What the app said is on the terminal too.
    assert!(stderr.contains("ECHO_FAIL_START"), "{stderr}");
}

#[test]
fn a_missing_bootstrap_says_how_to_provide_one() {
    let dir = python_echo();
    let stderr = failing_start(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[("UP_BOOTSTRAP", "/nonexistent/bootstrap")],
    );
    let line = error_line(&stderr);
    assert!(line.contains("UP_BOOTSTRAP"), "{line}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = python_echo();
    let stderr = failing_start(dir.path(), &["--listen", &addr], &[]);
    let line = error_line(&stderr);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
}
