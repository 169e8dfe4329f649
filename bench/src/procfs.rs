//! What `/proc` tells about a process and the machine.

use std::path::Path;
use std::time::Duration;

use crate::Error;

/// Resident memory of one process (not its children), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most it was ever resident ("high water mark").
    pub hwm: u64,
    /// `RssAnon`: the part of `rss` that is heap, stacks and other private memory.
    pub anon: u64,
    /// `RssFile`: the part of `rss` that is mapped files (the binary's own pages).
    pub file: u64,
}

/// The memory figures of `pid` from `/proc/<pid>/status`.
pub fn memory(pid: u32) -> Result<Memory, Error> {
    let path = format!("/proc/{pid}/status");
    let status = read(&path, "VmRSS")?;
    let field = |name: &'static str| {
        kb_field(&status, name).ok_or_else(|| missing(&path, name.trim_end_matches(':')))
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

/// Time `pid` has spent on a CPU, all its threads together (the first field of each
/// `/proc/<pid>/task/<tid>/schedstat`, in nanoseconds; threads that already exited are not
/// counted).
pub fn cpu_time(pid: u32) -> Result<Duration, Error> {
    let path = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&path).map_err(|_| missing(&path, "schedstat"))?;
    let mut total = 0u64;
    for task in tasks.filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .ok_or_else(|| missing(&path, "schedstat"))?;
    }
    Ok(Duration::from_nanos(total))
}

/// The pids whose parent is `pid` (from every `/proc/<n>/stat`, so it works without
/// `CONFIG_PROC_CHILDREN`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| parent_of(&stat))
                == Some(pid)
        })
        .collect()
}

/// The first `model name` in `/proc/cpuinfo`.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// The three load averages from `/proc/loadavg`.
pub fn load_average() -> Option<String> {
    let load = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn read(path: &str, field: &'static str) -> Result<String, Error> {
    std::fs::read_to_string(Path::new(path)).map_err(|_| missing(path, field))
}

fn missing(path: &str, field: &'static str) -> Error {
    Error::Proc {
        path: path.to_owned(),
        field,
    }
}

/// A `Name:   1234 kB` line of a status file, in bytes (the kernel's kB are KiB).
fn kb_field(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// The ppid field of a `/proc/<pid>/stat` line: the second field after the `(comm)`, which
/// may itself hold spaces and parentheses.
fn parent_of(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory() {
        let m = memory(std::process::id()).unwrap();
        assert!(m.rss > 0 && m.hwm >= m.rss);
        assert!(m.anon + m.file <= m.rss);
    }

    #[test]
    fn reads_own_cpu_time() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(5) {}
        assert!(cpu_time(std::process::id()).unwrap() >= Duration::from_millis(1));
    }

    #[test]
    fn parses_stat_with_odd_comm() {
        assert_eq!(parent_of("42 (a) b (c)) S 7 42 42 0"), Some(7));
    }

    #[test]
    fn parses_kb_fields() {
        let status = "Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(kb_field(status, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(kb_field(status, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(kb_field(status, "VmSwap:"), None);
    }
}
