//! [`ConfigError`] and the rule for quoting values in it: an error names the
//! key and says what is expected; it quotes the offending value only when
//! that value came from the file and the key is not a secret.

use std::collections::BTreeMap;

/// Keys whose values are secrets: no error ever quotes them.
/// (A Redis URL may carry a password.)
pub const SECRET_KEYS: &[&str] = &[
    "docusign.client_secret",
    "session.secret",
    "redis.url",
    "redis.cluster_urls",
];

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: `{key}`: {message}")]
pub struct ConfigError {
    /// Dotted key (`session.secret`), environment variable or file path.
    pub key: String,
    /// What is wrong and what is expected. It holds the offending value only
    /// when [`Origins`] allowed it.
    pub message: String,
}

impl ConfigError {
    /// An error whose message quotes no value.
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }

    /// `key` holds `value`, which is not what `expected` says. The value is
    /// quoted only when `origins` allows it for this key.
    pub(crate) fn invalid(key: &str, expected: &str, value: &str, origins: &Origins) -> Self {
        let message = match origins.hidden(key) {
            None => format!("{expected}, got {value:?}"),
            Some(why) => format!("{expected} ({why})"),
        };
        ConfigError::new(key, message)
    }
}

/// Which keys were set by `DSGW_*` variables, so that an error can tell
/// whether it may quote a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origins {
    /// Dotted key -> the variable that set it.
    from_env: BTreeMap<String, String>,
}

impl Origins {
    /// Records that `variable` set `key`.
    pub(crate) fn set_by(&mut self, key: String, variable: String) {
        self.from_env.insert(key, variable);
    }

    /// Why the value of `key` must not be quoted; `None` when it may be.
    /// `key` may carry an index (`docusign.scopes[1]`).
    pub(crate) fn hidden(&self, key: &str) -> Option<String> {
        let key = key.split('[').next().unwrap_or(key);
        if SECRET_KEYS.contains(&key) {
            return Some("the value of a secret key is not shown".into());
        }
        self.from_env
            .get(key)
            .map(|var| format!("set by {var}, whose value is not shown"))
    }

    /// A deserialization error for `key`, without the value serde quotes
    /// ("invalid type: integer `123`, expected a string") when it is hidden.
    pub(crate) fn serde_error(&self, key: String, message: &str) -> ConfigError {
        let message = &message.replace("expected u64", "expected a whole number, at least 0");
        let Some(why) = self.hidden(&key) else {
            return ConfigError::new(key, message);
        };
        // "unknown field `x`, expected one of ..." names keys, not values.
        if message.starts_with("unknown field") {
            return ConfigError::new(key, message);
        }
        let expected = match message.find("expected ") {
            Some(i) => &message[i..],
            None => "expected a value of the documented type",
        };
        ConfigError::new(key, format!("{expected} ({why})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_env(key: &str, var: &str) -> Origins {
        let mut o = Origins::default();
        o.set_by(key.into(), var.into());
        o
    }

    #[test]
    fn file_values_of_plain_keys_are_quoted() {
        let e = ConfigError::invalid("server.listen", "expected x", "nope", &Origins::default());
        assert_eq!(e.message, "expected x, got \"nope\"");
        assert_eq!(e.key, "server.listen");
    }

    #[test]
    fn secret_values_are_never_quoted() {
        let e = ConfigError::invalid(
            "session.secret",
            "expected x",
            "hunter2",
            &Origins::default(),
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("session.secret"), "{e}");
        let e = Origins::default().serde_error(
            "docusign.client_secret".into(),
            "invalid type: integer `1234567890123456789`, expected a string",
        );
        assert!(!e.to_string().contains("1234567890123456789"), "{e}");
        assert!(e.to_string().contains("expected a string"), "{e}");
    }

    #[test]
    fn environment_values_are_never_quoted() {
        let origins = from_env("server.listen", "DSGW_SERVER_LISTEN");
        let e = ConfigError::invalid("server.listen", "expected x", "s3cr3t", &origins);
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(e.to_string().contains("DSGW_SERVER_LISTEN"), "{e}");
        let origins = from_env("docusign.scopes", "DSGW_DOCUSIGN_SCOPES");
        let e = origins.serde_error(
            "docusign.scopes[0]".into(),
            "invalid type: integer `42`, expected a string",
        );
        assert!(!e.to_string().contains("42"), "{e}");
        let e = Origins::default().serde_error(
            "server.threads".into(),
            "invalid value: integer `-5`, expected u64",
        );
        assert_eq!(
            e.message,
            "invalid value: integer `-5`, expected a whole number, at least 0"
        );
    }
}
