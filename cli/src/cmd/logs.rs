//! `up logs [-f] [--since 1h] [query]`: the function's log events from CloudWatch Logs.
//!
//! Events come from `FilterLogEvents` on the function's log group (`/aws/lambda/<name>`), with
//! the query turned into a filter pattern ([`query`]). On a terminal each event is one readable
//! line ([`format`]); when stdout is a pipe (or with `--output json`) each event's message is
//! printed unchanged, so `up logs | jq` sees the bootstrap's JSON lines. Lambda's own
//! `START` / `END` / `REPORT` lines are left out unless `--all`.
//!
//! `--follow` polls again every 1 to 5 seconds (sooner while events keep coming), each time
//! from a little before the newest event seen, so late-ingested events are not missed, and
//! never prints an event twice.

pub mod format;
pub mod query;

use crate::{Globals, Output};
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError;
use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shortest wait between two polls in follow mode.
const POLL_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two polls in follow mode (reached after quiet polls).
const POLL_MAX: Duration = Duration::from_secs(5);
/// How far before the newest event seen each poll starts again: CloudWatch may ingest an
/// event after a newer one.
const LOOKBACK_MS: i64 = 10_000;
/// The most pages one fetch reads (10 000 events each at most).
const MAX_PAGES: usize = 10_000;

/// Arguments of `up logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing new events as they arrive (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// How far back to start: `30s`, `5m`, `1h`, `2d`, `1w`, or combined (`1h30m`).
    #[arg(short, long, default_value = "1h", value_parser = parse_since)]
    pub since: Duration,
    /// Include Lambda's own lines (START, END, REPORT).
    #[arg(long)]
    pub all: bool,
    /// Text to search for (`timeout`), or field comparisons joined by `and`:
    /// `level = "error"`, `status >= 500 and path = "/api/*"`.
    #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub query: Vec<String>,
}

/// Runs `up logs`.
pub async fn run(args: Args, globals: &Globals) -> anyhow::Result<()> {
    let query = query::parse(&args.query.join(" "))?;
    // The function (and its log group) is shared by every stage: any stage's config names it.
    let config = crate::project::load(&globals.dir, "staging")?;
    let clients = crate::aws::Clients::for_config(&config).await?;
    let client = aws_sdk_cloudwatchlogs::Client::new(&clients.sdk);
    let group = crate::names::log_group(&config);

    let stdout = std::io::stdout();
    let raw = globals.output == Output::Json || !stdout.is_terminal();
    let printer = Printer {
        raw,
        color: !raw && std::env::var_os("NO_COLOR").is_none(),
        all: args.all,
        query: &query,
    };
    let since_ms = i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX);
    let mut reader = Reader {
        client: &client,
        group: &group,
        pattern: query.filter_pattern(),
        from: now_ms().saturating_sub(since_ms),
        seen: HashMap::new(),
    };

    if !args.follow {
        return match reader.poll(&printer).await {
            Ok(_) => Ok(()),
            Err(Poll::Stop) => Ok(()),
            Err(Poll::Failed(err)) if is_missing_group(&err) => Err(anyhow::anyhow!(
                "no logs yet: log group {group} does not exist; deploy with `up deploy` and send the app a request"
            )),
            Err(Poll::Failed(err)) => {
                Err(clients.error("logs:FilterLogEvents", &group, *err).into())
            }
        };
    }

    let mut wait = POLL_MIN;
    let mut told_missing = false;
    loop {
        match reader.poll(&printer).await {
            Ok(0) => wait = (wait * 2).min(POLL_MAX),
            Ok(_) => wait = POLL_MIN,
            Err(Poll::Stop) => return Ok(()),
            Err(Poll::Failed(err)) if is_missing_group(&err) => {
                if !told_missing {
                    eprintln!("up: waiting for log group {group} (no invocation has logged yet)");
                    told_missing = true;
                }
                wait = POLL_MAX;
            }
            Err(Poll::Failed(err)) => {
                return Err(clients.error("logs:FilterLogEvents", &group, *err).into());
            }
        }
        tokio::time::sleep(wait).await;
    }
}

type FilterError = aws_sdk_cloudwatchlogs::error::SdkError<FilterLogEventsError>;

/// Why a poll ended early.
enum Poll {
    /// stdout is closed (`up logs | head`): stop quietly.
    Stop,
    /// The call failed.
    Failed(Box<FilterError>),
}

fn is_missing_group(err: &FilterError) -> bool {
    matches!(
        err.as_service_error(),
        Some(FilterLogEventsError::ResourceNotFoundException(_))
    )
}

/// Reads events page by page from `from` on, remembering which it printed.
struct Reader<'a> {
    client: &'a aws_sdk_cloudwatchlogs::Client,
    group: &'a str,
    pattern: Option<String>,
    /// Start of the next poll, epoch milliseconds.
    from: i64,
    /// Keys of the events printed at or after `from`, with their timestamps.
    seen: HashMap<String, i64>,
}

impl Reader<'_> {
    /// Fetches every event from `self.from` on, prints the new ones, moves `from` up; returns
    /// how many were new.
    async fn poll(&mut self, printer: &Printer<'_>) -> Result<usize, Poll> {
        let mut token: Option<String> = None;
        let mut fresh = 0;
        let mut newest = self.from;
        // Events without an id (some emulators) are told apart by their place among equals.
        let mut occurrences: HashMap<String, usize> = HashMap::new();
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .filter_log_events()
                .log_group_name(self.group)
                .start_time(self.from)
                .set_filter_pattern(self.pattern.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| Poll::Failed(Box::new(e)))?;
            let mut new_events = Vec::new();
            for event in page.events() {
                let timestamp = event.timestamp().unwrap_or(self.from);
                let key = event_key(event, &mut occurrences);
                if self.seen.contains_key(&key) {
                    continue;
                }
                self.seen.insert(key, timestamp);
                newest = newest.max(timestamp);
                new_events.push(event);
            }
            fresh += new_events.len();
            printer.print(&new_events).map_err(|_| Poll::Stop)?;
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        self.from = self.from.max(newest.saturating_sub(LOOKBACK_MS));
        let from = self.from;
        self.seen.retain(|_, timestamp| *timestamp >= from);
        Ok(fresh)
    }
}

/// The event's id, or (without one) its stream, time, message and rank among identical ones.
fn event_key(event: &FilteredLogEvent, occurrences: &mut HashMap<String, usize>) -> String {
    if let Some(id) = event.event_id().filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let base = format!(
        "{}\u{0}{}\u{0}{}",
        event.log_stream_name().unwrap_or_default(),
        event.timestamp().unwrap_or_default(),
        event.message().unwrap_or_default()
    );
    let rank = occurrences.entry(base.clone()).or_insert(0);
    *rank += 1;
    format!("{base}\u{0}{rank}")
}

/// How events are written to stdout.
struct Printer<'a> {
    /// Messages unchanged (a pipe, or `--output json`) rather than readable lines.
    raw: bool,
    color: bool,
    /// Lambda's own lines too.
    all: bool,
    query: &'a query::Query,
}

impl Printer<'_> {
    /// Writes the events that pass; an error means stdout is gone.
    fn print(&self, events: &[&FilteredLogEvent]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for event in events {
            let message = event.message().unwrap_or_default();
            if (!self.all && format::is_platform(message)) || !self.query.matches(message) {
                continue;
            }
            if self.raw {
                writeln!(out, "{}", message.trim_end_matches(['\n', '\r']))?;
            } else {
                let line = format::text_line(event.timestamp().unwrap_or(0), message, self.color);
                writeln!(out, "{line}")?;
            }
        }
        out.flush()
    }
}

/// Parses `--since`: one or more `<number><unit>` with units `s`, `m`, `h`, `d`, `w`.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration like 30s, 5m, 1h, 2d or 1h30m, got {text:?}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{}: add a unit (s, m, h, d, w)", bad()))?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| digits + i);
        let unit = match &rest[digits..unit_end] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        total = number
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs(total))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_units_and_combinations() {
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_since("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_since("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_since("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_since("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn since_rejects_what_it_cannot_read() {
        for bad in [
            "",
            "10",
            "h",
            "1y",
            "-1h",
            "1.5h",
            "1 h",
            "99999999999999999999w",
        ] {
            let err = parse_since(bad).unwrap_err();
            assert!(err.contains("expected a duration"), "{bad}: {err}");
        }
        assert!(parse_since("10").unwrap_err().contains("add a unit"));
    }

    #[test]
    fn events_without_ids_are_told_apart_by_rank() {
        let event = |id: Option<&str>, message: &str| {
            FilteredLogEvent::builder()
                .set_event_id(id.map(str::to_owned))
                .log_stream_name("s")
                .timestamp(5)
                .message(message)
                .build()
        };
        let mut ranks = HashMap::new();
        assert_eq!(event_key(&event(Some("e1"), "a"), &mut ranks), "e1");
        let first = event_key(&event(None, "a"), &mut ranks);
        let second = event_key(&event(None, "a"), &mut ranks);
        let other = event_key(&event(None, "b"), &mut ranks);
        assert_ne!(first, second);
        assert_ne!(first, other);
        // The same page read again gives the same keys.
        let mut again = HashMap::new();
        assert_eq!(event_key(&event(None, "a"), &mut again), first);
        assert_eq!(event_key(&event(None, "a"), &mut again), second);
    }
}
