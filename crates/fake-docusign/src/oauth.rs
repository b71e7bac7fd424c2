//! The account server: `/oauth/auth`, `/oauth/token`, `/oauth/userinfo`
//! (plus the `/_fake/` control routes from `control.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use url::Url;

use super::control;
use super::records::{RecordedAuthorizeRequest, RecordedTokenRequest, TokenEndpointMode};
use super::reply::{self, param, parse_form};
use super::state::{Grant, Shared};

const AUTHORIZATION_CODE: &str = "authorization_code";
const REFRESH_TOKEN: &str = "refresh_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/auth", get(authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/userinfo", get(userinfo))
        .merge(control::routes())
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found() -> Response {
    reply::text(StatusCode::NOT_FOUND, "Not Found")
}

// ---------------------------------------------------------------- /oauth/auth

async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let (params, _) = parse_form(query.unwrap_or_default().as_bytes());
    let response = authorize_answer(&shared, &params);
    let get = |name: &str| param(&params, name).map(str::to_string);
    let record = RecordedAuthorizeRequest {
        response_type: get("response_type"),
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        scope: get("scope"),
        state: get("state"),
        has_code_challenge: param(&params, "code_challenge").is_some(),
        code_challenge_method: get("code_challenge_method"),
        prompt: get("prompt"),
        login_hint: get("login_hint"),
        status: response.status().as_u16(),
    };
    let mut state = shared.lock();
    state.stats.authorize_requests += 1;
    state.authorize_requests.push(record);
    drop(state);
    response
}

fn authorize_answer(shared: &Shared, params: &[(String, String)]) -> Response {
    let config = &shared.config;
    if param(params, "client_id") != Some(config.client_id.as_str()) {
        return reply::html_error(
            StatusCode::BAD_REQUEST,
            "The client id (integration key) is not valid.",
        );
    }
    let Some(redirect_uri) =
        param(params, "redirect_uri").filter(|uri| config.redirect_uris.iter().any(|r| r == uri))
    else {
        return reply::html_error(
            StatusCode::BAD_REQUEST,
            "The redirect URI is not registered properly with DocuSign.",
        );
    };
    if param(params, "response_type") != Some("code") {
        return reply::html_error(
            StatusCode::BAD_REQUEST,
            "The response type is not supported.",
        );
    }
    let Ok(target) = Url::parse(redirect_uri) else {
        return reply::html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The registered redirect URI is not a valid URL.",
        );
    };
    let state_param = param(params, "state");
    let challenge = param(params, "code_challenge");
    if challenge.is_some() || param(params, "code_challenge_method").is_some() {
        let valid = challenge.is_some_and(|c| !c.is_empty())
            && param(params, "code_challenge_method") == Some("S256");
        if !valid {
            return redirect(
                target,
                &[
                    ("error", "invalid_request"),
                    (
                        "error_description",
                        "code_challenge with code_challenge_method=S256 is required for PKCE",
                    ),
                ],
                state_param,
            );
        }
    }

    let mut state = shared.lock();
    if state.deny_consent {
        drop(state);
        return redirect(
            target,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied consent."),
            ],
            state_param,
        );
    }
    let user = match state.consenting_in_turn {
        Some(next) if !config.users.is_empty() => {
            state.consenting_in_turn = Some(next + 1);
            Some(next % config.users.len())
        }
        _ => config
            .users
            .iter()
            .position(|u| u.sub == state.consenting_user),
    };
    let Some(user) = user else {
        return reply::html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The fake has no user with the configured consenting sub.",
        );
    };
    let scopes: Vec<String> = param(params, "scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.iter().any(|s| s == "impersonation") {
        state.consents.insert(user);
    }
    let grant = Grant {
        user,
        client_id: config.client_id.clone(),
        scopes,
    };
    let code = state.issue_code(
        grant,
        &config.users[user].sub,
        challenge.map(str::to_string),
        Instant::now(),
    );
    drop(state);
    redirect(target, &[("code", &code)], state_param)
}

/// 302 to `target` with `pairs` and `state` appended to its query.
fn redirect(mut target: Url, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    {
        let mut query = target.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    match HeaderValue::from_str(target.as_str()) {
        Ok(location) => {
            reply::no_store((StatusCode::FOUND, [(LOCATION, location)]).into_response())
        }
        Err(_) => reply::html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot build the redirect.",
        ),
    }
}

// --------------------------------------------------------------- /oauth/token

/// What an `Authorization: Basic` header said about the client.
#[derive(Debug, PartialEq, Eq)]
enum ClientAuth {
    Missing,
    Invalid,
    Valid,
}

fn client_auth(headers: &HeaderMap, client_id: &str, client_secret: &str) -> ClientAuth {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return ClientAuth::Missing;
    };
    let bytes = value.as_bytes();
    if bytes.len() < 6 || !bytes[..6].eq_ignore_ascii_case(b"basic ") {
        return ClientAuth::Missing;
    }
    let Ok(decoded) = STANDARD.decode(bytes[6..].trim_ascii()) else {
        return ClientAuth::Invalid;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return ClientAuth::Invalid;
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return ClientAuth::Invalid;
    };
    // RFC 6749 2.3.1: clients form-encode both parts before base64; accept
    // the raw and the decoded forms.
    let matches = |given: &str, expected: &str| {
        let raw: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
        let plus_decoded = given.replace('+', " ");
        let decoded = percent_decode_str(&plus_decoded).decode_utf8_lossy();
        raw || bool::from(decoded.as_bytes().ct_eq(expected.as_bytes()))
    };
    if matches(id, client_id) & matches(secret, client_secret) {
        ClientAuth::Valid
    } else {
        ClientAuth::Invalid
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    reply::no_store(reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    ))
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let (params, field_names) = if is_form {
        parse_form(&body)
    } else {
        (Vec::new(), Vec::new())
    };
    let auth = client_auth(
        &headers,
        &shared.config.client_id,
        &shared.config.client_secret,
    );
    let grant_type = param(&params, "grant_type").map(str::to_string);
    let mut record = RecordedTokenRequest {
        grant_type: grant_type.clone(),
        basic_auth_present: auth != ClientAuth::Missing,
        basic_auth_valid: auth == ClientAuth::Valid,
        field_names,
        status: 0,
    };

    let mode = {
        let mut state = shared.lock();
        state.token_in_flight += 1;
        state.stats.max_concurrent_token_requests = state
            .stats
            .max_concurrent_token_requests
            .max(state.token_in_flight);
        state.token_mode
    };
    let response = match mode {
        TokenEndpointMode::ServerError => reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Unavailable: the fake token endpoint is set to fail.",
        ),
        TokenEndpointMode::Delay(d) => {
            tokio::time::sleep(d).await;
            token_answer(&shared, is_form, &auth, &params)
        }
        TokenEndpointMode::Normal => token_answer(&shared, is_form, &auth, &params),
    };

    record.status = response.status().as_u16();
    let mut state = shared.lock();
    state.token_in_flight = state.token_in_flight.saturating_sub(1);
    match grant_type.as_deref() {
        Some(AUTHORIZATION_CODE) => state.stats.token_authorization_code += 1,
        Some(REFRESH_TOKEN) => state.stats.token_refresh += 1,
        _ => {}
    }
    if record.status != 200 {
        state.stats.token_errors += 1;
    }
    state.token_requests.push(record);
    drop(state);
    response
}

fn token_answer(
    shared: &Shared,
    is_form: bool,
    auth: &ClientAuth,
    params: &[(String, String)],
) -> Response {
    let grant_type = param(params, "grant_type");
    if grant_type == Some(JWT_BEARER) {
        return super::jwt::grant(shared, params);
    }
    if *auth != ClientAuth::Valid {
        return reply::no_store(reply::json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client"}),
        ));
    }
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let client_id = shared.config.client_id.as_str();
    let now = Instant::now();
    let mut state = shared.lock();
    let redeemed = match grant_type {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
        Some(AUTHORIZATION_CODE) => match param(params, "code") {
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code is required",
                )
            }
            Some(code) => state.redeem_code(code, client_id, param(params, "code_verifier"), now),
        },
        Some(REFRESH_TOKEN) => match param(params, "refresh_token") {
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                )
            }
            Some(token) => state.redeem_refresh(token, client_id, now),
        },
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The grant type is not supported.",
            )
        }
    };
    let grant = match redeemed {
        Ok(grant) => grant,
        Err(description) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
        }
    };
    let Some(user) = shared.config.users.get(grant.user) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown user");
    };
    let pair = state.issue_tokens(grant, &user.sub, now);
    drop(state);
    reply::no_store(reply::json(
        StatusCode::OK,
        &json!({
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "refresh_token": pair.refresh_token,
            "expires_in": pair.expires_in,
        }),
    ))
}

// ------------------------------------------------------------ /oauth/userinfo

async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut state = shared.lock();
    state.stats.userinfo += 1;
    let grant = reply::bearer_token(&headers)
        .and_then(|token| state.access_grant(token, Instant::now()))
        .cloned();
    let as_string = state.is_default_as_string;
    let overrides = state.base_uri_overrides.clone();
    drop(state);
    let Some(user) = grant.and_then(|g| shared.config.users.get(g.user)) else {
        return reply::no_store(reply::json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_token"}),
        ));
    };
    let accounts: Vec<Value> = user
        .accounts
        .iter()
        .map(|a| {
            let is_default = if as_string {
                Value::String(a.is_default.to_string())
            } else {
                Value::Bool(a.is_default)
            };
            json!({
                "account_id": a.account_id,
                "is_default": is_default,
                "account_name": a.account_name,
                "base_uri": overrides
                    .get(&a.account_id.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_else(|| shared.rest_host_url(a.rest_host)),
            })
        })
        .collect();
    reply::no_store(reply::json(
        StatusCode::OK,
        &json!({
            "sub": user.sub,
            "name": user.name,
            "given_name": user.given_name,
            "family_name": user.family_name,
            "created": "2015-08-13T22:03:03.45",
            "email": user.email,
            "accounts": accounts,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        h
    }

    #[test]
    fn basic_auth_parsing_never_panics() {
        let check = |h: &HeaderMap| client_auth(h, "id", "s3cr:t");
        assert_eq!(check(&HeaderMap::new()), ClientAuth::Missing);
        assert_eq!(check(&basic(b"Bearer x")), ClientAuth::Missing);
        assert_eq!(check(&basic(b"Basic")), ClientAuth::Missing);
        assert_eq!(check(&basic(b"Basic !!!")), ClientAuth::Invalid);
        assert_eq!(check(&basic(b"Basic \xff\xfe")), ClientAuth::Invalid);
        let no_colon = format!("Basic {}", STANDARD.encode("idsecret"));
        assert_eq!(check(&basic(no_colon.as_bytes())), ClientAuth::Invalid);
        let non_utf8 = format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe]));
        assert_eq!(check(&basic(non_utf8.as_bytes())), ClientAuth::Invalid);
        let good = format!("basic {}", STANDARD.encode("id:s3cr:t"));
        assert_eq!(check(&basic(good.as_bytes())), ClientAuth::Valid);
        let encoded = format!("Basic {}", STANDARD.encode("id:s3cr%3At"));
        assert_eq!(check(&basic(encoded.as_bytes())), ClientAuth::Valid);
        let wrong = format!("Basic {}", STANDARD.encode("id:nope"));
        assert_eq!(check(&basic(wrong.as_bytes())), ClientAuth::Invalid);
    }
}
