//! How `up logs` shows an event on a terminal: `time LEVEL msg key=value ...`.
//!
//! The bootstrap's entries are JSON objects (`time`, `level`, `msg`, `request_id`, `instance`,
//! `stage`, then per-event fields); the fields every line has are left out, the others follow
//! the message, the request's own first. Lines that are not JSON (a crash, Lambda's `START` /
//! `END` / `REPORT`) are shown as they are.

use serde_json::{Map, Value};

/// Fields not shown on a terminal: the line's frame, the same on every line of an instance
/// (and empty text fields are left out too).
const HIDDEN: &[&str] = &[
    "time",
    "level",
    "msg",
    "request_id",
    "instance",
    "stage",
    "source",
    "stream",
    "event",
    "x_request_id",
];

/// Fields shown first, in this order, when present.
const FIRST: &[&str] = &["method", "path", "status", "duration_ms", "ip"];

/// Lambda's own lines (not the runtime's output).
pub fn is_platform(message: &str) -> bool {
    [
        "START RequestId:",
        "END RequestId:",
        "REPORT RequestId:",
        "INIT_START ",
        "INIT_REPORT ",
        "INIT_RUNTIME_DONE",
        "RESTORE_START ",
        "RESTORE_REPORT ",
        "EXTENSION\t",
        "TELEMETRY\t",
        "XRAY TraceId:",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix))
}

/// One event as a terminal line; `color` adds ANSI colours to the level.
pub fn text_line(timestamp_ms: i64, message: &str, color: bool) -> String {
    let time = utc_time(timestamp_ms);
    let message = message.trim_end_matches(['\n', '\r']);
    let fields = match serde_json::from_str::<Value>(message) {
        Ok(Value::Object(fields)) => fields,
        _ => return format!("{time} {message}"),
    };
    let level = fields
        .get("level")
        .and_then(Value::as_str)
        .unwrap_or("info")
        .to_ascii_uppercase();
    let msg = match fields.get("msg") {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut line = format!("{time} {} {msg}", paint(&level, color));
    for (key, value) in shown_fields(&fields) {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        line.push_str(&show(value));
    }
    line
}

fn shown_fields(fields: &Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut shown: Vec<(&str, &Value)> = FIRST
        .iter()
        .filter_map(|k| fields.get_key_value(*k).map(|(k, v)| (k.as_str(), v)))
        .collect();
    shown.extend(
        fields
            .iter()
            .filter(|(k, _)| !HIDDEN.contains(&k.as_str()) && !FIRST.contains(&k.as_str()))
            .filter(|(_, v)| v.as_str() != Some(""))
            .map(|(k, v)| (k.as_str(), v)),
    );
    shown
}

/// A value as a person reads it: text bare (quoted when it has spaces or is empty), numbers
/// with at most three decimals, the rest as compact JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() || s.contains(char::is_whitespace) => {
            Value::String(s.clone()).to_string()
        }
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(
            || n.to_string(),
            |f| {
                let text = format!("{f:.3}");
                text.trim_end_matches('0').trim_end_matches('.').to_owned()
            },
        ),
        other => other.to_string(),
    }
}

/// The level, padded to five columns, coloured by severity.
fn paint(level: &str, color: bool) -> String {
    let padded = format!("{level:<5}");
    if !color {
        return padded;
    }
    let code = match level {
        "ERROR" | "FATAL" | "CRITICAL" => "31",
        "WARN" | "WARNING" => "33",
        "DEBUG" | "TRACE" => "2",
        _ => "32",
    };
    format!("\x1b[{code}m{padded}\x1b[0m")
}

/// `2024-05-01 12:03:04.567` (UTC) for milliseconds since the epoch.
pub fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_time_formats_epoch_milliseconds() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc_time(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(utc_time(1_714_564_984_567), "2024-05-01 12:03:04.567");
        assert_eq!(utc_time(-1), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn json_entries_show_level_message_and_their_own_fields() {
        let line = text_line(
            0,
            r#"{"time":"t","level":"info","msg":"request","request_id":"r","instance":"i","stage":"staging","event":"v2","status":200,"method":"GET","path":"/x","duration_ms":1.23456,"ip":"1.2.3.4"}"#,
            false,
        );
        assert_eq!(
            line,
            "1970-01-01 00:00:00.000 INFO  request method=GET path=/x status=200 duration_ms=1.235 ip=1.2.3.4"
        );
        let line = text_line(
            0,
            "{\"level\":\"warn\",\"msg\":\"json line from app\",\"user\":\"alice\",\"source\":\"app\",\"note\":\"two words\",\"n\":2.0,\"query\":\"\"}\n",
            false,
        );
        // The entry's own fields, in the order the line has them.
        assert_eq!(
            line,
            "1970-01-01 00:00:00.000 WARN  json line from app user=alice note=\"two words\" n=2"
        );
    }

    #[test]
    fn other_lines_are_shown_as_they_are() {
        assert_eq!(
            text_line(0, "REPORT RequestId: 1\tDuration: 2 ms\n", false),
            "1970-01-01 00:00:00.000 REPORT RequestId: 1\tDuration: 2 ms"
        );
        assert_eq!(
            text_line(0, "[1,2]", false),
            "1970-01-01 00:00:00.000 [1,2]"
        );
    }

    #[test]
    fn colour_marks_the_level() {
        let line = text_line(0, r#"{"level":"error","msg":"boom"}"#, true);
        assert!(line.contains("\x1b[31mERROR\x1b[0m boom"), "{line:?}");
    }

    #[test]
    fn platform_lines_are_recognised() {
        assert!(is_platform("START RequestId: 1 Version: 1"));
        assert!(is_platform("REPORT RequestId: 1\tDuration: 2 ms"));
        assert!(!is_platform(r#"{"msg":"START RequestId"}"#));
    }
}
