//! `docusign.allowed_api_hosts` entries, parsed once at start.

/// One entry of `docusign.allowed_api_hosts`: an exact host name or address,
/// or `*.suffix`, which matches any host name ending in `.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Suffix(String),
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Result<HostPattern, String> {
        let p = pattern.trim().to_ascii_lowercase();
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
                && !s.starts_with('.')
                && !s.ends_with('.')
        };
        if let Some(suffix) = p.strip_prefix("*.") {
            if valid_name(suffix) && suffix.contains('.') {
                return Ok(HostPattern::Suffix(suffix.to_string()));
            }
            return Err("expected \"*.\" followed by a domain with at least two labels".into());
        }
        if valid_name(&p) {
            return Ok(HostPattern::Exact(p));
        }
        Err("expected a host name, an IP address, or \"*.domain\"".into())
    }

    pub fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Suffix(s) => host
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}
