//! A logged-in user's session, as data: who they are, their DocuSign
//! accounts, the current token pair and its generation, and times. It holds
//! no lock and no live state, so any store can keep it (serde). It is
//! immutable once built: a refresh makes a new `Session` with the next
//! generation ([`Session::with_tokens`]), which the store swaps in whole.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::docusign::api_host::{self, ApiHost, HostPolicy, HostRefused};
use crate::docusign::{TokenSet, UserInfo};
use crate::util::ids::{log_id, random_id, LogId};

pub use super::tokens::Tokens;

/// The user, as `/oauth/userinfo` described them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub sub: String,
    pub name: String,
    pub email: String,
}

/// One DocuSign account of the user, with its REST host checked once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    pub base_uri: String,
    pub is_default: bool,
    /// Where requests for this account go, or why none may go anywhere
    /// (one copy per host, shared by every session and request naming it).
    #[serde(deserialize_with = "api_host::deserialize_shared")]
    pub api_host: Result<Arc<ApiHost>, HostRefused>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user: User,
    pub accounts: Vec<Account>,
    /// Index into `accounts` of the default account.
    pub default_account: usize,
    pub created_at: u64,
    pub expires_at: u64,
    pub tokens: Tokens,
    /// [`Session::log_id`], computed at its first use (never stored).
    #[serde(skip)]
    log_name: OnceLock<LogId>,
}

impl Session {
    /// Builds a session from a completed login at `now` (Unix seconds).
    /// `ttl_secs` bounds its life (the caller keeps it within the refresh
    /// token's lifetime).
    pub fn new(
        info: UserInfo,
        tokens: TokenSet,
        policy: &HostPolicy,
        ttl_secs: u64,
        now: u64,
    ) -> Self {
        let accounts: Vec<Account> = info
            .accounts
            .into_iter()
            .map(|a| Account {
                api_host: policy.check(&a.base_uri).map(api_host::shared),
                account_id: a.account_id,
                account_name: a.account_name,
                base_uri: a.base_uri,
                is_default: a.is_default,
            })
            .collect();
        let default_account = accounts.iter().position(|a| a.is_default).unwrap_or(0);
        Session {
            id: random_id(),
            user: User {
                sub: info.sub,
                name: info.name,
                email: info.email,
            },
            accounts,
            default_account,
            created_at: now,
            expires_at: now.saturating_add(ttl_secs),
            tokens: Tokens::new(tokens, 0, now),
            log_name: OnceLock::new(),
        }
    }

    /// The same session with a new token pair, one generation on. A refresh
    /// answer without a refresh token keeps the current one.
    pub fn with_tokens(&self, set: TokenSet, now: u64) -> Session {
        Session {
            tokens: self.tokens.next(set, now),
            ..self.clone()
        }
    }

    /// The same session under another id (a service's fixed one).
    pub fn renamed(self, id: String) -> Session {
        Session {
            id,
            log_name: OnceLock::new(),
            ..self
        }
    }

    /// The short hash that names this session in logs, computed once.
    pub fn log_id(&self) -> LogId {
        *self.log_name.get_or_init(|| log_id(&self.id))
    }

    /// The account named by a request path (GUIDs compare case-insensitively).
    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.account_id.eq_ignore_ascii_case(account_id))
    }

    pub fn default_account(&self) -> Option<&Account> {
        self.accounts.get(self.default_account)
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// Sessions for tests, here and in other modules' tests.
pub mod test_support {
    use super::*;
    use crate::config::HostPattern;
    use crate::docusign::UserAccount;
    use crate::util::secret::Secret;

    /// A session of user `user-1` created at `now`, living `ttl` seconds, whose
    /// access token expires an hour after `now`. Account A1 (REST host
    /// allowed, 127.0.0.2) and A2 (default, host not allowed).
    pub fn session_at(now: u64, ttl: u64) -> Session {
        let info = UserInfo {
            sub: "user-1".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            accounts: vec![
                UserAccount {
                    account_id: "A1".into(),
                    account_name: "One".into(),
                    base_uri: "https://127.0.0.2".into(),
                    is_default: false,
                },
                UserAccount {
                    account_id: "A2".into(),
                    account_name: "Two".into(),
                    base_uri: "https://evil.example".into(),
                    is_default: true,
                },
            ],
        };
        let policy = HostPolicy {
            allowed: vec![
                HostPattern::parse("*.docusign.net").unwrap(),
                HostPattern::parse("127.0.0.2").unwrap(),
            ],
            allow_plain_http: false,
        };
        let tokens = TokenSet {
            access_token: Secret::new("at"),
            refresh_token: Some(Secret::new("rt")),
            expires_at: now + 3600,
        };
        Session::new(info, tokens, &policy, ttl, now)
    }

    /// [`session_at`] the system clock's now.
    pub fn session(ttl: u64) -> Session {
        session_at(crate::util::time::now_unix(), ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::session_at;
    use super::*;
    use crate::util::secret::Secret;

    #[test]
    fn builds_accounts_and_default() {
        let s = session_at(1000, 60);
        assert_eq!(s.id.len(), 43);
        assert_eq!(s.default_account().unwrap().account_id, "A2");
        assert!(s.account("a1").unwrap().api_host.is_ok());
        assert!(s.account("A2").unwrap().api_host.is_err());
        assert!(s.account("A3").is_none());
        assert!(!s.is_expired(1059));
        assert!(s.is_expired(1060));
    }

    #[test]
    fn new_tokens_make_a_new_generation_and_keep_the_refresh_token() {
        let s = session_at(1000, 60);
        let next = s.with_tokens(
            TokenSet {
                access_token: Secret::new("at2"),
                refresh_token: None,
                expires_at: 5000,
            },
            1010,
        );
        assert_eq!(next.tokens.generation, 1);
        assert_eq!(next.tokens.obtained_at, 1010);
        assert_eq!(next.tokens.expose_access_token(), "at2");
        assert_eq!(next.tokens.refresh_token().unwrap().expose(), "rt");
        assert_eq!(
            s.tokens.expose_access_token(),
            "at",
            "the old value is untouched"
        );
        assert_eq!(next.id, s.id);
    }

    #[test]
    fn the_log_id_follows_the_id() {
        let s = session_at(1000, 60);
        assert_eq!(s.log_id(), log_id(&s.id));
        let renamed = s.clone().renamed("service:backend".into());
        assert_eq!(renamed.log_id(), log_id("service:backend"));
        assert_ne!(renamed.log_id(), s.log_id());
    }

    #[test]
    fn the_bearer_value_follows_the_generation_and_is_never_stored() {
        let s = session_at(1000, 60);
        let bearer = s.tokens.bearer().unwrap();
        assert_eq!(bearer.to_str().unwrap(), "Bearer at");
        assert!(bearer.is_sensitive());
        let next = s.with_tokens(
            TokenSet {
                access_token: Secret::new("at2"),
                refresh_token: None,
                expires_at: 5000,
            },
            1010,
        );
        assert_eq!(
            next.tokens.bearer().unwrap().to_str().unwrap(),
            "Bearer at2"
        );
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("Bearer"), "{text}");
        let back: Session = serde_json::from_str(&text).unwrap();
        assert_eq!(back.tokens.bearer().unwrap().to_str().unwrap(), "Bearer at");
        // A token that cannot be a header value gives none (the request
        // fails instead of carrying a broken header).
        let bad = s.with_tokens(
            TokenSet {
                access_token: Secret::new("a\nb"),
                refresh_token: None,
                expires_at: 5000,
            },
            1010,
        );
        assert!(bad.tokens.bearer().is_none());
    }

    #[test]
    fn round_trips_through_serde_with_its_tokens() {
        let s = session_at(1000, 60);
        let text = serde_json::to_string(&s).unwrap();
        let back: Session = serde_json::from_str(&text).unwrap();
        assert_eq!(back.id, s.id);
        assert_eq!(back.accounts, s.accounts);
        assert_eq!(back.tokens.refresh_token().unwrap().expose(), "rt");
        // Debug never shows a token.
        assert!(!format!("{s:?}").contains("\"rt\""));
    }
}
