//! What `check` warns about in a valid configuration (issue 13 item 11).
//! Warnings never stop the gateway and never quote a secret.

use super::hosts::HostMatch;
use super::{Config, SECRET_KEYS};

/// DocuSign's access tokens from the authorization code grant live 8 hours.
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 8 * 3600;

/// Fewest distinct characters a `session.secret` should have.
pub const MIN_DISTINCT_SECRET_CHARS: usize = 16;

/// One warning: the key it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "warning: `{}`: {}", self.key, self.message)
    }
}

fn warning(key: &str, message: impl Into<String>) -> Warning {
    Warning {
        key: key.into(),
        message: message.into(),
    }
}

/// The warnings for `cfg`, read from a file with this text and, when known,
/// this permission mode.
pub fn warnings(cfg: &Config, file_text: &str, file_mode: Option<u32>) -> Vec<Warning> {
    let mut out = Vec::new();
    if file_mode.is_some_and(|m| m & 0o004 != 0) {
        for key in secrets_in_file(file_text) {
            out.push(warning(
                key,
                "written in a configuration file that every local user can read: \
                 `chmod o-r` the file, or set it from the environment instead",
            ));
        }
    }
    if cfg.session.secure_cookie && cfg.server.public_url.scheme() == "http" {
        out.push(warning(
            "session.secure_cookie",
            "true with an http:// server.public_url: browsers only send Secure cookies over \
             https, so logins would not stick; serve the gateway over https",
        ));
    }
    if let Some(why) = low_entropy(cfg.session.secret.expose()) {
        out.push(warning(
            "session.secret",
            format!("looks guessable ({why}): use random text, e.g. `openssl rand -base64 48`"),
        ));
    }
    for pattern in &cfg.docusign.allowed_api_hosts {
        if let HostMatch::Suffix(suffix) = &pattern.host {
            if is_public_suffix(suffix) {
                out.push(warning(
                    "docusign.allowed_api_hosts",
                    format!(
                        "`*.{suffix}` admits every host under the public suffix `{suffix}`, \
                         anyone can register one: name DocuSign's own domain (e.g. `*.docusign.net`)"
                    ),
                ));
            }
        }
    }
    let window = cfg.session.refresh_before_expiry.as_secs();
    if window >= ACCESS_TOKEN_LIFETIME_SECS {
        out.push(warning(
            "session.refresh_before_expiry_secs",
            format!(
                "{window} s is not below the access tokens' lifetime \
                 ({ACCESS_TOKEN_LIFETIME_SECS} s): every request would refresh its token"
            ),
        ));
    }
    out
}

/// The secret keys (`section.key`) that the file's text sets.
fn secrets_in_file(text: &str) -> Vec<&'static str> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    SECRET_KEYS
        .iter()
        .copied()
        .filter(|key| {
            let (section, name) = key.split_once('.').unwrap_or(("", key));
            table
                .get(section)
                .and_then(|s| s.get(name))
                .is_some_and(|v| v.as_str().is_none_or(|s| !s.is_empty()))
        })
        .collect()
}

/// Why a secret looks guessable: fewer than [`MIN_DISTINCT_SECRET_CHARS`]
/// distinct characters, or a pattern of at most half its length repeated
/// (`abcabcabc...`).
pub fn low_entropy(secret: &str) -> Option<&'static str> {
    let bytes = secret.as_bytes();
    let mut seen = [false; 256];
    for &b in bytes {
        seen[b as usize] = true;
    }
    if seen.iter().filter(|s| **s).count() < MIN_DISTINCT_SECRET_CHARS {
        return Some("fewer than 16 distinct characters");
    }
    let repeats = (1..=bytes.len() / 2).any(|p| (p..bytes.len()).all(|i| bytes[i] == bytes[i - p]));
    repeats.then_some("a repeated pattern")
}

/// `suffix` is itself a public suffix known to the Public Suffix List
/// (`com`, `co.uk`, `github.io`...).
pub fn is_public_suffix(suffix: &str) -> bool {
    let name = suffix.trim_end_matches('.').as_bytes();
    psl::suffix(name).is_some_and(|s| s.is_known() && s.as_bytes() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_secrets() {
        assert!(low_entropy("0123456789abcdef0123456789abcdef").is_some());
        assert!(low_entropy(&"a".repeat(40)).is_some());
        assert!(low_entropy("abcdefghijklmnopqrstuvwxabcdefghijklmnopqrstuvwx").is_some());
        assert!(low_entropy("test-secret-0123456789abcdef0123456789abcdef").is_none());
        assert!(low_entropy("q8Vx2LmN9pR4tW7yZ1bC3dF6gH0jK5sA").is_none());
    }

    #[test]
    fn public_suffixes() {
        for s in ["com", "co.uk", "net", "github.io"] {
            assert!(is_public_suffix(s), "{s}");
        }
        for s in [
            "docusign.net",
            "docusign.com",
            "example.co.uk",
            "internal-tld-x",
        ] {
            assert!(!is_public_suffix(s), "{s}");
        }
    }

    #[test]
    fn secrets_written_in_the_file() {
        let text = "[session]\nsecret = \"x\"\n[docusign]\nclient_id = \"ik\"\n";
        assert_eq!(secrets_in_file(text), vec!["session.secret"]);
        assert!(secrets_in_file("[docusign]\nclient_secret = \"\"\n").is_empty());
    }
}
