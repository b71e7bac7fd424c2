//! The client for DocuSign's account server: the consent URL (with state and
//! PKCE), the code exchange, the refresh grant and `/oauth/userinfo`.
//!
//! Built on the `oauth2` crate (HTTP Basic client authentication, PKCE S256)
//! and `reqwest`. Errors never carry a token or a response body, only what can
//! be logged and shown.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use async_trait::async_trait;

use super::AccountServer;
use crate::config::Config;
use crate::docusign::bounded::{BoundedHttp, FetchError};
use crate::util::secret::Secret;
use crate::util::time::now_unix;

/// Assumed lifetime of an access token when DocuSign does not say.
const DEFAULT_EXPIRES_IN: u64 = 3600;

type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// An access token, its refresh token and when the access token expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    #[serde(with = "crate::util::secret::stored")]
    pub access_token: Secret,
    #[serde(with = "crate::util::secret::stored::option")]
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What `/oauth/userinfo` says about the user.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub accounts: Vec<UserAccount>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserAccount {
    pub account_id: String,
    #[serde(default)]
    pub account_name: String,
    pub base_uri: String,
    #[serde(default, deserialize_with = "bool_or_string")]
    pub is_default: bool,
}

/// DocuSign sends `is_default` as a boolean; some clients see `"true"`.
fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrString {
        Bool(bool),
        Text(String),
    }
    Ok(match BoolOrString::deserialize(d)? {
        BoolOrString::Bool(b) => b,
        BoolOrString::Text(s) => s.eq_ignore_ascii_case("true"),
    })
}

/// Why a call to the account server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is expired, used or revoked: log in again.
    #[error("DocuSign refused the grant (invalid_grant{})", describe(.0))]
    InvalidGrant(Option<String>),
    /// Any other OAuth error answer, e.g. `invalid_client`, `consent_required`.
    #[error("DocuSign answered {error}{}", describe(.description))]
    Rejected {
        error: String,
        description: Option<String>,
    },
    /// Timeout, connection failure, 5xx or an unreadable answer: try later.
    #[error("DocuSign could not be reached or gave an unreadable answer: {0}")]
    Unavailable(String),
}

fn describe(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// Why the client could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("docusign.auth_server does not give valid OAuth endpoints: {0}")]
    Endpoint(String),
    #[error("the HTTP client for DocuSign could not be built: {0}")]
    Http(String),
}

pub struct DocuSignClient {
    oauth: OAuthClient,
    /// Every answer is read up to `bounded::MAX_ANSWER_BYTES`.
    http: BoundedHttp,
    userinfo_url: Url,
    scopes: Vec<String>,
}

impl DocuSignClient {
    pub fn new(cfg: &Config) -> Result<Self, ClientError> {
        let base = cfg.docusign.auth_server.as_str().trim_end_matches('/');
        let endpoint = |e: url::ParseError| ClientError::Endpoint(e.to_string());
        let auth_url = AuthUrl::new(format!("{base}/oauth/auth")).map_err(endpoint)?;
        let token_url = TokenUrl::new(format!("{base}/oauth/token")).map_err(endpoint)?;
        let userinfo_url = Url::parse(&format!("{base}/oauth/userinfo")).map_err(endpoint)?;
        let redirect = RedirectUrl::new(cfg.redirect_uri().to_string()).map_err(endpoint)?;
        let oauth = BasicClient::new(ClientId::new(cfg.docusign.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                cfg.docusign.client_secret.expose().to_string(),
            ))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect);
        let http = reqwest::Client::builder()
            // Never follow redirects from the token endpoint (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.docusign.request_timeout)
            .connect_timeout(cfg.docusign.request_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("docusign-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(DocuSignClient {
            oauth,
            http: BoundedHttp::new(http),
            userinfo_url,
            scopes: cfg.docusign.scopes.clone(),
        })
    }
}

#[async_trait]
impl AccountServer for DocuSignClient {
    /// The consent URL, its fresh random `state` and the PKCE verifier.
    fn authorize_url(&self) -> (Url, String, Secret) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        (
            url,
            state.secret().clone(),
            Secret::new(verifier.secret().clone()),
        )
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    async fn exchange_code(&self, code: &str, verifier: &Secret) -> Result<TokenSet, OAuthError> {
        let answer = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_string()))
            .request_async(&self.http)
            .await;
        token_set(answer)
    }

    /// The refresh grant: a new access token and a new refresh token.
    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError> {
        let answer = self
            .oauth
            .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_string()))
            .request_async(&self.http)
            .await;
        token_set(answer)
    }

    /// `/oauth/userinfo`: the user and their accounts with their REST hosts.
    async fn userinfo(&self, access_token: &Secret) -> Result<UserInfo, OAuthError> {
        let response = self
            .http
            .client
            .get(self.userinfo_url.clone())
            .bearer_auth(access_token.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(request_error(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(if status.is_server_error() {
                OAuthError::Unavailable(format!("userinfo answered {status}"))
            } else {
                OAuthError::Rejected {
                    error: format!("userinfo status {}", status.as_u16()),
                    description: None,
                }
            });
        }
        let body = self.http.body(response).await.map_err(|e| match e {
            FetchError::Request(e) => OAuthError::Unavailable(request_error(&e)),
            other => OAuthError::Unavailable(format!("userinfo: {other}")),
        })?;
        serde_json::from_slice::<UserInfo>(&body).map_err(|e| {
            OAuthError::Unavailable(format!("userinfo is not the expected JSON ({e})"))
        })
    }
}

fn token_set<RE: std::error::Error + 'static>(
    answer: Result<
        oauth2::basic::BasicTokenResponse,
        RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
    >,
) -> Result<TokenSet, OAuthError> {
    match answer {
        Ok(t) => {
            let expires_in = t
                .expires_in()
                .map(|d| d.as_secs())
                .unwrap_or(DEFAULT_EXPIRES_IN);
            Ok(TokenSet {
                access_token: Secret::new(t.access_token().secret().clone()),
                refresh_token: t.refresh_token().map(|r| Secret::new(r.secret().clone())),
                expires_at: now_unix().saturating_add(expires_in),
            })
        }
        Err(RequestTokenError::ServerResponse(e)) => {
            let description = e.error_description().map(|d| sanitize(d));
            Err(match e.error() {
                BasicErrorResponseType::InvalidGrant => OAuthError::InvalidGrant(description),
                other => OAuthError::Rejected {
                    error: sanitize(other.as_ref()),
                    description,
                },
            })
        }
        Err(RequestTokenError::Request(e)) => {
            let mut msg = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            Err(OAuthError::Unavailable(sanitize(&msg)))
        }
        // The body is deliberately dropped: a half-readable answer may hold a token.
        Err(RequestTokenError::Parse(e, _body)) => Err(OAuthError::Unavailable(format!(
            "token endpoint answer is not valid JSON at {}",
            e.path()
        ))),
        Err(RequestTokenError::Other(m)) => Err(OAuthError::Unavailable(sanitize(&m))),
    }
}

fn request_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The URL is the account server's (no secret in it).
    sanitize(&format!("{kind}: {e}"))
}

/// Keeps a message short and printable.
fn sanitize(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_accepts_boolean_and_string_is_default() {
        let json = r#"{"sub":"u","name":"N","given_name":"G","email":"e@x","created":"2015-08-13T22:03:03.45",
            "accounts":[{"account_id":"a","is_default":"true","account_name":"A","base_uri":"https://demo.docusign.net",
            "organization":{"organization_id":"o","links":[]}},
            {"account_id":"b","is_default":false,"account_name":"B","base_uri":"https://na2.docusign.net"}]}"#;
        let info: UserInfo = serde_json::from_str(json).unwrap();
        assert!(info.accounts[0].is_default);
        assert!(!info.accounts[1].is_default);
    }

    #[test]
    fn errors_do_not_carry_bodies() {
        let err = OAuthError::InvalidGrant(Some("expired_client_token".into()));
        assert_eq!(
            err.to_string(),
            "DocuSign refused the grant (invalid_grant: expired_client_token)"
        );
    }

    fn client_for(auth_server: std::net::SocketAddr) -> DocuSignClient {
        let toml = format!(
            "[docusign]\nauth_server = \"http://{auth_server}\"\nclient_id = \"ik\"\n\
             client_secret = \"cs\"\nallow_plain_http = true\n[session]\nsecret = \"0123456789abcdef0123456789abcdef\"\n"
        );
        DocuSignClient::new(&Config::from_toml_str(&toml, Vec::new()).unwrap()).unwrap()
    }

    /// Issue 13, item 7: a 5 MiB token or userinfo answer fails the call
    /// (the login answers 502 for `Unavailable`) instead of being read.
    #[tokio::test]
    async fn oversized_token_and_userinfo_answers_are_refused() {
        use crate::docusign::bounded::tests::streaming_server;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
        let server = streaming_server(head, 5 * 1024 * 1024).await;
        let client = client_for(server);
        let verifier = Secret::new("v".repeat(43));
        for result in [
            client.exchange_code("code", &verifier).await.map(|_| ()),
            client.refresh(&Secret::new("rt")).await.map(|_| ()),
            client.userinfo(&Secret::new("at")).await.map(|_| ()),
        ] {
            match result {
                Err(OAuthError::Unavailable(m)) => {
                    assert!(m.contains("larger than 1048576 bytes"), "{m}")
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
    }
}
