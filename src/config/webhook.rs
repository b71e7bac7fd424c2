//! `[[webhook]]`: DocuSign Connect listeners. DocuSign posts to
//! `<public_url>/webhooks/<name>`; the gateway checks Connect's HMAC
//! signature with the keys of the environment variable `hmac_keys_env`,
//! stores the message and delivers it to `forward_to`. Validated here,
//! once, at start. Errors name the key (`webhook.<name>.hmac_keys_env`) and
//! never quote a key.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::ConfigError;
use super::range::{self, Unit};
use crate::util::secret::Secret;

/// Connect messages can carry documents: 25 MiB by default.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 25 * 1024 * 1024;
/// Largest `max_body_bytes` accepted.
pub const MAX_MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;
/// Keep trying the app for one day by default.
pub const DEFAULT_RETRY_FOR_SECS: u64 = 86_400;
/// Longest `retry_for_secs`: as long as Redis keeps a dead message.
pub const MAX_RETRY_FOR_SECS: u64 = 7 * 86_400;
/// Messages stored and not yet delivered, per webhook, by default.
pub const DEFAULT_MAX_PENDING: u64 = 10_000;
/// Bytes of bodies the memory store keeps per webhook, by default.
pub const DEFAULT_MAX_PENDING_BYTES: u64 = 256 * 1024 * 1024;
/// Connect sends at most 100 signatures (one per active key).
pub const MAX_KEYS: usize = 100;

/// One `[[webhook]]` table as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) name: String,
    pub(super) forward_to: String,
    pub(super) hmac_keys_env: String,
    #[serde(default = "default_max_body")]
    pub(super) max_body_bytes: u64,
    #[serde(default = "default_retry_for")]
    pub(super) retry_for_secs: u64,
    #[serde(default = "default_max_pending")]
    pub(super) max_pending: u64,
    #[serde(default = "default_max_pending_bytes")]
    pub(super) max_pending_bytes: u64,
    /// The value of `hmac_keys_env`, looked up when the file is parsed
    /// (never serialized: `check` prints no key).
    #[serde(skip)]
    pub(super) keys: Option<String>,
}

fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}
fn default_retry_for() -> u64 {
    DEFAULT_RETRY_FOR_SECS
}
fn default_max_pending() -> u64 {
    DEFAULT_MAX_PENDING
}
fn default_max_pending_bytes() -> u64 {
    DEFAULT_MAX_PENDING_BYTES
}

/// A validated webhook.
#[derive(Clone)]
pub struct WebhookConfig {
    /// `[a-z0-9-]`, unique: the path is `/webhooks/<name>`.
    pub name: String,
    /// The app's endpoint (http or https, no credentials in it).
    pub forward_to: Url,
    /// The variable the keys came from (for messages).
    pub hmac_keys_env: String,
    /// Connect's HMAC keys, in the order of the variable.
    pub hmac_keys: Vec<Secret>,
    pub max_body_bytes: usize,
    /// How long a message is retried before it is dead.
    pub retry_for: Duration,
    /// Messages stored and not delivered yet, at most (both stores).
    pub max_pending: usize,
    /// Their bytes, at most (the memory store).
    pub max_pending_bytes: usize,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("forward_to", &self.forward_to.as_str())
            .field("hmac_keys_env", &self.hmac_keys_env)
            .field("hmac_keys", &self.hmac_keys.len())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("retry_for", &self.retry_for)
            .field("max_pending", &self.max_pending)
            .field("max_pending_bytes", &self.max_pending_bytes)
            .finish()
    }
}

/// A webhook name: 1 to 64 of `a-z`, `0-9`, `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The keys of a comma-separated list (Connect's HMAC keys as a variable
/// holds them): trimmed, empty ones skipped.
pub fn split_keys(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|k| !k.is_empty())
}

/// Looks up each webhook's key variable in `env` (the process environment
/// at start), before validation.
pub(super) fn read_keys(raw: &mut [RawWebhook], env: &[(String, String)]) {
    for hook in raw {
        hook.keys = env
            .iter()
            .find(|(k, _)| *k == hook.hmac_keys_env)
            .map(|(_, v)| v.clone());
    }
}

/// Validates every `[[webhook]]`.
pub(super) fn validate(raw: Vec<RawWebhook>) -> Result<Vec<WebhookConfig>, ConfigError> {
    let mut out: Vec<WebhookConfig> = Vec::with_capacity(raw.len());
    for (i, w) in raw.into_iter().enumerate() {
        if !valid_name(&w.name) {
            return Err(ConfigError::new(
                format!("webhook[{i}].name"),
                "expected 1 to 64 characters of a-z, 0-9 and '-'",
            ));
        }
        let key = |k: &str| format!("webhook.{}.{k}", w.name);
        if out.iter().any(|o| o.name == w.name) {
            return Err(ConfigError::new(
                key("name"),
                "a webhook of this name is already configured: names must be unique",
            ));
        }
        let forward_to = forward_to(&key("forward_to"), &w.forward_to)?;
        let hmac_keys = hmac_keys(&key("hmac_keys_env"), &w)?;
        let max_body_bytes = range::check(
            &key("max_body_bytes"),
            w.max_body_bytes,
            1..=MAX_MAX_BODY_BYTES,
            Unit::Count,
        )?;
        let retry_for = range::secs(
            &key("retry_for_secs"),
            w.retry_for_secs,
            1..=MAX_RETRY_FOR_SECS,
        )?;
        let max_pending = range::check(
            &key("max_pending"),
            w.max_pending,
            1..=1_000_000,
            Unit::Count,
        )?;
        let max_pending_bytes = range::check(
            &key("max_pending_bytes"),
            w.max_pending_bytes,
            max_body_bytes..=u64::from(u32::MAX) * 16,
            Unit::Count,
        )?;
        out.push(WebhookConfig {
            name: w.name.clone(),
            forward_to,
            hmac_keys_env: w.hmac_keys_env.clone(),
            hmac_keys,
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            retry_for,
            max_pending: usize::try_from(max_pending).unwrap_or(usize::MAX),
            max_pending_bytes: usize::try_from(max_pending_bytes).unwrap_or(usize::MAX),
        });
    }
    Ok(out)
}

/// The app's endpoint: an http(s) URL with a host and no credentials.
fn forward_to(key: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|_| {
        ConfigError::new(
            key,
            "expected the app's URL, such as http://127.0.0.1:3000/docusign/events",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            key,
            "expected an http:// or https:// URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            key,
            "the URL may not hold a user name or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::new(key, "the URL may not have a #fragment"));
    }
    Ok(url)
}

/// The comma-separated keys of the variable `hmac_keys_env`.
fn hmac_keys(key: &str, w: &RawWebhook) -> Result<Vec<Secret>, ConfigError> {
    let var = &w.hmac_keys_env;
    let named = !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !named {
        return Err(ConfigError::new(
            key,
            "expected the name of an environment variable (letters, digits, '_')",
        ));
    }
    let Some(value) = &w.keys else {
        return Err(ConfigError::new(
            key,
            format!("the environment variable {var} is not set"),
        ));
    };
    let keys: Vec<Secret> = split_keys(value).map(Secret::new).collect();
    if keys.is_empty() {
        return Err(ConfigError::new(
            key,
            format!("the environment variable {var} holds no key: expected Connect's HMAC keys, comma-separated"),
        ));
    }
    if keys.len() > MAX_KEYS {
        return Err(ConfigError::new(
            key,
            format!("the environment variable {var} holds more than {MAX_KEYS} keys"),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, forward_to: &str, keys: Option<&str>) -> RawWebhook {
        RawWebhook {
            name: name.into(),
            forward_to: forward_to.into(),
            hmac_keys_env: "CONNECT_KEYS".into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            retry_for_secs: DEFAULT_RETRY_FOR_SECS,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            keys: keys.map(str::to_owned),
        }
    }

    const APP: &str = "http://127.0.0.1:3000/events";

    #[test]
    fn keys_are_split_trimmed_and_never_shown() {
        let hooks = validate(vec![raw("connect", APP, Some(" k1-secret , k2-secret,"))]).unwrap();
        let h = &hooks[0];
        let keys: Vec<&str> = h.hmac_keys.iter().map(Secret::expose).collect();
        assert_eq!(keys, ["k1-secret", "k2-secret"]);
        assert_eq!(h.max_body_bytes, 26_214_400);
        assert_eq!(h.retry_for, Duration::from_secs(86_400));
        let debug = format!("{hooks:?}");
        assert!(!debug.contains("k1-secret"), "{debug}");
    }

    #[test]
    fn errors_name_the_key_and_hide_the_keys() {
        let key = |r: Vec<RawWebhook>| validate(r).expect_err("refused");
        let e = key(vec![raw("connect", APP, None)]);
        assert_eq!(e.key, "webhook.connect.hmac_keys_env");
        assert!(e.message.contains("CONNECT_KEYS is not set"), "{e}");
        let e = key(vec![raw("connect", APP, Some(" , ,"))]);
        assert_eq!(e.key, "webhook.connect.hmac_keys_env");
        for bad in ["ftp://x/y", "not a url", "http://user:pw@h/x", "/relative"] {
            let e = key(vec![raw("connect", bad, Some("k"))]);
            assert_eq!(e.key, "webhook.connect.forward_to", "{bad}");
            assert!(!e.message.contains("pw"), "{e}");
        }
        let e = key(vec![raw("c", APP, Some("k")), raw("c", APP, Some("k"))]);
        assert_eq!(e.key, "webhook.c.name");
        for bad in ["", "Connect", "a_b", "a/b"] {
            assert_eq!(key(vec![raw(bad, APP, Some("k"))]).key, "webhook[0].name");
        }
        let mut big = raw("c", APP, Some("k"));
        big.max_body_bytes = 0;
        assert_eq!(key(vec![big]).key, "webhook.c.max_body_bytes");
        let mut long = raw("c", APP, Some("k"));
        long.retry_for_secs = 0;
        assert_eq!(key(vec![long]).key, "webhook.c.retry_for_secs");
        let many = vec!["k"; MAX_KEYS + 1].join(",");
        let e = key(vec![raw("c", APP, Some(&many))]);
        assert_eq!(e.key, "webhook.c.hmac_keys_env");
    }
}
