//! Public records and counters the fake exposes to tests and CI users.

use std::time::Duration;

use serde::Serialize;

/// Request counters. Token counters count requests per grant type whatever
/// their outcome; `token_errors` counts every non-200 token answer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FakeStats {
    pub authorize_requests: u64,
    pub token_authorization_code: u64,
    pub token_refresh: u64,
    /// JWT grants answered with a token.
    pub token_jwt: u64,
    pub token_errors: u64,
    /// The most `/oauth/token` requests that were in progress at one time.
    pub max_concurrent_token_requests: u64,
    pub userinfo: u64,
    pub rest_requests_per_host: Vec<u64>,
}

/// One request as a REST host received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub host_index: usize,
    pub method: String,
    pub path_and_query: String,
    pub host_header: Option<String>,
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    /// All headers in arrival order, names lower-case, values lossily decoded.
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
    /// Status the fake answered with.
    pub status: u16,
}

/// One `/oauth/token` request. Holds no secret values.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedTokenRequest {
    pub grant_type: Option<String>,
    /// An `Authorization: Basic ...` header was sent.
    pub basic_auth_present: bool,
    /// ... and it named the configured client id and secret.
    pub basic_auth_valid: bool,
    /// Names of the form fields, in order.
    pub field_names: Vec<String>,
    pub status: u16,
}

/// One `/oauth/auth` request. Holds no secret values (the PKCE challenge is
/// only flagged).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedAuthorizeRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub has_code_challenge: bool,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub status: u16,
}

/// How `/oauth/token` behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenEndpointMode {
    /// Answer normally.
    #[default]
    Normal,
    /// Answer 503 with a plain-text body.
    ServerError,
    /// Sleep this long, then answer normally.
    Delay(Duration),
}
