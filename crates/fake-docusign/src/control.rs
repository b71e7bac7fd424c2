//! Control routes on the account server for CI users of
//! `docusign-gateway fake-docusign`. They answer JSON and never return
//! tokens, codes or the client secret.
//!
//! - `GET  /_fake/stats`
//! - `POST /_fake/revoke-access-tokens`
//! - `POST /_fake/revoke-refresh-tokens`
//! - `POST /_fake/access-token-ttl?secs=N`
//! - `POST /_fake/deny-consent?deny=true|false`
//! - `POST /_fake/token-endpoint?mode=normal|error|delay&ms=N`
//! - `POST /_fake/jwt-public-key` (body: an RSA public key, PEM)
//! - `POST /_fake/rate-limit?account=ID&hourly=N&burst=N&remaining=N&reset_in=SECS&burst_used=N`
//!   (every parameter optional; without `account` the limits apply to every
//!   account without limits of its own)
//! - `POST /_fake/connect/listener?url=URL&keys=K1,K2&max_attempts=N&first_retry_ms=N`
//!   (replaces the Connect listeners with this one; only `url` required;
//!   the answer shows the number of keys, never the keys)
//! - `POST /_fake/connect/send` (body: the raw message, sent byte for byte;
//!   empty: a sample `envelope-completed` event of the first user's first
//!   account and `SAMPLE_ENVELOPE_ID`); answers `{"message_id": N}`
//! - `GET  /_fake/connect/attempts`: `{"attempts": [...]}`, the recorded
//!   delivery attempts, oldest first

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::connect::{delivery, event_body, ConnectListener, EventIds};
use super::envelopes::SAMPLE_ENVELOPE_ID;
use super::ratelimit::{AccountLimits, DEFAULT_BURST_LIMIT, DEFAULT_HOURLY_LIMIT};
use super::records::TokenEndpointMode;
use super::reply::{self, param, parse_form};
use super::state::Shared;
use super::time::unix_secs;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_fake/stats", get(stats))
        .route("/_fake/revoke-access-tokens", post(revoke_access))
        .route("/_fake/revoke-refresh-tokens", post(revoke_refresh))
        .route("/_fake/access-token-ttl", post(access_token_ttl))
        .route("/_fake/deny-consent", post(deny_consent))
        .route("/_fake/token-endpoint", post(token_endpoint))
        .route("/_fake/jwt-public-key", post(jwt_public_key))
        .route("/_fake/rate-limit", post(rate_limit))
        .route("/_fake/connect/listener", post(connect_listener))
        .route("/_fake/connect/send", post(connect_send))
        .route("/_fake/connect/attempts", get(connect_attempts))
}

fn ok(value: Value) -> Response {
    reply::json(StatusCode::OK, &value)
}

fn bad_request(message: &str) -> Response {
    reply::json(
        StatusCode::BAD_REQUEST,
        &json!({"error": "invalid_request", "error_description": message}),
    )
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.lock().stats.clone();
    match serde_json::to_value(stats) {
        Ok(v) => ok(v),
        Err(_) => reply::text(StatusCode::INTERNAL_SERVER_ERROR, "cannot render stats"),
    }
}

async fn revoke_access(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().revoke_access_tokens();
    ok(json!({"revoked": "access_tokens"}))
}

async fn revoke_refresh(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().revoke_refresh_tokens();
    ok(json!({"revoked": "refresh_tokens"}))
}

async fn access_token_ttl(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let (params, _) = parse_form(query.unwrap_or_default().as_bytes());
    let Some(secs) = param(&params, "secs").and_then(|s| s.parse::<u64>().ok()) else {
        return bad_request("secs must be a non-negative integer");
    };
    shared.lock().access_token_ttl = Duration::from_secs(secs);
    ok(json!({"access_token_ttl_secs": secs}))
}

async fn deny_consent(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let (params, _) = parse_form(query.unwrap_or_default().as_bytes());
    let deny = match param(&params, "deny") {
        Some("true") | None => true,
        Some("false") => false,
        Some(_) => return bad_request("deny must be true or false"),
    };
    shared.lock().deny_consent = deny;
    ok(json!({"deny_consent": deny}))
}

async fn token_endpoint(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let (params, _) = parse_form(query.unwrap_or_default().as_bytes());
    let mode = match param(&params, "mode") {
        Some("normal") => TokenEndpointMode::Normal,
        Some("error") => TokenEndpointMode::ServerError,
        Some("delay") => match param(&params, "ms").and_then(|s| s.parse::<u64>().ok()) {
            Some(ms) => TokenEndpointMode::Delay(Duration::from_millis(ms)),
            None => return bad_request("delay needs ms=N"),
        },
        _ => return bad_request("mode must be normal, error or delay"),
    };
    shared.lock().token_mode = mode;
    ok(json!({"token_endpoint": format!("{mode:?}")}))
}

async fn jwt_public_key(State(shared): State<Arc<Shared>>, body: String) -> Response {
    if jsonwebtoken::DecodingKey::from_rsa_pem(body.as_bytes()).is_err() {
        return bad_request("the body must be an RSA public key in PEM");
    }
    shared.lock().jwt_public_keys.push(body);
    ok(json!({"jwt_public_keys": shared.lock().jwt_public_keys.len()}))
}

async fn rate_limit(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let (params, _) = parse_form(query.unwrap_or_default().as_bytes());
    let mut numbers = HashMap::new();
    for name in ["hourly", "burst", "remaining", "reset_in", "burst_used"] {
        match param(&params, name).map(|s| s.parse::<u64>()) {
            Some(Ok(n)) => {
                numbers.insert(name, n);
            }
            Some(Err(_)) => return bad_request("numbers must be non-negative integers"),
            None => {}
        }
    }
    let account = param(&params, "account");
    let now = unix_secs(SystemTime::now());
    let mut state = shared.lock();
    let rates = &mut state.rates;
    if numbers.contains_key("hourly") || numbers.contains_key("burst") {
        let limits = AccountLimits {
            hourly: numbers
                .get("hourly")
                .copied()
                .unwrap_or(DEFAULT_HOURLY_LIMIT),
            burst: numbers.get("burst").copied().unwrap_or(DEFAULT_BURST_LIMIT),
        };
        rates.set_limits(account, limits);
    }
    if let (Some(id), Some(remaining)) = (account, numbers.get("remaining")) {
        let reset_in = numbers.get("reset_in").copied().unwrap_or(3600);
        rates.set_window(id, *remaining, reset_in, now);
    }
    if let (Some(id), Some(used)) = (account, numbers.get("burst_used")) {
        rates.set_burst_used(id, *used, now);
    }
    ok(json!({"rate_limit": "set"}))
}

/// A listener from `url`, `keys` (comma-separated), `max_attempts` and
/// `first_retry_ms`, with the defaults for what is missing.
fn listener_of(params: &[(String, String)]) -> Result<ConnectListener, &'static str> {
    let url = param(params, "url").ok_or("url is required")?;
    let keys = param(params, "keys")
        .unwrap_or_default()
        .split(',')
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    let mut listener = ConnectListener::new(url, keys);
    if let Some(n) = param(params, "max_attempts") {
        listener.max_attempts = n.parse().map_err(|_| "max_attempts must be a number")?;
    }
    if let Some(ms) = param(params, "first_retry_ms") {
        let ms = ms.parse().map_err(|_| "first_retry_ms must be a number")?;
        listener.first_retry = Duration::from_millis(ms);
    }
    Ok(listener)
}

async fn connect_listener(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let (params, _) = parse_form(query.unwrap_or_default().as_bytes());
    let listener = match listener_of(&params) {
        Ok(listener) => listener,
        Err(message) => return bad_request(message),
    };
    if let Err(message) = listener.validate() {
        return bad_request(&message);
    }
    let answer = json!({
        "url": listener.url,
        "hmac_keys": listener.hmac_keys.len(),
        "max_attempts": listener.max_attempts,
        "first_retry_ms": u64::try_from(listener.first_retry.as_millis()).unwrap_or(u64::MAX),
    });
    shared.lock().connect_listeners = vec![listener];
    ok(json!({"connect_listener": answer}))
}

async fn connect_send(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = if body.is_empty() {
        match sample_event(&shared) {
            Some(sample) => Bytes::from(sample),
            None => return bad_request("the first user has no account"),
        }
    } else {
        body
    };
    ok(json!({"message_id": delivery::send(&shared, body)}))
}

/// An `envelope-completed` event of the sample envelope in the first
/// user's first account.
fn sample_event(shared: &Shared) -> Option<Vec<u8>> {
    let user = shared.config.users.first()?;
    let account = user.accounts.first()?;
    let ids = EventIds {
        account_id: &account.account_id,
        user_id: &user.sub,
        envelope_id: SAMPLE_ENVELOPE_ID,
    };
    Some(event_body(
        "envelope-completed",
        &ids,
        Some("Sample envelope"),
    ))
}

async fn connect_attempts(State(shared): State<Arc<Shared>>) -> Response {
    let attempts: Vec<_> = shared.lock().connect_attempts.iter().cloned().collect();
    ok(json!({"attempts": attempts}))
}
