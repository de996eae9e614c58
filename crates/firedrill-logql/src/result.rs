//! Query results and their rendering as the `data` field of Loki's HTTP API.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value, json};

/// One output stream of a log query.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamResult {
    /// Labels after the pipeline (stream labels plus extracted ones).
    pub labels: BTreeMap<String, String>,
    /// `(timestamp ns, line)` in the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// One series of a metric range query.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Series labels.
    pub labels: BTreeMap<String, String>,
    /// `(timestamp ns, value)` in ascending time.
    pub points: Vec<(i64, f64)>,
}

/// One sample of a metric instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series labels.
    pub labels: BTreeMap<String, String>,
    /// Evaluation timestamp in nanoseconds.
    pub ts_ns: i64,
    /// Value.
    pub value: f64,
}

/// Work counters, rendered as Loki's `stats.summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Lines read from the source.
    pub lines_processed: u64,
    /// Bytes of lines read from the source.
    pub bytes_processed: u64,
    /// Lines that passed the pipeline.
    pub post_filter_lines: u64,
    /// Entries (log queries) or samples (metric queries) returned.
    pub entries_returned: u64,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// Log query result (`resultType: "streams"`), streams sorted by labels.
    Streams(Vec<StreamResult>, Stats),
    /// Metric range query result (`resultType: "matrix"`), series sorted by labels.
    Matrix(Vec<Series>, Stats),
    /// Metric instant query result (`resultType: "vector"`).
    Vector(Vec<Sample>, Stats),
    /// A scalar (`resultType: "scalar"`), from an instant query of a number expression.
    Scalar(i64, f64, Stats),
}

/// Formats a sample value the way Prometheus and Loki do (`NaN`, `+Inf`, shortest decimal).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

/// Unix seconds with millisecond precision as a JSON number, like Prometheus' `model.Time`.
pub fn unix_seconds(ts_ns: i64) -> Value {
    let ms = ts_ns.div_euclid(1_000_000);
    if ms % 1000 == 0 {
        Value::Number(Number::from(ms / 1000))
    } else {
        Number::from_f64(ms as f64 / 1000.0).map_or(Value::Null, Value::Number)
    }
}

fn labels_json(l: &BTreeMap<String, String>) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

impl QueryResult {
    /// The `resultType` string.
    pub fn result_type(&self) -> &'static str {
        match self {
            Self::Streams(..) => "streams",
            Self::Matrix(..) => "matrix",
            Self::Vector(..) => "vector",
            Self::Scalar(..) => "scalar",
        }
    }

    /// The work counters.
    pub fn stats(&self) -> Stats {
        match self {
            Self::Streams(_, s)
            | Self::Matrix(_, s)
            | Self::Vector(_, s)
            | Self::Scalar(_, _, s) => *s,
        }
    }

    /// The value of Loki's `data` field: `{"resultType":..., "result":[...], "stats":{...}}`.
    pub fn to_loki_data(&self) -> Value {
        let result = match self {
            Self::Streams(streams, _) => Value::Array(
                streams
                    .iter()
                    .map(|s| {
                        json!({
                            "stream": labels_json(&s.labels),
                            "values": s.entries.iter().map(|(ts, line)| json!([ts.to_string(), line])).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
            Self::Matrix(series, _) => Value::Array(
                series
                    .iter()
                    .map(|s| {
                        json!({
                            "metric": labels_json(&s.labels),
                            "values": s.points.iter().map(|(ts, v)| json!([unix_seconds(*ts), format_value(*v)])).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
            Self::Vector(samples, _) => Value::Array(
                samples
                    .iter()
                    .map(|s| {
                        json!({
                            "metric": labels_json(&s.labels),
                            "value": [unix_seconds(s.ts_ns), format_value(s.value)],
                        })
                    })
                    .collect(),
            ),
            Self::Scalar(ts, v, _) => json!([unix_seconds(*ts), format_value(*v)]),
        };
        let st = self.stats();
        json!({
            "resultType": self.result_type(),
            "result": result,
            "stats": {
                "summary": {
                    "bytesProcessedPerSecond": 0,
                    "linesProcessedPerSecond": 0,
                    "totalBytesProcessed": st.bytes_processed,
                    "totalLinesProcessed": st.lines_processed,
                    "totalPostFilterLines": st.post_filter_lines,
                    "totalEntriesReturned": st.entries_returned,
                    "execTime": 0.0,
                    "queueTime": 0.0,
                    "subqueries": 0,
                    "splits": 0,
                    "shards": 0,
                    "totalStructuredMetadataBytesProcessed": 0
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_and_time_formatting() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(
            unix_seconds(1_700_000_000_000_000_000).to_string(),
            "1700000000"
        );
        assert_eq!(
            unix_seconds(1_700_000_000_123_456_789).to_string(),
            "1700000000.123"
        );
    }

    #[test]
    fn shapes() {
        let l: BTreeMap<String, String> = [("a".to_owned(), "b".to_owned())].into();
        let r = QueryResult::Streams(
            vec![StreamResult {
                labels: l.clone(),
                entries: vec![(5, "x".into())],
            }],
            Stats::default(),
        );
        let d = r.to_loki_data();
        assert_eq!(d["resultType"], "streams");
        assert_eq!(d["result"][0]["stream"]["a"], "b");
        assert_eq!(d["result"][0]["values"][0], json!(["5", "x"]));
        let v = QueryResult::Vector(
            vec![Sample {
                labels: l,
                ts_ns: 2_000_000_000,
                value: 1.5,
            }],
            Stats::default(),
        )
        .to_loki_data();
        assert_eq!(v["result"][0]["value"], json!([2, "1.5"]));
    }
}
