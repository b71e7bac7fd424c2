//! The `DSGW_<SECTION>_<KEY>` overlay: environment variables that override
//! keys of the file. Errors name the variable or the key, never the value.

use std::collections::BTreeMap;

use super::error::{ConfigError, Origins};
use super::raw::default_table;
use super::ENV_PREFIX;

/// Overlays the `DSGW_*` variables of `env` on the parsed file, and returns
/// which keys they set. The expected type of each key is read off the
/// defaults, so `DSGW_SESSION_TTL_SECS=60` becomes an integer while a
/// numeric-looking secret stays a string.
pub(super) fn overlay(
    table: &mut toml::Table,
    env: &[(String, String)],
) -> Result<Origins, ConfigError> {
    let defaults = default_table();
    let sorted: BTreeMap<&str, &str> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut origins = Origins::default();
    for (var, value) in sorted {
        let (section, key) = split(&defaults, var)?;
        let expected = defaults
            .get(&section)
            .and_then(|s| s.as_table())
            .and_then(|s| s.get(&key));
        let parsed = typed(expected, value).map_err(|m| ConfigError::new(var, m))?;
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(t) = entry.as_table_mut() else {
            return Err(ConfigError::new(section, "must be a table"));
        };
        origins.set_by(format!("{section}.{key}"), var.to_string());
        t.insert(key, parsed);
    }
    Ok(origins)
}

/// `DSGW_SESSION_TTL_SECS` -> (`session`, `ttl_secs`).
fn split(defaults: &toml::Table, var: &str) -> Result<(String, String), ConfigError> {
    let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
    defaults
        .keys()
        .find_map(|section| {
            rest.strip_prefix(section.as_str())
                .and_then(|r| r.strip_prefix('_'))
                .map(|key| (section.clone(), key.to_string()))
        })
        .ok_or_else(|| {
            let sections: Vec<String> = defaults
                .keys()
                .map(|s| format!("{ENV_PREFIX}{}_*", s.to_ascii_uppercase()))
                .collect();
            let expected = sections.join(", ");
            ConfigError::new(var, format!("unknown variable: expected one of {expected}"))
        })
}

/// The variable's text as the TOML type of the key's default. The message
/// of an error never holds `value`.
fn typed(expected: Option<&toml::Value>, value: &str) -> Result<toml::Value, String> {
    match expected {
        Some(toml::Value::Integer(_)) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| "expected a whole number (the value is not shown)".to_string()),
        Some(toml::Value::Boolean(_)) => match value.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err("expected true or false (the value is not shown)".to_string()),
        },
        Some(toml::Value::Array(_)) => list(value),
        _ => Ok(toml::Value::String(value.to_string())),
    }
}

/// A TOML array (`["a", "b"]`) or a comma-separated list (`a, b`).
fn list(value: &str) -> Result<toml::Value, String> {
    let trimmed = value.trim();
    if trimmed.starts_with('[') {
        let doc: toml::Table = format!("v = {trimmed}")
            .parse()
            .map_err(|_| "expected a TOML array or a comma-separated list".to_string())?;
        return Ok(doc.get("v").cloned().unwrap_or(toml::Value::Array(vec![])));
    }
    Ok(toml::Value::Array(
        trimmed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| toml::Value::String(s.to_string()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_become_typed_keys_and_are_recorded() {
        let mut table = toml::Table::new();
        let origins = overlay(
            &mut table,
            &vars(&[
                ("DSGW_SESSION_TTL_SECS", "60"),
                ("DSGW_SESSION_SECRET", "123456"),
                ("DSGW_DOCUSIGN_SCOPES", "a, b"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(table["session"]["ttl_secs"].as_integer(), Some(60));
        assert_eq!(table["session"]["secret"].as_str(), Some("123456"));
        assert_eq!(
            table["docusign"]["scopes"].as_array().map(Vec::len),
            Some(2)
        );
        assert!(origins.hidden("session.ttl_secs").is_some());
        assert!(origins.hidden("server.listen").is_none());
    }

    #[test]
    fn a_bad_number_from_the_environment_is_not_echoed() {
        let secret = "hunter2-the-secret";
        for var in ["DSGW_SESSION_TTL_SECS", "DSGW_SESSION_SECURE_COOKIE"] {
            let e = overlay(&mut toml::Table::new(), &vars(&[(var, secret)])).unwrap_err();
            assert_eq!(e.key, var);
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(e.message.starts_with("expected"), "{e}");
        }
    }

    #[test]
    fn an_unknown_variable_is_named() {
        let e = overlay(
            &mut toml::Table::new(),
            &vars(&[("DSGW_SESSIONS_SECRET", "x")]),
        )
        .unwrap_err();
        assert_eq!(e.key, "DSGW_SESSIONS_SECRET");
        assert!(e.message.contains("DSGW_LIMITS_*"), "{e}");
    }
}
