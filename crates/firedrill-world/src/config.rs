//! Configuration keys that the mechanics read.
//!
//! A service's configuration is a map of string keys to string values, as in a ConfigMap. Most keys are inert;
//! the ones listed in [`KNOWN_KEYS`] change the dynamics. Values are parsed once, when set, into
//! [`ConfigEffects`], so the per-tick code never parses strings.

use std::collections::BTreeMap;

/// The address of the cluster's resolver; a service configured with any other resolver cannot resolve names.
pub const CLUSTER_RESOLVER: &str = "10.96.0.10";

/// The keys with an effect, with what they accept.
pub const KNOWN_KEYS: &[(&str, &str)] = &[
    ("log.level", "one of debug, info, warn, error"),
    ("dns.resolver", "an IPv4 address"),
    ("rate_limit.rps_per_replica", "a number > 0"),
    ("db.pool.max_size", "an integer in 1..=1000"),
    ("http.client.retries", "an integer in 0..=10"),
    ("http.client.timeout_ms", "a number in (0, 600000]"),
    ("log.retention_minutes", "a number in [1, 10080]"),
];

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything, including per-request traces: far more volume.
    Debug,
    /// The default.
    Info,
    /// Warnings and errors only.
    Warn,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// Log volume relative to `info`.
    pub fn volume_factor(self) -> f64 {
        match self {
            LogLevel::Debug => 30.0,
            LogLevel::Info => 1.0,
            LogLevel::Warn => 0.3,
            LogLevel::Error => 0.1,
        }
    }
}

/// The typed effect of a service's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigEffects {
    /// Log level.
    pub log_level: LogLevel,
    /// Whether the configured resolver is the cluster's.
    pub resolver_ok: bool,
    /// Rate limit override.
    pub rate_limit_rps: Option<f64>,
    /// Pool size override for every pooled call.
    pub pool_max: Option<u32>,
    /// Retry override for every call.
    pub retries: Option<u8>,
    /// Timeout override for every call.
    pub timeout_ms: Option<f64>,
    /// How long rotated logs are kept, in minutes.
    pub log_retention_min: f64,
}

impl Default for ConfigEffects {
    fn default() -> Self {
        ConfigEffects {
            log_level: LogLevel::Info,
            resolver_ok: true,
            rate_limit_rps: None,
            pool_max: None,
            retries: None,
            timeout_ms: None,
            log_retention_min: 60.0,
        }
    }
}

impl ConfigEffects {
    /// Parses the effects of a whole configuration. Values were checked by [`check_value`] when set, so a value
    /// that does not parse here keeps the default.
    pub fn from_config(config: &BTreeMap<String, String>) -> ConfigEffects {
        let mut fx = ConfigEffects::default();
        for (k, v) in config {
            let v = v.trim();
            match k.as_str() {
                "log.level" => {
                    fx.log_level = match v {
                        "debug" => LogLevel::Debug,
                        "warn" => LogLevel::Warn,
                        "error" => LogLevel::Error,
                        _ => LogLevel::Info,
                    }
                }
                "dns.resolver" => fx.resolver_ok = v == CLUSTER_RESOLVER,
                "rate_limit.rps_per_replica" => fx.rate_limit_rps = v.parse().ok(),
                "db.pool.max_size" => fx.pool_max = v.parse().ok(),
                "http.client.retries" => fx.retries = v.parse().ok(),
                "http.client.timeout_ms" => fx.timeout_ms = v.parse().ok(),
                "log.retention_minutes" => {
                    if let Ok(m) = v.parse() {
                        fx.log_retention_min = m;
                    }
                }
                _ => {}
            }
        }
        fx
    }
}

/// Checks one key and value: the key's syntax, and for known keys, the value.
pub fn check_value(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty()
        || key.len() > 128
        || !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "config key {key:?} must be lowercase letters, digits, '.', '_' or '-'"
        ));
    }
    if value.len() > 1024 {
        return Err(format!("value of {key} is longer than 1024 bytes"));
    }
    let v = value.trim();
    let num = || v.parse::<f64>().ok().filter(|x| x.is_finite());
    let ok = match key {
        "log.level" => matches!(v, "debug" | "info" | "warn" | "error"),
        "dns.resolver" => v.parse::<std::net::Ipv4Addr>().is_ok(),
        "rate_limit.rps_per_replica" => num().is_some_and(|x| x > 0.0 && x <= 1e7),
        "db.pool.max_size" => v.parse::<u32>().is_ok_and(|x| (1..=1000).contains(&x)),
        "http.client.retries" => v.parse::<u8>().is_ok_and(|x| x <= 10),
        "http.client.timeout_ms" => num().is_some_and(|x| x > 0.0 && x <= 600_000.0),
        "log.retention_minutes" => num().is_some_and(|x| (1.0..=10_080.0).contains(&x)),
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        let expects = KNOWN_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| *e)
            .unwrap_or("");
        Err(format!(
            "invalid value {value:?} for {key}: expected {expects}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_are_checked() {
        assert!(check_value("log.level", "debug").is_ok());
        assert!(check_value("log.level", "verbose").is_err());
        assert!(check_value("dns.resolver", "10.0.0.1").is_ok());
        assert!(check_value("dns.resolver", "resolver.local").is_err());
        assert!(check_value("db.pool.max_size", "0").is_err());
        assert!(check_value("db.pool.max_size", "50").is_ok());
        assert!(check_value("Bad Key", "x").is_err());
        assert!(check_value("feature.banner_text", "anything at all").is_ok());
    }

    #[test]
    fn effects_follow_values() {
        let mut c = BTreeMap::new();
        c.insert("dns.resolver".to_string(), "10.96.0.53".to_string());
        c.insert("log.level".to_string(), "debug".to_string());
        let fx = ConfigEffects::from_config(&c);
        assert!(!fx.resolver_ok);
        assert_eq!(fx.log_level, LogLevel::Debug);
        c.insert("dns.resolver".to_string(), CLUSTER_RESOLVER.to_string());
        assert!(ConfigEffects::from_config(&c).resolver_ok);
    }
}
