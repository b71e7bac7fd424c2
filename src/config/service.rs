//! `[[service]]`: back-end services that call DocuSign as one DocuSign user
//! through the JWT grant. Each names the user to impersonate and the
//! integration key's RSA private key (a file or an environment variable),
//! loaded and checked here, once, at start. Errors name the key
//! (`service.<name>.private_key_file`) and never quote the key material.

use std::fmt;

use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// One `[[service]]` table as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) name: String,
    pub(super) user_id: String,
    #[serde(default)]
    pub(super) private_key_file: Option<String>,
    #[serde(default)]
    pub(super) private_key_env: Option<String>,
    #[serde(default = "default_scopes")]
    pub(super) scopes: Vec<String>,
    #[serde(default)]
    pub(super) not_before: u64,
}

fn default_scopes() -> Vec<String> {
    vec!["signature".into(), "impersonation".into()]
}

/// A validated service, with its private key loaded.
#[derive(Clone)]
pub struct ServiceConfig {
    pub name: String,
    /// The DocuSign user (GUID) the service acts as.
    pub user_id: String,
    pub scopes: Vec<String>,
    /// Gateway tokens for this service issued before this (Unix seconds) are refused.
    pub not_before: u64,
    /// The integration key's RSA private key, for RS256 assertions.
    pub key: EncodingKey,
}

impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("scopes", &self.scopes)
            .field("not_before", &self.not_before)
            .finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_guid(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Validates every `[[service]]`, loading its key.
pub(super) fn validate(raw: Vec<RawService>) -> Result<Vec<ServiceConfig>, ConfigError> {
    let mut out: Vec<ServiceConfig> = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        if !valid_name(&s.name) {
            return Err(ConfigError::new(
                format!("service[{i}].name"),
                "expected 1 to 64 characters of a-z, 0-9 and '-'",
            ));
        }
        if out.iter().any(|o| o.name == s.name) {
            return Err(ConfigError::new(
                format!("service.{}.name", s.name),
                "a service of this name is already configured: names must be unique",
            ));
        }
        if !valid_guid(&s.user_id) {
            return Err(ConfigError::new(
                format!("service.{}.user_id", s.name),
                "expected the GUID of a DocuSign user (8-4-4-4-12 hexadecimal digits)",
            ));
        }
        if s.scopes.iter().any(|x| x.is_empty() || x.contains(' ')) {
            return Err(ConfigError::new(
                format!("service.{}.scopes", s.name),
                "expected scope names without spaces",
            ));
        }
        let key = load_key(&s)?;
        out.push(ServiceConfig {
            name: s.name,
            user_id: s.user_id,
            scopes: s.scopes,
            not_before: s.not_before,
            key,
        });
    }
    Ok(out)
}

/// The service's RSA private key; the error names the key, never its value.
fn load_key(s: &RawService) -> Result<EncodingKey, ConfigError> {
    let (key_name, pem) = match (&s.private_key_file, &s.private_key_env) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ConfigError::new(
                format!("service.{}.private_key_file", s.name),
                "set exactly one of private_key_file and private_key_env",
            ))
        }
        (Some(path), None) => {
            let key_name = format!("service.{}.private_key_file", s.name);
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError::new(&key_name, format!("cannot read the key file {path}: {e}"))
            })?;
            (key_name, pem)
        }
        (None, Some(var)) => {
            let key_name = format!("service.{}.private_key_env", s.name);
            let pem = std::env::var(var).map_err(|_| {
                ConfigError::new(
                    &key_name,
                    format!("the environment variable {var} is not set"),
                )
            })?;
            (key_name, pem.into_bytes())
        }
    };
    parse_rsa_pem(&pem).map_err(|why| ConfigError::new(key_name, why))
}

/// An RSA private key in PEM (PKCS#1 or PKCS#8), checked to be RSA.
pub fn parse_rsa_pem(pem: &[u8]) -> Result<EncodingKey, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the key is not PEM text".to_string())?;
    let rsa_label = text.contains("-----BEGIN RSA PRIVATE KEY-----")
        || text.contains("-----BEGIN PRIVATE KEY-----");
    if !rsa_label {
        return Err(
            "expected an RSA private key in PEM (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)"
                .into(),
        );
    }
    let not_rsa = || "the key is not an RSA private key in PEM (PKCS#1 or PKCS#8)".to_string();
    let key = EncodingKey::from_rsa_pem(pem).map_err(|_| not_rsa())?;
    // The DER is only parsed when signing: sign once to know it is usable.
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &serde_json::json!({}), &key).map_err(|_| not_rsa())?;
    Ok(key)
}
