//! A fake eSignature REST host. Each listener knows its index and its own
//! authority; it records every request, insists on its own `Host`, checks
//! the bearer token and the account's membership and home host, and serves
//! the calls real clients make first (see `envelopes.rs`).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};

use super::connect::{delivery, event_body, EventIds};
use super::envelopes::{account_json, document_pdf, list_json, Envelope};
use super::ratelimit::{exceeded_body, key_of, RateSnapshot};
use super::records::RecordedRequest;
use super::reply;
use super::state::Shared;
use super::tokens::new_guid;

/// Largest request body a REST host buffers.
pub(crate) const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Clone)]
struct RestHost {
    shared: Arc<Shared>,
    index: usize,
}

pub(crate) fn router(shared: Arc<Shared>, index: usize) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(RestHost { shared, index })
}

/// What a REST route answers before the common headers are added.
enum Answer {
    Json(StatusCode, Value),
    Pdf(Bytes),
}

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    Answer::Json(status, json!({"errorCode": code, "message": message}))
}

fn lossy(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

async fn handle(State(host): State<RestHost>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (body, too_large) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => (b, false),
        Err(_) => (Bytes::new(), true),
    };
    let record = record_of(host.index, &parts, &body);
    let key = key_of(parts.uri.path(), host.index);
    let (slot, rate) = {
        let mut state = host.shared.lock();
        state.rest_requests.push(record);
        let rate = state.count_rest_request(host.index, &key, SystemTime::now());
        (state.rest_requests.len() - 1, rate)
    };

    let answer = if too_large {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_REQUEST_BODY",
            "The request body is too large for this fake.",
        )
    } else if let Some(exceeded) = rate.exceeded {
        Answer::Json(
            StatusCode::TOO_MANY_REQUESTS,
            exceeded_body(exceeded, rate.limits),
        )
    } else {
        route(&host, &parts, &body)
    };
    let mut response = match answer {
        Answer::Json(status, value) => reply::json(status, &value),
        Answer::Pdf(bytes) => pdf_response(bytes),
    };

    if let Some(r) = host.shared.lock().rest_requests.get_mut(slot) {
        r.status = response.status().as_u16();
    }
    add_rate_headers(&mut response, &rate);
    response
}

/// The request as the fake records it.
pub(crate) fn record_of(
    host_index: usize,
    parts: &http::request::Parts,
    body: &Bytes,
) -> RecordedRequest {
    let header = |name: HeaderName| parts.headers.get(name).map(lossy);
    RecordedRequest {
        host_index,
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string()),
        host_header: header(HOST),
        authorization: header(http::header::AUTHORIZATION),
        cookie: header(COOKIE),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), lossy(v)))
            .collect(),
        body: body.clone(),
        status: 0,
    }
}

fn pdf_response(bytes: Bytes) -> Response {
    let len = bytes.len();
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

fn add_rate_headers(response: &mut Response, rate: &RateSnapshot) {
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    set("x-ratelimit-limit", rate.limits.hourly);
    set("x-ratelimit-remaining", rate.remaining);
    set("x-ratelimit-reset", rate.reset);
    set("x-burstlimit-limit", rate.limits.burst);
    set("x-burstlimit-remaining", rate.burst_remaining);
    if rate.exceeded.is_some() {
        set("retry-after", rate.retry_after);
    }
}

fn route(host: &RestHost, parts: &http::request::Parts, body: &Bytes) -> Answer {
    let shared = &host.shared;
    let authority = &shared.rest_authorities[host.index];
    let given_host = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    if !given_host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_PARAMETER",
            "Host header does not match this server.",
        );
    }

    let path = parts.uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let (click, account_id, rest) = match segments.as_slice() {
        ["restapi", "v2" | "v2.1", "accounts", account_id, rest @ ..] => (false, *account_id, rest),
        ["clickapi", "v1", "accounts", account_id, rest @ ..] => (true, *account_id, rest),
        ["restapi" | "clickapi", ..] => {
            if live_user(shared, parts).is_none() {
                return invalid_token();
            }
            return not_found();
        }
        _ => return not_found(),
    };

    let Some(user) = live_user(shared, parts) else {
        return invalid_token();
    };
    let Some(account) = shared.config.users[user]
        .accounts
        .iter()
        .find(|a| a.account_id.eq_ignore_ascii_case(account_id))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "USER_LACKS_MEMBERSHIP",
            "The UserID does not have a valid membership in this Account.",
        );
    };
    if account.rest_host != host.index {
        // Invented error code: DocuSign's answer for an account asked on the
        // wrong REST host is not documented.
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ACCOUNT_BASE_URI",
            "Account is not hosted on this server.",
        );
    }

    let method = &parts.method;
    let mut state = shared.lock();
    if click {
        return clickwraps(&mut state, account_id, method, rest, body);
    }
    match rest {
        [] if method == Method::GET => {
            let sent = state.envelopes(account_id).len();
            Answer::Json(StatusCode::OK, account_json(account, sent))
        }
        ["envelopes"] if method == Method::GET => {
            Answer::Json(StatusCode::OK, list_json(state.envelopes(account_id)))
        }
        ["envelopes"] if method == Method::POST => {
            drop(state);
            create_envelope(shared, &account.account_id, user, body)
        }
        ["envelopes", envelope_id] if method == Method::GET => {
            match state.find_envelope(account_id, envelope_id) {
                Some(e) => Answer::Json(StatusCode::OK, e.json()),
                None => envelope_missing(),
            }
        }
        ["envelopes", envelope_id, "documents", document_id]
            if method == Method::GET && !document_id.is_empty() =>
        {
            let Some(envelope) = state.find_envelope(account_id, envelope_id) else {
                return envelope_missing();
            };
            let id = envelope.id.clone();
            drop(state);
            Answer::Pdf(document_pdf(&id, document_id, shared.config.document_size))
        }
        _ => not_found(),
    }
}

/// `POST .../envelopes`: stores the envelope and, when Connect listeners
/// are configured, queues its `envelope-sent` (or, for a draft,
/// `envelope-created`) event as the token's user.
fn create_envelope(shared: &Shared, account_id: &str, user: usize, body: &Bytes) -> Answer {
    let fields = match json_object(body) {
        Ok(fields) => fields,
        Err(answer) => return answer,
    };
    let envelope = Envelope::from_request(new_guid(), &fields);
    let summary = envelope.summary_json();
    let event = format!("envelope-{}", envelope.status);
    let (id, subject) = (envelope.id.clone(), envelope.email_subject.clone());
    let listening = {
        let mut state = shared.lock();
        state.add_envelope(account_id, envelope);
        !state.connect_listeners.is_empty()
    };
    if listening {
        let ids = EventIds {
            account_id,
            user_id: &shared.config.users[user].sub,
            envelope_id: &id,
        };
        let message = event_body(&event, &ids, Some(&subject));
        delivery::send(shared, message.into());
    }
    Answer::Json(StatusCode::CREATED, summary)
}

/// A JSON object body, or DocuSign's 400 for anything else.
fn json_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, Answer> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_BODY",
            "The request body is missing or improperly formatted.",
        )),
    }
}

/// The Click API (`/clickapi/v1/accounts/{id}/clickwraps[/{id}]`) on the
/// account's REST host: list, create, get.
fn clickwraps(
    state: &mut super::state::State,
    account_id: &str,
    method: &Method,
    rest: &[&str],
    body: &Bytes,
) -> Answer {
    let key = account_id.to_ascii_lowercase();
    match rest {
        ["clickwraps"] if method == Method::GET => {
            let list = state.clickwraps.get(&key).cloned().unwrap_or_default();
            let n = list.len();
            Answer::Json(
                StatusCode::OK,
                json!({"clickwraps": list, "minimumPagesRemaining": 0, "page": 1, "pageSize": n}),
            )
        }
        ["clickwraps"] if method == Method::POST => {
            let fields = match json_object(body) {
                Ok(fields) => fields,
                Err(answer) => return answer,
            };
            let name = fields
                .get("name")
                .or_else(|| fields.get("clickwrapName"))
                .and_then(Value::as_str)
                .unwrap_or("Untitled clickwrap");
            let version = new_guid();
            let clickwrap = json!({
                "accountId": account_id,
                "clickwrapId": new_guid(),
                "clickwrapName": name,
                "status": "inactive",
                "versionNumber": 1,
                "clickwrapVersionId": version,
                "versionId": version,
                "createdTime": crate::time::docusign_timestamp(SystemTime::now()),
            });
            state
                .clickwraps
                .entry(key)
                .or_default()
                .push(clickwrap.clone());
            Answer::Json(StatusCode::CREATED, clickwrap)
        }
        ["clickwraps", id] if method == Method::GET => {
            let found = state.clickwraps.get(&key).and_then(|list| {
                list.iter()
                    .find(|c| c["clickwrapId"].as_str() == Some(*id))
                    .cloned()
            });
            match found {
                Some(c) => Answer::Json(StatusCode::OK, c),
                None => error(
                    StatusCode::NOT_FOUND,
                    "CLICKWRAP_NOT_FOUND",
                    "The clickwrap specified does not exist.",
                ),
            }
        }
        _ => not_found(),
    }
}

/// Index of the user behind the request's bearer token, if it is live.
pub(crate) fn live_user(shared: &Shared, parts: &http::request::Parts) -> Option<usize> {
    let token = reply::bearer_token(&parts.headers)?;
    let state = shared.lock();
    state
        .access_grant(token, Instant::now())
        .map(|g| g.user)
        .filter(|u| *u < shared.config.users.len())
}

fn invalid_token() -> Answer {
    error(
        StatusCode::UNAUTHORIZED,
        "AUTHORIZATION_INVALID_TOKEN",
        "The access token provided is expired, revoked or malformed.",
    )
}

fn not_found() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "The URL provided does not resolve to a resource.",
    )
}

fn envelope_missing() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "ENVELOPE_DOES_NOT_EXIST",
        "The envelope specified either does not exist or you have no rights to the envelope.",
    )
}
