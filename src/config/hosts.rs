//! `docusign.allowed_api_hosts` entries, parsed once at start.

/// The only port a pattern without a port admits.
pub const DEFAULT_API_PORT: u16 = 443;

/// One entry of `docusign.allowed_api_hosts`: an exact host name or address,
/// or `*.suffix`, which matches any host name ending in `.suffix`; either
/// may end in `:port` (an IPv6 address is written `[addr]:port`). Without a
/// port the pattern admits port 443 only: no other port of an allowed host
/// ever receives a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    pub host: HostMatch,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    Suffix(String),
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Result<HostPattern, String> {
        let p = pattern.trim().to_ascii_lowercase();
        let (host, port) = split_port(&p)?;
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
                && !s.starts_with('.')
                && !s.ends_with('.')
        };
        if let Some(suffix) = host.strip_prefix("*.") {
            if valid_name(suffix) && suffix.contains('.') && !suffix.contains(':') {
                return Ok(HostPattern {
                    host: HostMatch::Suffix(suffix.to_string()),
                    port,
                });
            }
            return Err("expected \"*.\" followed by a domain with at least two labels".into());
        }
        if valid_name(host) {
            return Ok(HostPattern {
                host: HostMatch::Exact(host.to_string()),
                port,
            });
        }
        Err(
            "expected a host name, an IP address, or \"*.domain\", optionally with \":port\""
                .into(),
        )
    }

    /// True when a token may go to `host` (a name or an address without
    /// brackets) on `port`.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        match &self.host {
            HostMatch::Exact(h) => *h == host,
            HostMatch::Suffix(s) => host
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_port(p: &str) -> Result<(&str, u16), String> {
    let bad_port = || "expected a port from 1 to 65535 after ':'".to_string();
    let parse_port = |s: &str| match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port()),
        Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        Ok(_) => Err(bad_port()),
    };
    if let Some(rest) = p.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or("expected \"]\" after an IPv6 address")?;
        return match after {
            "" => Ok((addr, DEFAULT_API_PORT)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((addr, parse_port(port)?)),
                None => Err("expected \":port\" after \"]\"".into()),
            },
        };
    }
    match p.matches(':').count() {
        0 => Ok((p, DEFAULT_API_PORT)),
        1 => {
            let (host, port) = p.split_once(':').unwrap_or((p, ""));
            Ok((host, parse_port(port)?))
        }
        // A bare IPv6 address: no port can be told apart.
        _ => Ok((p, DEFAULT_API_PORT)),
    }
}
