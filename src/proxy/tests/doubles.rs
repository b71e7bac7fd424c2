//! Test doubles of the decision table: a scripted account server and a
//! session store that never answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::docusign::{AccountServer, OAuthError, TokenSet, UserInfo};
use crate::session::{Added, Session, SessionStore, StoreError, TokenRecord, TokenSwap};
use crate::util::secret::Secret;
use crate::util::time::now_unix;

/// An account server whose refresh grant answers as scripted.
pub(super) struct Scripted(pub(super) Mutex<Result<(), OAuthError>>);

#[async_trait]
impl AccountServer for Scripted {
    fn authorize_url(&self) -> (Url, String, Secret) {
        let url = Url::parse("http://127.0.0.1:9/oauth/auth?state=s").unwrap();
        (url, "s".into(), Secret::new("verifier"))
    }

    async fn exchange_code(&self, _: &str, _: &Secret) -> Result<TokenSet, OAuthError> {
        Err(OAuthError::Unavailable("not scripted".into()))
    }

    async fn userinfo(&self, _: &Secret) -> Result<UserInfo, OAuthError> {
        Err(OAuthError::Unavailable("not scripted".into()))
    }

    async fn refresh(&self, _: &Secret) -> Result<TokenSet, OAuthError> {
        self.0.lock().unwrap().clone().map(|()| TokenSet {
            access_token: Secret::new("at-new"),
            refresh_token: Some(Secret::new("rt-new")),
            expires_at: now_unix() + 3600,
        })
    }
}

/// A store that never answers.
pub(super) struct Unreachable;

#[async_trait]
impl SessionStore for Unreachable {
    fn name(&self) -> &'static str {
        "unreachable"
    }
    async fn insert(&self, _: Session) -> Result<Arc<Session>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn get(&self, _: &str) -> Result<Option<Arc<Session>>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn remove(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn swap_tokens(&self, _: &str, _: u64, _: TokenSet) -> Result<TokenSwap, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn count(&self) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn add_token(&self, _: &str, _: TokenRecord, _: usize) -> Result<Added, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn tokens(&self, _: &str) -> Result<Arc<Vec<TokenRecord>>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn revoke_token(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn claim_state(&self, _: &str, _: Duration) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}
