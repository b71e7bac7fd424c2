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
//! - `POST /_fake/rate-limit?account=ID&hourly=N&burst=N&remaining=N&reset_in=SECS&burst_used=N`
//!   (every parameter optional; without `account` the limits apply to every
//!   account without limits of its own)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};

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
        .route("/_fake/rate-limit", post(rate_limit))
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
