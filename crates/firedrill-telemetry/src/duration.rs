//! Prometheus-style durations (`90s`, `5m`, `1h30m`).

/// Parses a duration into seconds. Accepts concatenated `<number><unit>` terms with units ms, s, m, h, d, w.
pub fn parse_duration_s(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t == "0" {
        return Ok(0.0);
    }
    let mut total = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {:?}",
                rest
            ));
        }
        let n: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid number in duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "" => {
                return Err(format!(
                    "duration {text:?} needs a unit (ms, s, m, h, d, w)"
                ));
            }
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration_s("2m"), Ok(120.0));
        assert_eq!(parse_duration_s("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration_s("0"), Ok(0.0));
        assert!(parse_duration_s("5").is_err());
        assert!(parse_duration_s("5y").is_err());
        assert!(parse_duration_s("m").is_err());
    }
}
