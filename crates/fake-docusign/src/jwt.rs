//! DocuSign's JWT grant (service impersonation): the assertion is checked
//! like DocuSign does (RS256 signature by one of the integration key's
//! registered public keys, `iss`, `aud` the bare account-server host, `exp`
//! at most an hour after `iat`, `sub` a known user, the `impersonation`
//! scope, and consent given by that user for that key through `/oauth/auth`).
//! The answer has an access token and no refresh token.

use std::time::Instant;

use axum::response::Response;
use http::StatusCode;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use super::reply::{self, param};
use super::state::{Grant, Shared};

/// The longest an assertion may live, as at DocuSign.
const MAX_ASSERTION_SECS: u64 = 3600;

#[derive(Deserialize)]
struct Assertion {
    iss: String,
    sub: String,
    iat: u64,
    exp: u64,
    #[serde(default)]
    scope: String,
}

fn error(error: &str, description: Option<&str>) -> Response {
    let body = match description {
        Some(d) => json!({"error": error, "error_description": d}),
        None => json!({"error": error}),
    };
    reply::no_store(reply::json(StatusCode::BAD_REQUEST, &body))
}

/// The claims of `assertion` if one of `keys` signed it for `aud`.
fn verified(assertion: &str, keys: &[String], aud: &str) -> Option<Assertion> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 0;
    keys.iter().find_map(|pem| {
        let key = DecodingKey::from_rsa_pem(pem.as_bytes()).ok()?;
        decode::<Assertion>(assertion, &key, &validation)
            .ok()
            .map(|d| d.claims)
    })
}

/// Answers `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
pub(crate) fn grant(shared: &Shared, params: &[(String, String)]) -> Response {
    let Some(assertion) = param(params, "assertion") else {
        return error("invalid_request", Some("assertion is required"));
    };
    let keys = shared.lock().jwt_public_keys.clone();
    let Some(claims) = verified(assertion, &keys, &shared.account_authority) else {
        return error("invalid_grant", Some("no_valid_keys_or_signatures"));
    };
    let config = &shared.config;
    if claims.iss != config.client_id {
        return error("invalid_grant", Some("issuer_not_found"));
    }
    if claims.exp <= claims.iat || claims.exp - claims.iat > MAX_ASSERTION_SECS {
        return error("invalid_grant", Some("invalid_request"));
    }
    let Some(user) = config.users.iter().position(|u| u.sub == claims.sub) else {
        return error("invalid_grant", Some("user_not_found"));
    };
    let scopes: Vec<String> = claims.scope.split(' ').map(str::to_string).collect();
    if !scopes.iter().any(|s| s == "impersonation") {
        return error("invalid_scope", Some("the impersonation scope is required"));
    }
    let mut state = shared.lock();
    if !state.consents.contains(&user) {
        return error("consent_required", None);
    }
    state.stats.token_jwt += 1;
    let grant = Grant {
        user,
        client_id: config.client_id.clone(),
        scopes,
    };
    let (token, expires_in) = state.issue_access_token(grant, &claims.sub, Instant::now());
    drop(state);
    reply::no_store(reply::json(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}),
    ))
}
