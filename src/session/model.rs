//! A logged-in user's session: who they are, their DocuSign accounts and the
//! current token pair.
//!
//! The token pair sits behind its own lock as one `Arc`, so it is replaced as
//! a whole: a reader sees the old pair or the new pair, never a mix.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::docusign::api_host::{ApiHost, HostPolicy};
use crate::docusign::{TokenSet, UserInfo};
use crate::util::ids::random_id;
use crate::util::time::now_unix;

/// The user, as `/oauth/userinfo` described them.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub sub: String,
    pub name: String,
    pub email: String,
}

/// One DocuSign account of the user, with its REST host checked once.
#[derive(Debug, Clone)]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    pub base_uri: String,
    pub is_default: bool,
    /// Where requests for this account go, or why none may go anywhere.
    pub api_host: Result<ApiHost, String>,
}

/// The current DocuSign tokens of a session.
#[derive(Debug)]
pub struct Tokens {
    pub set: TokenSet,
    /// Increases with every refresh; tells a request whether the pair it used
    /// has been replaced meanwhile.
    pub generation: u64,
}

#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub user: User,
    pub accounts: Vec<Account>,
    /// Index into `accounts` of the default account.
    pub default_account: usize,
    pub created_at: u64,
    pub expires_at: u64,
    tokens: RwLock<Arc<Tokens>>,
    /// Held while the session's tokens are being refreshed (single flight).
    pub refresh_lock: Arc<tokio::sync::Mutex<()>>,
    /// Refreshes that failed in a row for a transient reason.
    pub refresh_failures: AtomicU32,
    /// No refresh is tried before this time (unix milliseconds): back-off.
    pub refresh_not_before_ms: AtomicU64,
    /// DocuSign refused the refresh token: the session is over.
    dead: AtomicBool,
}

impl Session {
    /// Builds a session from a completed login.
    /// `ttl_secs` bounds its life (the caller keeps it within the refresh
    /// token's lifetime).
    pub fn new(info: UserInfo, tokens: TokenSet, policy: &HostPolicy, ttl_secs: u64) -> Self {
        let now = now_unix();
        let accounts: Vec<Account> = info
            .accounts
            .into_iter()
            .map(|a| Account {
                api_host: policy.check(&a.base_uri),
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
            tokens: RwLock::new(Arc::new(Tokens {
                set: tokens,
                generation: 0,
            })),
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
            refresh_failures: AtomicU32::new(0),
            refresh_not_before_ms: AtomicU64::new(0),
            dead: AtomicBool::new(false),
        }
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    pub fn mark_dead(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// The current token pair.
    pub fn tokens(&self) -> Arc<Tokens> {
        match self.tokens.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the token pair as a whole; returns the new generation.
    pub fn replace_tokens(&self, set: TokenSet) -> u64 {
        let mut guard = match self.tokens.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let generation = guard.generation + 1;
        *guard = Arc::new(Tokens { set, generation });
        generation
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
        now >= self.expires_at || self.is_dead()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::config::HostPattern;
    use crate::docusign::UserAccount;
    use crate::util::secret::Secret;

    pub fn session(ttl: u64) -> Session {
        let info = UserInfo {
            sub: "user-1".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            accounts: vec![
                UserAccount {
                    account_id: "A1".into(),
                    account_name: "One".into(),
                    base_uri: "https://na2.docusign.net".into(),
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
            allowed: vec![HostPattern::parse("*.docusign.net").unwrap()],
            allow_plain_http: false,
        };
        let tokens = TokenSet {
            access_token: Secret::new("at"),
            refresh_token: Some(Secret::new("rt")),
            expires_at: now_unix() + 3600,
        };
        Session::new(info, tokens, &policy, ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::session;
    use super::*;
    use crate::util::secret::Secret;

    #[test]
    fn builds_accounts_and_default() {
        let s = session(60);
        assert_eq!(s.id.len(), 43);
        assert_eq!(s.default_account().unwrap().account_id, "A2");
        assert!(s.account("a1").unwrap().api_host.is_ok());
        assert!(s.account("A2").unwrap().api_host.is_err());
        assert!(s.account("A3").is_none());
        assert!(!s.is_expired(now_unix()));
        assert!(s.is_expired(now_unix() + 61));
    }

    #[test]
    fn token_replacement_is_whole() {
        let s = session(60);
        let before = s.tokens();
        let g = s.replace_tokens(TokenSet {
            access_token: Secret::new("at2"),
            refresh_token: Some(Secret::new("rt2")),
            expires_at: 1,
        });
        assert_eq!(g, 1);
        let after = s.tokens();
        assert_eq!(before.set.access_token.expose(), "at");
        assert_eq!(after.set.access_token.expose(), "at2");
        assert_eq!(after.set.refresh_token.as_ref().unwrap().expose(), "rt2");
    }
}
