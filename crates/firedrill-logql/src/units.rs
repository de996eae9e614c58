//! Durations and byte sizes as LogQL writes them (`5m`, `1h30m`, `250ms`, `20MB`, `1KiB`).

const NS: i128 = 1;
const US: i128 = 1_000;
const MS: i128 = 1_000_000;
const SEC: i128 = 1_000_000_000;
const MIN: i128 = 60 * SEC;
const HOUR: i128 = 60 * MIN;
const DAY: i128 = 24 * HOUR;
const WEEK: i128 = 7 * DAY;
const YEAR: i128 = 365 * DAY;

fn unit_ns(unit: &str, allow_long: bool) -> Option<i128> {
    Some(match unit {
        "ns" => NS,
        "us" | "µs" | "μs" => US,
        "ms" => MS,
        "s" => SEC,
        "m" => MIN,
        "h" => HOUR,
        "d" if allow_long => DAY,
        "w" if allow_long => WEEK,
        "y" if allow_long => YEAR,
        _ => return None,
    })
}

/// Parses a duration made of `<number><unit>` components into nanoseconds.
///
/// `allow_long` admits Prometheus' `d`, `w` and `y`; Go durations (label values) do not have them.
/// Fractions are allowed, as Go's `time.ParseDuration` allows them.
pub(crate) fn parse_duration_ns(text: &str, allow_long: bool) -> Option<i64> {
    let (neg, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return None;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = unit_ns(&rest[..unit_len], allow_long)?;
        rest = &rest[unit_len..];
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        if frac_part.contains('.') {
            return None;
        }
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut value = int.checked_mul(unit)?;
        // Fractions are accumulated digit by digit in integer arithmetic to stay exact.
        let mut scale = unit;
        for d in frac_part.bytes() {
            scale /= 10;
            value = value.checked_add(i128::from(d - b'0') * scale)?;
        }
        total = total.checked_add(value)?;
        if total > i128::from(i64::MAX) {
            return None;
        }
    }
    let total = i64::try_from(total).ok()?;
    Some(if neg { -total } else { total })
}

/// Formats nanoseconds as a duration that [`parse_duration_ns`] reads back exactly.
pub(crate) fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = i128::from(ns);
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    for (unit, name) in [
        (HOUR, "h"),
        (MIN, "m"),
        (SEC, "s"),
        (MS, "ms"),
        (US, "us"),
        (NS, "ns"),
    ] {
        let n = rest / unit;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(name);
            rest -= n * unit;
        }
    }
    out
}

/// Parses a human byte size (`20MB`, `1.5 KiB`, `42`), as go-humanize's `ParseBytes` does.
pub(crate) fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "p" | "pb" => 1e15,
        "e" | "eb" => 1e18,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        "pi" | "pib" => 1024f64.powi(5),
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    };
    let v = num * mult;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

/// Formats a byte count so that [`parse_bytes`] reads it back exactly.
pub(crate) fn format_bytes(b: u64) -> String {
    format!("{b}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("5m", true), Some(300_000_000_000));
        assert_eq!(parse_duration_ns("1h30m", true), Some(5_400_000_000_000));
        assert_eq!(parse_duration_ns("1.5s", false), Some(1_500_000_000));
        assert_eq!(parse_duration_ns("250ms", false), Some(250_000_000));
        assert_eq!(parse_duration_ns("1d", true), Some(86_400_000_000_000));
        assert_eq!(parse_duration_ns("1d", false), None);
        assert_eq!(parse_duration_ns("-2s", false), Some(-2_000_000_000));
        assert_eq!(parse_duration_ns("5", true), None);
        assert_eq!(parse_duration_ns("5x", true), None);
        assert_eq!(parse_duration_ns("", true), None);
        assert_eq!(parse_duration_ns("99999999999999y", true), None);
        for ns in [1, 999, 1_000_000, 90_000_000_000, 5_400_000_000_123, -7] {
            assert_eq!(parse_duration_ns(&format_duration(ns), false), Some(ns));
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("20MB"), Some(20_000_000));
        assert_eq!(parse_bytes("1KiB"), Some(1024));
        assert_eq!(parse_bytes("1.5 kb"), Some(1500));
        assert_eq!(parse_bytes("42"), Some(42));
        assert_eq!(parse_bytes("42B"), Some(42));
        assert_eq!(parse_bytes("x"), None);
    }
}
