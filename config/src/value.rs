//! Validated value types of `up.json`: bounded durations, memory, sizes, levels, ordered maps.
//!
//! Each type validates while it deserializes, so a bad value fails with a message that
//! names what was expected and what was found (`expected seconds (1..=25), got "abc"`); the
//! loader adds the key path in front.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Parses `15`, `1.5`, `"15s"`, `"500ms"`, `"2m"`, `"1h"` into a duration. Bare numbers are
/// seconds.
pub fn parse_duration(value: &Value) -> Option<Duration> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64),
        Value::String(s) => parse_duration_str(s),
        _ => None,
    }
}

fn parse_duration_str(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Shows a JSON value the way the user wrote it, for error messages.
fn shown(value: &Value) -> String {
    value.to_string()
}

/// A duration in whole or fractional seconds bounded to `MIN..=MAX` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds<const MIN: u64, const MAX: u64>(Duration);

impl<const MIN: u64, const MAX: u64> Seconds<MIN, MAX> {
    /// A value known to be in range (used for defaults).
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Seconds<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match parse_duration(&value) {
            Some(duration)
                if duration >= Duration::from_secs(MIN) && duration <= Duration::from_secs(MAX) =>
            {
                Ok(Self(duration))
            }
            _ => Err(de::Error::custom(format!(
                "expected seconds ({MIN}..={MAX}), got {}",
                shown(&value)
            ))),
        }
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Seconds<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_duration(self.0, s)
    }
}

fn serialize_duration<S: Serializer>(d: Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_nanos() == 0 {
        s.serialize_u64(d.as_secs())
    } else {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }
}

/// A duration bounded to `MIN_MS..=MAX_MS` milliseconds; bare numbers are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis<const MIN_MS: u64, const MAX_MS: u64>(Duration);

impl<const MIN_MS: u64, const MAX_MS: u64> Millis<MIN_MS, MAX_MS> {
    /// A value known to be in range (used for defaults).
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl<'de, const MIN_MS: u64, const MAX_MS: u64> Deserialize<'de> for Millis<MIN_MS, MAX_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let duration = match &value {
            Value::Number(n) => n
                .as_f64()
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            other => parse_duration(other),
        };
        match duration {
            Some(d) if d >= Duration::from_millis(MIN_MS) && d <= Duration::from_millis(MAX_MS) => {
                Ok(Self(d))
            }
            _ => Err(de::Error::custom(format!(
                "expected milliseconds ({MIN_MS}..={MAX_MS}) or a duration such as \"250ms\", got {}",
                shown(&value)
            ))),
        }
    }
}

impl<const MIN_MS: u64, const MAX_MS: u64> Serialize for Millis<MIN_MS, MAX_MS> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX))
    }
}

/// An integer bounded to `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    /// A value known to be in range (used for defaults).
    pub const fn new_const(v: u64) -> Self {
        Self(v)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match value.as_u64() {
            Some(v) if (MIN..=MAX).contains(&v) => Ok(Self(v)),
            _ => Err(de::Error::custom(format!(
                "expected an integer ({MIN}..={MAX}), got {}",
                shown(&value)
            ))),
        }
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Bounded<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A byte size: a number of bytes, or a string such as `"6MB"`, `"512KB"`, `"1MiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"6MB"`-style sizes (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
    pub fn parse(s: &str) -> Option<u64> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().ok()?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" => 1024,
            "mb" => 1000 * 1000,
            "mib" => 1024 * 1024,
            "gb" => 1000 * 1000 * 1000,
            "gib" => 1024 * 1024 * 1024,
            _ => return None,
        };
        n.checked_mul(mult)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let parsed = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => Self::parse(s),
            _ => None,
        };
        parsed.map(ByteSize).ok_or_else(|| {
            de::Error::custom(format!(
                "expected a size in bytes or a string such as \"6MB\", got {}",
                shown(&value)
            ))
        })
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A log level, as `logs.stdout` / `logs.stderr` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failure.
    Error,
    /// apex/up's name for the highest level; logged as `error`.
    Fatal,
}

impl Level {
    /// The level's name as it appears in log lines (`fatal` is logged as `error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error | Level::Fatal => "error",
        }
    }
}

/// A JSON object whose keys keep the order they were written in (rules are tried in order).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> OrderedMap<V> {
    /// The entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    entries.push((k, v));
                }
                Ok(OrderedMap(entries))
            }
        }
        d.deserialize_map(OrderedVisitor(std::marker::PhantomData))
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// One command or a list of commands (`hooks.build: "make"` or `["make", "strip x"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Commands(pub Vec<String>);

impl<'de> Deserialize<'de> for Commands {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match value {
            Value::String(s) => Ok(Commands(vec![s])),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(de::Error::custom(format!(
                        "expected a command string, got {}",
                        shown(&other)
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Commands),
            other => Err(de::Error::custom(format!(
                "expected a command string or a list of them, got {}",
                shown(&other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_accept_numbers_and_units() {
        assert_eq!(parse_duration(&json!(15)), Some(Duration::from_secs(15)));
        assert_eq!(
            parse_duration(&json!("500ms")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration(&json!("2m")), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration(&json!("abc")), None);
        assert_eq!(parse_duration(&json!(-1)), None);
    }

    #[test]
    fn seconds_out_of_range_names_range_and_value() {
        let err = serde_json::from_value::<Seconds<1, 25>>(json!("abc")).unwrap_err();
        assert_eq!(err.to_string(), r#"expected seconds (1..=25), got "abc""#);
        let err = serde_json::from_value::<Seconds<1, 25>>(json!(26)).unwrap_err();
        assert_eq!(err.to_string(), "expected seconds (1..=25), got 26");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(ByteSize::parse("6MB"), Some(6_000_000));
        assert_eq!(ByteSize::parse("1MiB"), Some(1 << 20));
        assert_eq!(ByteSize::parse("12"), Some(12));
        assert_eq!(ByteSize::parse("x"), None);
    }

    #[test]
    fn ordered_map_keeps_file_order() {
        let m: OrderedMap<u8> = serde_json::from_str(r#"{"b":1,"a":2,"c":3}"#).unwrap();
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }
}
