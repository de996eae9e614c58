//! The LogQL [`LogSource`] over a world: log records rendered on demand and grouped into Loki streams.

use std::collections::BTreeMap;

use firedrill_logql::{LogEntry, LogSource, LogStream, SourceError, StreamMatcher, matches_all};
use firedrill_telemetry::logs::{self, LogOptions, LogRecord};
use firedrill_world::World;

/// How each record is written as a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineFormat {
    /// `ts=... level=... service=... event=... msg="..." k=v` (parse with `| logfmt`).
    #[default]
    Logfmt,
    /// One JSON object per line (parse with `| json`).
    Json,
}

/// What the log source renders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSourceOptions {
    /// Background lines and everyday warnings as a multiple of the normal rate; a scenario instance's
    /// `log_noise` (it grows with difficulty).
    pub noise: f64,
    /// Line format.
    pub format: LineFormat,
    /// Most records one selection may render. A window holding more is an error asking for a narrower range,
    /// never a silently truncated answer.
    pub max_records: usize,
}

impl Default for LogSourceOptions {
    fn default() -> Self {
        LogSourceOptions {
            noise: 1.0,
            format: LineFormat::Logfmt,
            max_records: 2_000_000,
        }
    }
}

/// A LogQL [`LogSource`] reading a [`World`]'s logs.
///
/// Streams are labelled `namespace`, `service`, `pod` (when one pod wrote the line) and `level`. `level` is a
/// stream label, as a Promtail or Alloy pipeline commonly makes it, so `{service="x", level="error"}` and
/// `sum by (level) (...)` work without a parser stage; the line still carries it for `| logfmt`.
#[derive(Debug, Clone, Copy)]
pub struct WorldLogs<'a> {
    world: &'a World,
    options: LogSourceOptions,
}

/// Unix ms of the first whole millisecond at or after `ns` (records have millisecond timestamps).
fn ceil_ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000) + i64::from(ns.rem_euclid(1_000_000) != 0)
}

impl<'a> WorldLogs<'a> {
    /// A log source over `world`.
    pub fn new(world: &'a World, options: LogSourceOptions) -> Self {
        WorldLogs { world, options }
    }

    /// The options.
    pub fn options(&self) -> &LogSourceOptions {
        &self.options
    }

    /// Records with timestamps in `[start_ns, end_ns)`.
    fn records(&self, start_ns: i64, end_ns: i64) -> Result<Vec<LogRecord>, SourceError> {
        if end_ns <= start_ns {
            return Ok(Vec::new());
        }
        let cap = self.options.max_records;
        let opts = LogOptions {
            noise: self.options.noise,
            // One more than allowed, to tell "exactly the cap" from "truncated by the renderer".
            max_records: cap.saturating_add(1),
        };
        let out = logs::render(self.world, ceil_ms(start_ns), ceil_ms(end_ns), &opts);
        if out.len() > cap {
            return Err(SourceError::new(format!(
                "the time range holds more than {cap} log lines; narrow it"
            )));
        }
        Ok(out)
    }

    fn line(&self, r: &LogRecord) -> String {
        match self.options.format {
            LineFormat::Logfmt => r.logfmt(),
            LineFormat::Json => r.json(),
        }
    }
}

/// The stream labels of a record in this source.
pub fn stream_labels(r: &LogRecord) -> BTreeMap<String, String> {
    let mut l = r.stream_labels();
    l.insert("level".to_string(), r.level.as_str().to_string());
    l
}

impl LogSource for WorldLogs<'_> {
    fn select(
        &self,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<LogStream>, SourceError> {
        let mut streams: BTreeMap<BTreeMap<String, String>, Option<Vec<LogEntry>>> =
            BTreeMap::new();
        for r in self.records(start_ns, end_ns)? {
            let labels = stream_labels(&r);
            // Matching is decided once per label set; `None` remembers a stream the selector rejects.
            let slot = match streams.get_mut(&labels) {
                Some(s) => s,
                None => {
                    let keep = matches_all(matchers, &labels);
                    streams.entry(labels).or_insert_with(|| keep.then(Vec::new))
                }
            };
            if let Some(entries) = slot {
                entries.push(LogEntry {
                    ts_ns: r.t_ms.saturating_mul(1_000_000),
                    line: self.line(&r),
                });
            }
        }
        // Records come sorted by time; a stream's entries therefore are too.
        Ok(streams
            .into_iter()
            .filter_map(|(labels, entries)| {
                entries
                    .filter(|e| !e.is_empty())
                    .map(|entries| LogStream { labels, entries })
            })
            .collect())
    }

    fn label_names(&self, start_ns: i64, end_ns: i64) -> Result<Vec<String>, SourceError> {
        let mut names: Vec<String> = self
            .records(start_ns, end_ns)?
            .iter()
            .flat_map(|r| stream_labels(r).into_keys())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[StreamMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<String>, SourceError> {
        let mut values: Vec<String> = self
            .records(start_ns, end_ns)?
            .iter()
            .map(stream_labels)
            .filter(|l| matches_all(matchers, l))
            .filter_map(|mut l| l.remove(name))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_ms_rounds_up_to_whole_milliseconds() {
        assert_eq!(ceil_ms(0), 0);
        assert_eq!(ceil_ms(1), 1);
        assert_eq!(ceil_ms(1_000_000), 1);
        assert_eq!(ceil_ms(1_000_001), 2);
        assert_eq!(ceil_ms(-1), 0);
        assert_eq!(ceil_ms(-1_000_000), -1);
    }
}
