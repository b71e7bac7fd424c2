//! `[access]`: who may log in through the gateway and which of their
//! DocuSign accounts a session keeps (see `docs/src/access-policy.md`).
//! Checked at login and again, against the serving instance's policy,
//! before every forward.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::service::ServiceConfig;

/// `[access]` as written; every list empty = no restriction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAccess {
    pub(super) allowed_accounts: Vec<String>,
    pub(super) allowed_users: Vec<String>,
    pub(super) allowed_email_domains: Vec<String>,
    pub(super) allowed_organizations: Vec<String>,
}

/// Most entries of one list (a policy is read on every forward).
const MAX_ENTRIES: usize = 10_000;

/// The validated policy. Ids and domains are kept lower-case: DocuSign's
/// GUIDs and e-mail domains compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// Account ids a session may keep; empty: any.
    pub allowed_accounts: Vec<String>,
    /// User GUIDs (`sub`) that may log in.
    pub allowed_users: Vec<String>,
    /// E-mail domains that may log in: `example.com` exactly, or
    /// `*.example.com` for its subdomains (not the domain itself).
    pub allowed_email_domains: Vec<DomainPattern>,
    /// Organization ids (Admin and platform APIs) a call may name; empty: any.
    pub allowed_organizations: Vec<String>,
}

/// One entry of `allowed_email_domains`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    Exact(String),
    /// `*.suffix`: any subdomain of `suffix`.
    Subdomains(String),
}

impl DomainPattern {
    fn matches(&self, domain: &str) -> bool {
        match self {
            DomainPattern::Exact(d) => domain == d,
            DomainPattern::Subdomains(suffix) => domain
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

impl std::fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Subdomains(d) => write!(f, "*.{d}"),
        }
    }
}

/// Why a user may not log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Neither in `allowed_users` nor of an `allowed_email_domains` domain.
    User,
    /// None of the user's accounts is in `allowed_accounts`.
    NoAllowedAccount,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::User => "user_not_allowed",
            Refusal::NoAllowedAccount => "no_allowed_account",
        }
    }
}

/// The domain of an e-mail address, lower-case (`""` when it has none).
pub fn email_domain(email: &str) -> String {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

impl AccessConfig {
    /// Whether any list restricts anything.
    pub fn is_open(&self) -> bool {
        self.allowed_accounts.is_empty()
            && self.allowed_organizations.is_empty()
            && !self.restricts_users()
    }

    fn restricts_users(&self) -> bool {
        !self.allowed_users.is_empty() || !self.allowed_email_domains.is_empty()
    }

    /// Whether the user `sub` with e-mail `email` may log in (and keep
    /// their session).
    pub fn user_allowed(&self, sub: &str, email: &str) -> bool {
        if !self.restricts_users() {
            return true;
        }
        if self
            .allowed_users
            .iter()
            .any(|u| u.eq_ignore_ascii_case(sub))
        {
            return true;
        }
        let domain = email_domain(email);
        !domain.is_empty()
            && self
                .allowed_email_domains
                .iter()
                .any(|p| p.matches(&domain))
    }

    /// Whether a session may keep (and call) account `id`.
    pub fn account_allowed(&self, id: &str) -> bool {
        admits(&self.allowed_accounts, id)
    }

    /// Whether a call may name organization `id` (`/management/.../organizations/{id}`,
    /// `/v1/organizations/{id}`).
    pub fn organization_allowed(&self, id: &str) -> bool {
        admits(&self.allowed_organizations, id)
    }

    /// The policy as `check` prints it.
    pub fn describe(&self) -> String {
        let list = |v: Vec<String>| match v.is_empty() {
            true => "any".to_string(),
            false => v.join(", "),
        };
        let users = if self.restricts_users() {
            let domains = self.allowed_email_domains.iter().map(|d| d.to_string());
            format!(
                "users {}; e-mail domains {} (either admits)",
                list(self.allowed_users.clone()),
                list(domains.collect())
            )
        } else {
            "any user".to_string()
        };
        format!(
            "access policy: {users}; accounts {}; organizations {}",
            list(self.allowed_accounts.clone()),
            list(self.allowed_organizations.clone())
        )
    }
}

/// Whether `list` (empty: any) holds `id`, in any case.
fn admits(list: &[String], id: &str) -> bool {
    list.is_empty() || list.iter().any(|a| a.eq_ignore_ascii_case(id))
}

/// Account or organization ids of `key`, trimmed and lower-cased; one that
/// does not look like an id fails with `message`.
fn ids(key: &str, raw: Vec<String>, message: &str) -> Result<Vec<String>, ConfigError> {
    raw.into_iter()
        .map(|id| {
            let id = id.trim().to_ascii_lowercase();
            match valid_account_id(&id) {
                true => Ok(id),
                false => Err(ConfigError::new(key, message)),
            }
        })
        .collect()
}

pub(super) fn validate(raw: RawAccess) -> Result<AccessConfig, ConfigError> {
    let sized = |key: &str, n: usize| match n > MAX_ENTRIES {
        true => Err(ConfigError::new(
            key,
            format!("at most {MAX_ENTRIES} entries"),
        )),
        false => Ok(()),
    };
    sized("access.allowed_accounts", raw.allowed_accounts.len())?;
    sized("access.allowed_users", raw.allowed_users.len())?;
    sized(
        "access.allowed_email_domains",
        raw.allowed_email_domains.len(),
    )?;
    sized(
        "access.allowed_organizations",
        raw.allowed_organizations.len(),
    )?;
    let accounts = ids(
        "access.allowed_accounts",
        raw.allowed_accounts,
        "expected DocuSign account ids (1 to 64 letters, digits or '-')",
    )?;
    let organizations = ids(
        "access.allowed_organizations",
        raw.allowed_organizations,
        "expected DocuSign organization ids (GUIDs: letters, digits and '-')",
    )?;
    let mut users = Vec::new();
    for u in raw.allowed_users {
        let u = u.trim().to_ascii_lowercase();
        if !valid_account_id(&u) {
            return Err(ConfigError::new(
                "access.allowed_users",
                "expected DocuSign user GUIDs (letters, digits and '-')",
            ));
        }
        users.push(u);
    }
    let mut domains = Vec::new();
    for d in raw.allowed_email_domains {
        let d = d.trim().to_ascii_lowercase();
        let pattern = match d.strip_prefix("*.") {
            Some(suffix) => DomainPattern::Subdomains(suffix.to_string()),
            None => DomainPattern::Exact(d.clone()),
        };
        let name = match &pattern {
            DomainPattern::Exact(n) | DomainPattern::Subdomains(n) => n,
        };
        if !valid_domain(name) {
            return Err(ConfigError::new(
                "access.allowed_email_domains",
                "expected domains such as \"example.com\" or \"*.example.com\" (no '@', no other '*')",
            ));
        }
        domains.push(pattern);
    }
    Ok(AccessConfig {
        allowed_accounts: accounts,
        allowed_users: users,
        allowed_email_domains: domains,
        allowed_organizations: organizations,
    })
}

/// A `[[service]]` acts as one user, known by GUID before it ever runs (its
/// e-mail is not): when `allowed_users` is the only user restriction, that
/// GUID must be in it. With `allowed_email_domains` set, the service's user
/// may still pass by e-mail, which only its userinfo tells: that (and its
/// accounts) is checked when the service's DocuSign token is minted.
pub(super) fn check_services(
    access: &AccessConfig,
    services: &[ServiceConfig],
) -> Result<(), ConfigError> {
    if access.allowed_users.is_empty() || !access.allowed_email_domains.is_empty() {
        return Ok(());
    }
    for s in services {
        if !access
            .allowed_users
            .iter()
            .any(|u| u.eq_ignore_ascii_case(&s.user_id))
        {
            return Err(ConfigError::new(
                format!("service.{}.user_id", s.name),
                format!(
                    "service '{}' acts as a user that access.allowed_users does not admit \
                     (a service's user is admitted by its GUID: add it to allowed_users)",
                    s.name
                ),
            ));
        }
    }
    Ok(())
}

fn valid_account_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn valid_domain(d: &str) -> bool {
    (1..=253).contains(&d.len())
        && d.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(accounts: &[&str], users: &[&str], domains: &[&str]) -> AccessConfig {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        validate(RawAccess {
            allowed_accounts: v(accounts),
            allowed_users: v(users),
            allowed_email_domains: v(domains),
            allowed_organizations: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn organizations_compare_case_insensitively() {
        let p = validate(RawAccess {
            allowed_organizations: vec![" ORG-1 ".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(p.organization_allowed("org-1"));
        assert!(!p.organization_allowed("org-2"));
        assert!(policy(&[], &[], &[]).organization_allowed("any"));
        assert!(
            p.describe().contains("organizations org-1"),
            "{}",
            p.describe()
        );
        let e = validate(RawAccess {
            allowed_organizations: vec!["a b".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "access.allowed_organizations");
    }

    #[test]
    fn empty_lists_admit_anyone() {
        let p = policy(&[], &[], &[]);
        assert!(p.is_open());
        assert!(p.user_allowed("u", "x@anywhere.org"));
        assert!(p.account_allowed("any"));
    }

    #[test]
    fn a_user_is_admitted_by_guid_or_by_exact_domain() {
        let p = policy(&[], &["AAAA-1"], &["Example.com", "*.corp.example"]);
        assert!(p.user_allowed("aaaa-1", "someone@elsewhere.org"));
        assert!(p.user_allowed("b", "b@EXAMPLE.COM"));
        assert!(!p.user_allowed("b", "b@mail.example.com"), "no subdomain");
        assert!(!p.user_allowed("b", "b@notexample.com"));
        assert!(p.user_allowed("b", "b@eu.corp.example"));
        assert!(
            !p.user_allowed("b", "b@corp.example"),
            "*. is subdomains only"
        );
        assert!(!p.user_allowed("b", "b@evilcorp.example"));
        assert!(!p.user_allowed("b", "no-domain"));
        assert!(!p.user_allowed("b", "b@example.com@evil.org"));
    }

    #[test]
    fn accounts_compare_case_insensitively() {
        let p = policy(&["ABC-1"], &[], &[]);
        assert!(p.account_allowed("abc-1"));
        assert!(!p.account_allowed("abc-2"));
        assert!(!p.is_open());
    }

    #[test]
    fn bad_entries_name_the_key() {
        for (raw, key) in [
            (
                RawAccess {
                    allowed_accounts: vec!["a/b".into()],
                    ..Default::default()
                },
                "access.allowed_accounts",
            ),
            (
                RawAccess {
                    allowed_users: vec!["".into()],
                    ..Default::default()
                },
                "access.allowed_users",
            ),
            (
                RawAccess {
                    allowed_email_domains: vec!["@example.com".into()],
                    ..Default::default()
                },
                "access.allowed_email_domains",
            ),
            (
                RawAccess {
                    allowed_email_domains: vec!["ex*.com".into()],
                    ..Default::default()
                },
                "access.allowed_email_domains",
            ),
        ] {
            assert_eq!(validate(raw).unwrap_err().key, key);
        }
    }

    #[test]
    fn describe_names_every_list() {
        let p = policy(&["a1"], &[], &["example.com"]);
        let text = p.describe();
        assert!(text.contains("accounts a1"), "{text}");
        assert!(text.contains("e-mail domains example.com"), "{text}");
        assert_eq!(
            policy(&[], &[], &[]).describe(),
            "access policy: any user; accounts any; organizations any"
        );
    }
}
