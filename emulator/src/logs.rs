//! Capture of a runtime's stdout and stderr into a bounded in-memory buffer.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Lines kept per instance; older lines are dropped first.
pub const LOG_CAPACITY: usize = 10_000;

/// The pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The runtime's standard output.
    Stdout,
    /// The runtime's standard error.
    Stderr,
}

/// One line of runtime output, without its line terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Where it was written.
    pub stream: Stream,
    /// The text, lossily decoded as UTF-8.
    pub text: String,
}

/// A bounded buffer of the lines an instance printed, in arrival order.
#[derive(Debug)]
pub struct LogBuffer {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    /// Bumped on every line so waiters wake up.
    seq: watch::Sender<u64>,
}

impl LogBuffer {
    /// An empty buffer keeping at most `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            seq: watch::Sender::new(0),
        }
    }

    /// Appends a line, dropping the oldest one when full.
    pub fn push(&self, line: LogLine) {
        {
            let mut lines = lock(&self.lines);
            if lines.len() == self.capacity {
                lines.pop_front();
            }
            lines.push_back(line);
        }
        self.seq.send_modify(|seq| *seq += 1);
    }

    /// Every line kept, both streams interleaved.
    pub fn lines(&self) -> Vec<LogLine> {
        lock(&self.lines).iter().cloned().collect()
    }

    /// The text of every line kept, both streams interleaved.
    pub fn texts(&self) -> Vec<String> {
        lock(&self.lines).iter().map(|l| l.text.clone()).collect()
    }

    /// The last `n` lines of one stream, oldest first.
    pub fn tail(&self, stream: Stream, n: usize) -> Vec<String> {
        let lines = lock(&self.lines);
        let mut tail: Vec<String> = lines
            .iter()
            .rev()
            .filter(|l| l.stream == stream)
            .take(n)
            .map(|l| l.text.clone())
            .collect();
        tail.reverse();
        tail
    }

    /// Waits until a kept line (already there or yet to come) satisfies `pred`, for at most
    /// `timeout`; returns that line, or `None` when the time is up.
    pub async fn wait_for(
        &self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seq = self.seq.subscribe();
        loop {
            seq.borrow_and_update();
            if let Some(line) = lock(&self.lines).iter().find(|l| pred(&l.text)) {
                return Some(line.text.clone());
            }
            // `changed` fails only when the sender is dropped, and `self` owns it.
            match tokio::time::timeout_at(deadline, seq.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

/// Reads `reader` line by line into `buffer` until end of file, echoing each line to this
/// process's stderr when `echo` is set (stderr, so a caller's stdout stays its own).
pub(crate) fn capture(
    reader: impl AsyncRead + Unpin + Send + 'static,
    stream: Stream,
    buffer: Arc<LogBuffer>,
    echo: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw).await {
                Ok(0) => break,
                Ok(_) => {
                    while matches!(raw.last(), Some(b'\n' | b'\r')) {
                        raw.pop();
                    }
                    let text = String::from_utf8_lossy(&raw).into_owned();
                    if echo {
                        // A closed stderr is no reason to stop capturing.
                        let _ = writeln!(std::io::stderr().lock(), "{text}");
                    }
                    buffer.push(LogLine { stream, text });
                }
                Err(err) => {
                    tracing::debug!(cause = %err, ?stream, "reading runtime output failed");
                    break;
                }
            }
        }
    })
}

/// Locks a std mutex, ignoring poisoning: the data (log lines, pool lists) stays consistent
/// because no code panics while holding these locks half-way through an update.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stream: Stream, text: &str) -> LogLine {
        LogLine {
            stream,
            text: text.to_owned(),
        }
    }

    #[test]
    fn keeps_the_newest_lines_and_tails_per_stream() {
        let buffer = LogBuffer::new(3);
        buffer.push(line(Stream::Stdout, "a"));
        buffer.push(line(Stream::Stderr, "b"));
        buffer.push(line(Stream::Stdout, "c"));
        buffer.push(line(Stream::Stderr, "d"));
        assert_eq!(buffer.texts(), ["b", "c", "d"]);
        assert_eq!(buffer.tail(Stream::Stderr, 5), ["b", "d"]);
        assert_eq!(buffer.tail(Stream::Stderr, 1), ["d"]);
    }

    #[tokio::test]
    async fn wait_for_sees_old_and_new_lines() {
        let buffer = Arc::new(LogBuffer::new(10));
        buffer.push(line(Stream::Stdout, "old"));
        assert_eq!(
            buffer
                .wait_for(|l| l == "old", Duration::from_secs(5))
                .await,
            Some("old".to_owned())
        );
        let writer = Arc::clone(&buffer);
        let task = tokio::spawn(async move {
            writer.push(line(Stream::Stderr, "new one"));
        });
        assert_eq!(
            buffer
                .wait_for(|l| l.starts_with("new"), Duration::from_secs(5))
                .await,
            Some("new one".to_owned())
        );
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_gives_up_at_the_bound() {
        let buffer = LogBuffer::new(10);
        assert_eq!(
            buffer.wait_for(|_| true, Duration::from_secs(1)).await,
            None
        );
    }

    #[tokio::test]
    async fn capture_splits_lines_and_decodes_lossily() {
        let buffer = Arc::new(LogBuffer::new(10));
        let input: &[u8] = b"one\r\ntwo\n\xffthree";
        capture(input, Stream::Stdout, Arc::clone(&buffer), false)
            .await
            .unwrap();
        assert_eq!(buffer.texts(), ["one", "two", "\u{fffd}three"]);
    }
}
