//! What `check` warns about in a valid configuration (issue 13 item 11).
//! Warnings never stop the gateway and never quote a secret.

use super::hosts::HostMatch;
use super::{Config, SECRET_KEYS};

/// DocuSign's access tokens from the authorization code grant live 8 hours.
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 8 * 3600;

/// Fewest distinct characters a `session.secret` should have.
pub const MIN_DISTINCT_SECRET_CHARS: usize = 16;

/// What one client connection costs the gateway beyond the bytes of its
/// request head and its read buffer: pingora's session and buffers, the
/// connection's task, its socket. Measured with idle connections by
/// `cargo bench --bench head_memory` (`docs/src/performance.md`, "Memory
/// per connection"), rounded up.
pub const CONNECTION_COST_BYTES: u64 = 32 * 1024;

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
/// this permission mode, on a machine with this much memory (when known).
pub fn warnings(
    cfg: &Config,
    file_text: &str,
    file_mode: Option<u32>,
    machine_memory: Option<u64>,
) -> Vec<Warning> {
    let mut out = Vec::new();
    out.extend(connection_memory_warning(cfg, machine_memory));
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
    for api in cfg.docusign.apis.without_scopes(&cfg.docusign.scopes) {
        out.push(warning(
            "docusign.scopes",
            format!(
                "holds none of the {} API's scopes ({}): DocuSign refuses its calls",
                api.as_str(),
                api.scopes().join(", ")
            ),
        ));
    }
    for svc in &cfg.services {
        for api in cfg.docusign.apis.without_scopes(&svc.scopes) {
            out.push(warning(
                &format!("service.{}.scopes", svc.name),
                format!(
                    "hold none of the {} API's scopes ({}): DocuSign refuses the service's calls to it",
                    api.as_str(),
                    api.scopes().join(", ")
                ),
            ));
        }
    }
    if cfg.redis.is_none() {
        for hook in &cfg.webhooks {
            out.push(warning(
                &format!("webhook.{}", hook.name),
                "with session.store = \"memory\" its messages are kept in this process only: \
                 a restart loses those not delivered yet, and `webhooks dead`/`replay` cannot \
                 reach them; use session.store = \"redis\" to keep them",
            ));
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

/// The most memory client connections can make the gateway hold:
/// `max_connections x (max_header_bytes + client_read_buffer_bytes +`
/// [`CONNECTION_COST_BYTES`]`)`, every connection holding an unfinished head
/// at the bound.
pub fn connection_memory(cfg: &Config) -> u64 {
    let s = &cfg.server;
    let per_connection =
        s.max_header_bytes as u64 + s.client_read_buffer_bytes as u64 + CONNECTION_COST_BYTES;
    s.max_connections as u64 * per_connection
}

/// Warns when [`connection_memory`] exceeds a quarter of `machine_memory`.
pub fn connection_memory_warning(cfg: &Config, machine_memory: Option<u64>) -> Option<Warning> {
    let machine = machine_memory?;
    let need = connection_memory(cfg);
    if need <= machine / 4 {
        return None;
    }
    const MIB: u64 = 1024 * 1024;
    Some(warning(
        "server.max_header_bytes",
        format!(
            "server.max_connections ({}) x (max_header_bytes ({}) + client_read_buffer_bytes ({}) \
             + about {} bytes a connection) is {} MiB, more than a quarter of this machine's \
             memory ({} MiB): clients holding unfinished heads could exhaust it; lower \
             server.max_connections or server.max_header_bytes",
            cfg.server.max_connections,
            cfg.server.max_header_bytes,
            cfg.server.client_read_buffer_bytes,
            CONNECTION_COST_BYTES,
            need / MIB,
            machine / MIB,
        ),
    ))
}

/// The memory this process may use: the machine's (`MemTotal` of
/// `/proc/meminfo`), or its cgroup's limit when lower (cgroup v2's
/// `memory.max`, v1's `memory.limit_in_bytes`). `None` when none is readable.
pub fn machine_memory() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let total = read("/proc/meminfo").and_then(|t| parse_meminfo(&t));
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|t| parse_cgroup_limit(&t));
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// `MemTotal:  24609116 kB` -> bytes.
fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

/// A cgroup's memory limit in bytes; `max` (v2) or a huge v1 value: none.
fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    // cgroup v1 writes "no limit" as a page-rounded i64::MAX.
    (n < (1u64 << 60)).then_some(n)
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
    fn machine_memory_is_read_from_meminfo_and_the_cgroup() {
        assert_eq!(
            parse_meminfo("MemFree: 1 kB\nMemTotal:       24609116 kB\n"),
            Some(24609116 * 1024)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("536870912\n"), Some(536870912));
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert!(machine_memory().is_some(), "Linux has /proc/meminfo");
    }

    #[test]
    fn connection_memory_beyond_a_quarter_of_the_machine_warns() {
        let raw = crate::config::RawConfig::parse(
            "[docusign]\nclient_id = \"ik\"\nclient_secret = \"s\"\n\
             [session]\nsecret = \"q8Vx2LmN9pR4tW7yZ1bC3dF6gH0jK5sAe\"\n\
             [server]\nmax_connections = 1000\nmax_header_bytes = 65536\n",
            Vec::new(),
        )
        .unwrap();
        let cfg = Config::from_raw(raw).unwrap();
        let need = connection_memory(&cfg);
        assert_eq!(need, 1000 * (65536 + CONNECTION_COST_BYTES));
        assert!(
            connection_memory_warning(&cfg, None).is_none(),
            "unknown: quiet"
        );
        assert!(connection_memory_warning(&cfg, Some(need * 4)).is_none());
        let w = connection_memory_warning(&cfg, Some(need * 4 - 1)).unwrap();
        assert_eq!(w.key, "server.max_header_bytes");
        assert!(w.message.contains("server.max_connections (1000)"), "{w}");
    }

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
