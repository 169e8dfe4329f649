//! Structured logs: one JSON object per line on stdout.
//!
//! Every line has `time`, `level`, `msg`, `instance` and `stage`, and `request_id` while an
//! invocation is running, plus the event's own fields, so CloudWatch Logs Insights reads them as
//! fields. The bootstrap's own events come through `tracing` ([`JsonLayer`]); the app's output
//! lines come through [`LogSink::app_line`] with `source: "app"`.
//!
//! The level is `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
//!
//! Neither a request nor the app's output ever waits for stdout. When stdout is a pipe (as on
//! Lambda), a line is written at once through a non-blocking handle of the bootstrap's own,
//! which costs one `write` and wakes no thread. When that would block, or stdout is something
//! else, lines go through a bounded queue to a writer thread: if stdout stops taking lines, the
//! queue fills to [`MAX_PENDING`] bytes, further lines are dropped and counted, and a `warn`
//! line says how many once stdout takes lines again.

use crate::env::Env;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Where log lines go, and the fields every line carries.
pub struct LogSink {
    instance: String,
    stage: Option<String>,
    level: LevelFilter,
    request_id: Mutex<Option<String>>,
    /// `,"instance":…,"stage":…`, rendered once.
    common: String,
    queue: Arc<Queue>,
    /// Where a line goes at once when nothing is queued: a write that never blocks.
    direct: Mutex<Option<Box<dyn Write + Send>>>,
    /// stdout for the writer thread, until the thread starts with it.
    writer: Mutex<Option<Box<dyn Write + Send>>>,
}

/// Most bytes of log lines waiting for stdout; past it lines are dropped and counted.
pub const MAX_PENDING: usize = 1 << 20;
/// Longest [`LogSink::flush`] waits for stdout.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Lines waiting for the writer thread.
#[derive(Default)]
struct Queue {
    state: Mutex<Pending>,
    /// Signalled when lines are queued or the sink closes.
    queued: Condvar,
    /// Signalled when the writer has written everything it took.
    written: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    writing: bool,
    closed: bool,
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSink")
            .field("instance", &self.instance)
            .field("stage", &self.stage)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl LogSink {
    /// A sink writing to `out`.
    pub fn new(
        instance: String,
        stage: Option<String>,
        level: LevelFilter,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self::with_direct(instance, stage, level, out, None)
    }

    /// A sink writing to `out`, and first trying `direct` for each line while nothing is
    /// queued. `direct` must never block: it writes what fits and returns
    /// [`std::io::ErrorKind::WouldBlock`] (or a short count) otherwise; the rest goes to the
    /// writer thread, which writes to `out`, so lines keep their order.
    pub fn with_direct(
        instance: String,
        stage: Option<String>,
        level: LevelFilter,
        out: Box<dyn Write + Send>,
        direct: Option<Box<dyn Write + Send>>,
    ) -> Self {
        let queue = Arc::new(Queue::default());
        let mut common = String::from(",\"instance\":");
        push_json(&mut common, &instance);
        // Always present (null when no stage is set), so every line has the same fields.
        common.push_str(",\"stage\":");
        match &stage {
            Some(stage) => push_json(&mut common, stage),
            None => common.push_str("null"),
        }
        Self {
            instance,
            stage,
            level,
            request_id: Mutex::new(None),
            common,
            queue,
            direct: Mutex::new(direct),
            writer: Mutex::new(Some(out)),
        }
    }

    /// Starts the writer thread the first time a line is queued: while stdout takes every line
    /// at once, the bootstrap has no second thread (no stack, no cross-CPU wake-ups). If the
    /// thread cannot start, lines pile up to the bound and are dropped: requests are served.
    fn start_writer(&self) {
        let Some(out) = lock(&self.writer).take() else {
            return;
        };
        let queue = self.queue.clone();
        let (instance, stage) = (self.instance.clone(), self.stage.clone());
        let _ = std::thread::Builder::new()
            .name("up-log-writer".into())
            .spawn(move || queue.run(out, &instance, stage.as_deref()));
    }

    /// Waits (at most two seconds) until every queued line is written: before exiting.
    pub fn flush(&self) {
        let deadline = std::time::Instant::now() + FLUSH_WAIT;
        let mut pending = lock(&self.queue.state);
        while !pending.bytes.is_empty() || pending.dropped > 0 || pending.writing {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            pending = self
                .queue
                .written
                .wait_timeout(pending, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// A sink writing to stdout at the level the environment asks for.
    pub fn stdout(instance: String, env: &Env) -> Self {
        Self::with_direct(
            instance,
            env.stage().map(str::to_owned),
            level_from(env),
            Box::new(std::io::stdout()),
            nonblocking_stdout().map(|f| Box::new(f) as Box<dyn Write + Send>),
        )
    }

    /// The most verbose level written.
    pub fn level(&self) -> LevelFilter {
        self.level
    }

    /// Marks the invocation now running (`None` between invocations): its id goes on every line,
    /// app output included.
    pub fn set_request_id(&self, id: Option<&str>) {
        *lock(&self.request_id) = id.map(str::to_owned);
    }

    /// Writes one entry: `level`, `msg`, the common fields, then `fields`.
    pub fn write(&self, level: &str, msg: &str, fields: Map<String, Value>) {
        self.write_pairs(level, msg, fields.iter().map(|(k, v)| (k.as_str(), v)));
    }

    /// [`Self::write`] for fields in any shape: the line is rendered straight into bytes (no
    /// intermediate map), in the order `time`, `level`, `msg`, `request_id`, `instance`,
    /// `stage`, then `fields` (a field named like one of those six is left out).
    pub fn write_pairs<'a>(
        &self,
        level: &str,
        msg: &str,
        fields: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) {
        let mut text = String::with_capacity(256);
        text.push_str("{\"time\":\"");
        push_now_rfc3339(&mut text);
        text.push_str("\",\"level\":");
        push_json(&mut text, level);
        text.push_str(",\"msg\":");
        push_json(&mut text, msg);
        if let Some(id) = lock(&self.request_id).as_deref() {
            text.push_str(",\"request_id\":");
            push_json(&mut text, id);
        }
        text.push_str(&self.common);
        for (key, value) in fields {
            if COMMON_FIELDS.contains(&key) {
                continue;
            }
            text.push(',');
            push_json(&mut text, key);
            text.push(':');
            // Writing JSON into a String cannot fail.
            let _ = serde_json::to_writer(WriteString(&mut text), value);
        }
        text.push_str("}\n");
        self.emit(text.into_bytes());
    }

    /// Hands a finished line (with its newline) to stdout.
    fn emit(&self, text: Vec<u8>) {
        let mut pending = lock(&self.queue.state);
        let mut rest = &text[..];
        if pending.bytes.is_empty() && pending.dropped == 0 && !pending.writing {
            // Nothing queued or being written: this line may go out now, in order.
            if let Some(direct) = lock(&self.direct).as_mut() {
                // On an error (`WouldBlock` when the pipe is full) the whole line goes to the
                // writer thread, whose blocking handle waits for room.
                if let Ok(n) = direct.write(rest) {
                    rest = &rest[n.min(rest.len())..];
                }
                if rest.is_empty() {
                    return;
                }
            }
        }
        if rest.len() < text.len() {
            // Part of the line is out: the rest must follow it whatever the bound says.
            pending.bytes.extend_from_slice(rest);
        } else if pending.bytes.len() + rest.len() > MAX_PENDING {
            pending.dropped += 1;
        } else {
            pending.bytes.extend_from_slice(rest);
        }
        drop(pending);
        self.start_writer();
        self.queue.queued.notify_one();
    }

    /// True when entries at `level` are written.
    pub fn enabled(&self, level: tracing::Level) -> bool {
        self.level >= level
    }

    /// One line of the app's output. A JSON object with a `level` keeps its level and fields
    /// (`msg` or `message` becomes `msg`); anything else is logged at `default_level`.
    pub fn app_line(&self, stream: &str, line: &str, default_level: up_config::value::Level) {
        if line.trim_start().starts_with('{')
            && let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(line)
        {
            {
                let level = obj
                    .remove("level")
                    .and_then(|l| l.as_str().map(normalise_level))
                    .unwrap_or(default_level.as_str());
                let msg = obj
                    .remove("msg")
                    .or_else(|| obj.remove("message"))
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                    .unwrap_or_default();
                if !self.enabled(to_tracing(level)) {
                    return;
                }
                for reserved in [
                    "time",
                    "instance",
                    "request_id",
                    "stage",
                    "source",
                    "stream",
                ] {
                    if let Some(v) = obj.remove(reserved) {
                        obj.insert(format!("app_{reserved}"), v);
                    }
                }
                let mut fields = Map::new();
                fields.insert("source".into(), Value::String("app".into()));
                fields.insert("stream".into(), Value::String(stream.into()));
                fields.extend(obj);
                self.write(level, &msg, fields);
                return;
            }
        }
        if self.enabled(to_tracing(default_level.as_str())) {
            let (source, stream) = (Value::String("app".into()), Value::String(stream.into()));
            self.write_pairs(
                default_level.as_str(),
                line,
                [("source", &source), ("stream", &stream)],
            );
        }
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        lock(&self.queue.state).closed = true;
        self.queue.queued.notify_one();
    }
}

impl Queue {
    /// The writer thread: takes everything queued, writes it in one go, repeats; ends when the
    /// sink is gone and nothing is left.
    fn run(&self, mut out: Box<dyn Write + Send>, instance: &str, stage: Option<&str>) {
        // Two buffers trade places: the queue fills one while this thread writes the other, so
        // after the first lines no buffer is allocated or freed again (a freed page-sized
        // buffer goes back to the OS with musl, and the munmap costs a TLB shoot-down).
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let dropped = {
                let mut pending = lock(&self.state);
                while pending.bytes.is_empty() && pending.dropped == 0 && !pending.closed {
                    pending = self
                        .queued
                        .wait(pending)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if pending.bytes.is_empty() && pending.dropped == 0 {
                    return;
                }
                pending.writing = true;
                std::mem::swap(&mut pending.bytes, &mut bytes);
                std::mem::take(&mut pending.dropped)
            };
            if dropped > 0 {
                let line = serde_json::json!({
                    "time": now_rfc3339(),
                    "level": "warn",
                    "msg": "log lines dropped: stdout did not keep up",
                    "dropped": dropped,
                    "instance": instance,
                    "stage": stage,
                });
                let _ = writeln!(out, "{line}");
            }
            // A log line that cannot be written has nowhere better to go.
            let _ = out.write_all(&bytes).and_then(|()| out.flush());
            bytes.clear();
            lock(&self.state).writing = false;
            self.written.notify_all();
        }
    }
}

/// The fields every line has, in this order, before its own.
const COMMON_FIELDS: [&str; 6] = ["time", "level", "msg", "request_id", "instance", "stage"];

/// Appends `s` as a JSON string.
fn push_json(out: &mut String, s: &str) {
    // Writing JSON into a String cannot fail.
    let _ = serde_json::to_writer(WriteString(out), s);
}

/// `io::Write` into a `String`, for serde_json (which only writes UTF-8).
struct WriteString<'a>(&'a mut String);

impl std::io::Write for WriteString<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0.push_str(text);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A handle of the bootstrap's own on the pipe behind stdout, in non-blocking mode; `None`
/// when stdout is not a pipe.
fn nonblocking_stdout() -> Option<std::fs::File> {
    nonblocking_pipe(1)
}

/// A new handle on the pipe behind `fd`, in non-blocking mode; `None` when `fd` is not a pipe.
///
/// Opening `/proc/self/fd/N` gives a new open file description of the same pipe, so
/// `O_NONBLOCK` applies to this handle only: `fd` itself, which the writer thread and every
/// process sharing that pipe write through, stays blocking.
fn nonblocking_pipe(fd: i32) -> Option<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let path = format!("/proc/self/fd/{fd}");
    if !std::fs::metadata(&path).ok()?.file_type().is_fifo() {
        return None;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .ok()
}

fn normalise_level(level: &str) -> &'static str {
    match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "critical" | "panic" => "error",
        _ => "info",
    }
}

fn to_tracing(level: &str) -> tracing::Level {
    match level {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Never held across an await or a panic point; recover rather than panic if it were.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG` (a plain level, or the level of a bare directive in a
/// list such as `info,hyper=warn`), then INFO.
pub fn level_from(env: &Env) -> LevelFilter {
    let parse = |s: &str| -> Option<LevelFilter> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Some(LevelFilter::TRACE),
            "debug" => Some(LevelFilter::DEBUG),
            "info" => Some(LevelFilter::INFO),
            "warn" | "warning" => Some(LevelFilter::WARN),
            "error" | "fatal" => Some(LevelFilter::ERROR),
            "off" => Some(LevelFilter::OFF),
            _ => None,
        }
    };
    if let Some(level) = env.get("AWS_LAMBDA_LOG_LEVEL").and_then(parse) {
        return level;
    }
    env.get("RUST_LOG")
        .and_then(|directives| {
            directives
                .split(',')
                .filter(|d| !d.contains('='))
                .find_map(parse)
        })
        .unwrap_or(LevelFilter::INFO)
}

/// The `tracing` layer writing the bootstrap's own events through a [`LogSink`].
#[derive(Debug, Clone)]
pub struct JsonLayer {
    sink: Arc<LogSink>,
}

impl JsonLayer {
    /// A layer over `sink`.
    pub fn new(sink: Arc<LogSink>) -> Self {
        Self { sink }
    }
}

/// Span fields, kept in the span's extensions.
struct SpanFields(Fields);

/// Fields in the order they were recorded; a name recorded again keeps its place and takes
/// the new value (a few fields per line: a list beats a hash map).
#[derive(Default, Clone)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn put(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    fn extend(&mut self, other: Fields) {
        for (name, value) in other.0 {
            self.put(name, value);
        }
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = JsonVisitor::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut visitor = JsonVisitor::default();
            values.record(&mut visitor);
            let mut ext = span.extensions_mut();
            if let Some(existing) = ext.get_mut::<SpanFields>() {
                existing.0.extend(visitor.fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if !self.sink.enabled(level) {
            return;
        }
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.0.clone());
                }
            }
        }
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        fields.extend(visitor.fields);
        let msg = visitor.message.unwrap_or_default();
        let target = event.metadata().target();
        if !target.starts_with("up_proxy") {
            fields.put("target", Value::String(target.to_owned()));
        }
        self.sink
            .write_pairs(level_name(level), &msg, fields.pairs());
    }
}

fn level_name(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

#[derive(Default)]
struct JsonVisitor {
    message: Option<String>,
    fields: Fields,
}

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.put(field.name(), value);
        }
    }
}

/// Installs the JSON layer as the global subscriber. Returns false when one was already set.
pub fn init(sink: Arc<LogSink>) -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    let level = sink.level();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(sink).with_filter(level));
    tracing::subscriber::set_global_default(subscriber).is_ok()
}

/// The current UTC time as RFC 3339 with milliseconds (`2026-11-23T12:34:56.789Z`).
pub fn now_rfc3339() -> String {
    let mut out = String::with_capacity(24);
    push_now_rfc3339(&mut out);
    out
}

/// Appends the current UTC time as [`now_rfc3339`] writes it.
fn push_now_rfc3339(out: &mut String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    push_rfc3339(out, now.as_secs(), now.subsec_millis());
}

#[cfg(test)]
fn rfc3339(secs: u64, millis: u32) -> String {
    let mut out = String::new();
    push_rfc3339(&mut out, secs, millis);
    out
}

/// Appends `secs.millis` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`, digit by digit (this
/// runs for every log line; `format!` costs several times more).
fn push_rfc3339(out: &mut String, secs: u64, millis: u32) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    let mut digits = |value: u64, width: u32, then: Option<char>| {
        for k in (0..width).rev() {
            let digit = (value / 10u64.pow(k)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        if let Some(c) = then {
            out.push(c);
        }
    };
    digits(u64::try_from(y).unwrap_or(0), 4, Some('-'));
    digits(u64::from(m), 2, Some('-'));
    digits(u64::from(d), 2, Some('T'));
    digits(rem / 3600, 2, Some(':'));
    digits((rem % 3600) / 60, 2, Some(':'));
    digits(rem % 60, 2, Some('.'));
    digits(u64::from(millis), 3, Some('Z'));
}

/// Days since 1970-01-01 → (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(buf: &Buf) -> Vec<Value> {
        String::from_utf8(buf.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn sink(level: LevelFilter) -> (LogSink, Buf) {
        let buf = Buf::default();
        (
            LogSink::new(
                "inst-1".into(),
                Some("staging".into()),
                level,
                Box::new(buf.clone()),
            ),
            buf,
        )
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_435_200, 5), "2026-11-23T12:00:00.005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn app_lines_plain_and_json() {
        let (sink, buf) = sink(LevelFilter::INFO);
        sink.set_request_id(Some("req-1"));
        sink.app_line("stdout", "hello", up_config::value::Level::Info);
        sink.app_line(
            "stdout",
            r#"{"level":"warn","msg":"careful","user":"alice"}"#,
            up_config::value::Level::Info,
        );
        sink.app_line(
            "stderr",
            r#"{"level":"debug","message":"hidden"}"#,
            up_config::value::Level::Error,
        );
        sink.app_line("stderr", "boom", up_config::value::Level::Error);
        sink.flush();
        let l = lines(&buf);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0]["msg"], "hello");
        assert_eq!(l[0]["level"], "info");
        assert_eq!(l[0]["source"], "app");
        assert_eq!(l[0]["stream"], "stdout");
        assert_eq!(l[0]["request_id"], "req-1");
        assert_eq!(l[0]["instance"], "inst-1");
        assert_eq!(l[0]["stage"], "staging");
        assert_eq!(l[1]["level"], "warn");
        assert_eq!(l[1]["msg"], "careful");
        assert_eq!(l[1]["user"], "alice");
        assert_eq!(l[2]["level"], "error");
        assert_eq!(l[2]["stream"], "stderr");
    }

    /// stdout that takes nothing until released.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>, Buf);
    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let (open, released) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = released.wait(open).unwrap();
            }
            self.1.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stdout_never_blocks_writers_and_drops_are_counted() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let buf = Buf::default();
        let out = Stuck(gate.clone(), buf.clone());
        let sink = LogSink::new("i".into(), None, LevelFilter::INFO, Box::new(out));
        let line = "x".repeat(1000);
        // Far more than the bound: every call returns although stdout takes nothing.
        for _ in 0..3 * MAX_PENDING / 1000 {
            sink.app_line("stdout", &line, up_config::value::Level::Info);
        }
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        sink.flush();
        let l = lines(&buf);
        let dropped = l
            .iter()
            .find(|l| l["msg"] == "log lines dropped: stdout did not keep up")
            .expect("drop report");
        let kept = l.iter().filter(|l| l["msg"] == line.as_str()).count() as u64;
        assert!(kept > 0);
        assert_eq!(
            kept + dropped["dropped"].as_u64().unwrap(),
            (3 * MAX_PENDING / 1000) as u64
        );
    }

    #[test]
    fn lines_go_straight_into_a_pipe_while_the_writer_thread_is_stuck() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (mut reader, writer) = std::io::pipe().unwrap();
        let direct = nonblocking_pipe(writer.as_raw_fd()).expect("a pipe");
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let buf = Buf::default();
        let stuck = Stuck(gate.clone(), buf.clone());
        let sink = LogSink::with_direct(
            "i".into(),
            None,
            LevelFilter::INFO,
            Box::new(stuck),
            Some(Box::new(direct)),
        );
        sink.app_line("stdout", "one", up_config::value::Level::Info);
        sink.app_line("stdout", "two", up_config::value::Level::Info);
        drop(sink);
        drop(writer);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        let msgs: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["msg"].to_string())
            .collect();
        assert_eq!(msgs, [r#""one""#, r#""two""#]);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(buf.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_full_pipe_hands_the_rest_to_the_writer_thread_in_order() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (mut reader, writer) = std::io::pipe().unwrap();
        let direct = nonblocking_pipe(writer.as_raw_fd()).expect("a pipe");
        let buf = Buf::default();
        let sink = LogSink::with_direct(
            "i".into(),
            None,
            LevelFilter::INFO,
            Box::new(buf.clone()),
            Some(Box::new(direct)),
        );
        // 300 lines of about 1 kB: far more than a pipe holds (64 KiB), and nobody reads it yet.
        let n = 300;
        for i in 0..n {
            sink.app_line(
                "stdout",
                &format!("{i:03} {}", "x".repeat(1000)),
                up_config::value::Level::Info,
            );
        }
        sink.flush();
        drop(sink);
        drop(writer);
        let mut piped = String::new();
        reader.read_to_string(&mut piped).unwrap();
        let queued = lines(&buf);
        let numbers: Vec<usize> = piped
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .chain(queued)
            .map(|l| l["msg"].as_str().unwrap()[..3].parse().unwrap())
            .collect();
        assert_eq!(numbers, (0..n).collect::<Vec<_>>());
        assert!(piped.lines().count() > 0 && piped.lines().count() < n);
    }

    #[test]
    fn level_precedence() {
        let env = |pairs: &[(&str, &str)]| -> Env {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(level_from(&env(&[])), LevelFilter::INFO);
        assert_eq!(
            level_from(&env(&[("RUST_LOG", "debug")])),
            LevelFilter::DEBUG
        );
        assert_eq!(
            level_from(&env(&[("RUST_LOG", "hyper=trace,warn")])),
            LevelFilter::WARN
        );
        assert_eq!(
            level_from(&env(&[
                ("RUST_LOG", "debug"),
                ("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            ])),
            LevelFilter::ERROR
        );
    }

    #[test]
    fn tracing_events_become_json_lines() {
        use tracing_subscriber::layer::SubscriberExt;
        let (sink, buf) = sink(LevelFilter::DEBUG);
        let sink = Arc::new(sink);
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("invocation", event = "apigateway_v2");
            let _g = span.enter();
            tracing::warn!(status = 502, cause = "x", "app exited");
            tracing::trace!("not shown");
        });
        sink.flush();
        let l = lines(&buf);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0]["level"], "warn");
        assert_eq!(l[0]["msg"], "app exited");
        assert_eq!(l[0]["status"], 502);
        assert_eq!(l[0]["event"], "apigateway_v2");
    }
}
