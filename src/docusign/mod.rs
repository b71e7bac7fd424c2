//! DocuSign's account server as the gateway sees it: the OAuth client
//! (`client`, behind the [`AccountServer`] interface so that the request path
//! can be tested with a scripted one; it reads answers through `bounded`,
//! which caps their size) and the check of each account's REST host
//! (`api_host`).

pub mod api_host;
pub mod bounded;
mod client;

use async_trait::async_trait;
use url::Url;

pub use client::*;

use crate::util::secret::Secret;

/// What the gateway asks of DocuSign's account server.
#[async_trait]
pub trait AccountServer: Send + Sync + 'static {
    /// The consent URL, its fresh random `state` and the PKCE verifier.
    fn authorize_url(&self) -> (Url, String, Secret);

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    async fn exchange_code(&self, code: &str, verifier: &Secret) -> Result<TokenSet, OAuthError>;

    /// The refresh grant: a new access token and a new refresh token.
    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError>;

    /// `/oauth/userinfo`: the user and their accounts with their REST hosts.
    async fn userinfo(&self, access_token: &Secret) -> Result<UserInfo, OAuthError>;
}
