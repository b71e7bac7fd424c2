//! DocuSign's JWT grant: an RS256 assertion signed with the integration
//! key's RSA private key (`iss` the integration key, `sub` the user to
//! impersonate, `aud` the bare account-server host, `exp` at most an hour
//! after `iat`, `scope`), posted to `/oauth/token`. The answer carries an
//! access token and no refresh token. The assertion is never logged.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use url::Url;

use super::bounded::{BoundedHttp, FetchError};
use super::{OAuthError, TokenSet};
use crate::util::secret::Secret;
use crate::util::time::now_unix;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of an assertion (DocuSign accepts at most an hour).
const ASSERTION_SECS: u64 = 3600;
const DEFAULT_EXPIRES_IN: u64 = 3600;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    scope: String,
}

/// The JWT grant's endpoint and identity.
pub struct JwtGrant {
    pub client_id: String,
    pub token_url: Url,
    /// The account server's host (and port, if any) without scheme.
    pub audience: String,
}

#[derive(Deserialize)]
struct Answer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// `aud` for an account server URL: its host and explicit port.
pub fn audience(auth_server: &Url) -> String {
    let host = auth_server.host_str().unwrap_or_default();
    match auth_server.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

impl JwtGrant {
    /// A signed assertion for `user_id`, issued at `now`.
    pub fn assertion(
        &self,
        user_id: &str,
        scopes: &[String],
        key: &EncodingKey,
        now: u64,
    ) -> Result<Secret, OAuthError> {
        let claims = AssertionClaims {
            iss: &self.client_id,
            sub: user_id,
            aud: &self.audience,
            iat: now,
            exp: now + ASSERTION_SECS,
            scope: scopes.join(" "),
        };
        encode(&Header::new(Algorithm::RS256), &claims, key)
            .map(Secret::new)
            .map_err(|e| OAuthError::Unavailable(format!("the assertion cannot be signed: {e}")))
    }

    /// Posts the grant; DocuSign's errors become [`OAuthError`]s.
    pub async fn request(
        &self,
        http: &BoundedHttp,
        assertion: &Secret,
    ) -> Result<TokenSet, OAuthError> {
        let form = [
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.expose()),
        ];
        let response = http
            .client
            .post(self.token_url.clone())
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(kind(&e)))?;
        let status = response.status();
        let body = http.body(response).await.map_err(|e| match e {
            FetchError::Request(e) => OAuthError::Unavailable(kind(&e)),
            other => OAuthError::Unavailable(format!("token endpoint: {other}")),
        })?;
        if status.is_success() {
            let a: Answer = serde_json::from_slice(&body).map_err(|_| {
                OAuthError::Unavailable("the JWT grant's answer is not the expected JSON".into())
            })?;
            return Ok(TokenSet {
                access_token: Secret::new(a.access_token),
                refresh_token: None,
                expires_at: now_unix().saturating_add(a.expires_in.unwrap_or(DEFAULT_EXPIRES_IN)),
            });
        }
        match serde_json::from_slice::<ErrorAnswer>(&body) {
            Ok(e) if status.is_client_error() => Err(oauth_error(e)),
            _ => Err(OAuthError::Unavailable(format!(
                "token endpoint answered {status}"
            ))),
        }
    }
}

fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn oauth_error(e: ErrorAnswer) -> OAuthError {
    let description = e.error_description.as_deref().map(clean);
    match e.error.as_str() {
        "invalid_grant" => OAuthError::InvalidGrant(description),
        other => OAuthError::Rejected {
            error: clean(other),
            description,
        },
    }
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "token endpoint timed out".into()
    } else if e.is_connect() {
        "token endpoint: connection failed".into()
    } else {
        "token endpoint: request failed".into()
    }
}
