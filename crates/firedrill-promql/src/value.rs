//! Query results and their Prometheus HTTP API rendering.

use serde_json::{Value as Json, json};

use crate::labels::Labels;
use crate::storage::{Sample, Series};

/// The result of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A single number at the evaluation time.
    Scalar(Sample),
    /// A string literal at the evaluation time.
    String {
        /// Evaluation time in milliseconds.
        t: i64,
        /// The string.
        value: String,
    },
    /// An instant vector: one sample per label set, all at the evaluation time.
    Vector(Vec<(Labels, Sample)>),
    /// A range vector (range queries, or instant queries of range-vector expressions).
    Matrix(Vec<Series>),
}

impl Value {
    /// Prometheus's `resultType` name.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }

    /// The `data` field of a Prometheus `/api/v1/query` or `/api/v1/query_range` response.
    pub fn to_prometheus_data(&self) -> Json {
        let result = match self {
            Value::Scalar(s) => json!([json_ts(s.t), format_value(s.v)]),
            Value::String { t, value } => json!([json_ts(*t), value]),
            Value::Vector(v) => Json::Array(
                v.iter()
                    .map(|(l, s)| json!({"metric": l, "value": [json_ts(s.t), format_value(s.v)]}))
                    .collect(),
            ),
            Value::Matrix(m) => Json::Array(
                m.iter()
                    .map(|s| {
                        let values: Vec<Json> = s
                            .samples
                            .iter()
                            .map(|p| json!([json_ts(p.t), format_value(p.v)]))
                            .collect();
                        json!({"metric": s.labels, "values": values})
                    })
                    .collect(),
            ),
        };
        json!({"resultType": self.result_type(), "result": result})
    }
}

/// Unix seconds as Prometheus writes them: an integer when whole, else milliseconds as fraction.
fn json_ts(ms: i64) -> Json {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// Formats a sample value like Prometheus (`strconv.FormatFloat(v, 'f', -1, 64)` plus
/// `NaN`/`+Inf`/`-Inf`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_json_shape() {
        let v = Value::Vector(vec![(
            Labels::new([("__name__", "up"), ("job", "a")]),
            Sample::new(1_500, 1.0),
        )]);
        assert_eq!(
            v.to_prometheus_data(),
            json!({"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1.5,"1"]}]})
        );
        let s = Value::Scalar(Sample::new(2_000, f64::INFINITY));
        assert_eq!(
            s.to_prometheus_data(),
            json!({"resultType":"scalar","result":[2,"+Inf"]})
        );
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
    }
}
