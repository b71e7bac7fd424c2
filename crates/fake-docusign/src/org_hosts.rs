//! The fake's two hosts of organization-level APIs, each on its own
//! listener: the Admin API (`/management/v2/organizations...`, the first
//! segment in any case, as DocuSign's Admin SDK writes `/Management` in
//! production) and the api.docusign.com family (Monitor's
//! `/v1/organizations/{id}/stream`, Navigator's
//! `/v1/accounts/{id}/agreements`). Like a REST host, each records every
//! request, insists on its own `Host` and answers 401 for a bearer token
//! that is not live (expired, revoked, unknown).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::header::HOST;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::reply;
use super::rest::{live_user, record_of, MAX_BODY};
use super::state::Shared;
use super::FakeOrganization;

/// Which of the two hosts a listener is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrgHost {
    Admin,
    Platform,
}

#[derive(Clone)]
struct Host {
    shared: Arc<Shared>,
    kind: OrgHost,
}

pub(crate) fn router(shared: Arc<Shared>, kind: OrgHost) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(Host { shared, kind })
}

fn error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (status, json!({"errorCode": code, "message": message}))
}

fn not_found() -> (StatusCode, Value) {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "The URL provided does not resolve to a resource.",
    )
}

async fn handle(State(host): State<Host>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let record = record_of(0, &parts, &body);
    let slot = {
        let mut state = host.shared.lock();
        let list = match host.kind {
            OrgHost::Admin => &mut state.admin_requests,
            OrgHost::Platform => &mut state.platform_requests,
        };
        list.push(record);
        list.len() - 1
    };
    let (status, value) = answer(&host, &parts);
    let response = reply::json(status, &value);
    let mut state = host.shared.lock();
    let list = match host.kind {
        OrgHost::Admin => &mut state.admin_requests,
        OrgHost::Platform => &mut state.platform_requests,
    };
    if let Some(r) = list.get_mut(slot) {
        r.status = status.as_u16();
    }
    response
}

fn answer(host: &Host, parts: &http::request::Parts) -> (StatusCode, Value) {
    let shared = &host.shared;
    let authority = match host.kind {
        OrgHost::Admin => &shared.admin_authority,
        OrgHost::Platform => &shared.platform_authority,
    };
    let given = parts.headers.get(HOST).and_then(|v| v.to_str().ok());
    if !given.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_PARAMETER",
            "Host header does not match this server.",
        );
    }
    let Some(user) = live_user(shared, parts) else {
        // Invented body: the status is what DocuSign documents.
        return error(
            StatusCode::UNAUTHORIZED,
            "AUTHORIZATION_INVALID_TOKEN",
            "The access token provided is expired, revoked or malformed.",
        );
    };
    let sub = &shared.config.users[user].sub;
    let path = parts.uri.path();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if parts.method != Method::GET {
        return not_found();
    }
    match host.kind {
        OrgHost::Admin => admin(shared, sub, &segments),
        OrgHost::Platform => platform(shared, user, sub, &segments),
    }
}

/// The organizations `sub` is a member of.
fn organizations_of<'a>(
    shared: &'a Shared,
    sub: &'a str,
) -> impl Iterator<Item = &'a FakeOrganization> + 'a {
    shared
        .config
        .organizations
        .iter()
        .filter(move |o| o.members.iter().any(|m| m.eq_ignore_ascii_case(sub)))
}

fn member_org<'a>(shared: &'a Shared, sub: &'a str, id: &str) -> Option<&'a FakeOrganization> {
    organizations_of(shared, sub).find(|o| o.id.eq_ignore_ascii_case(id))
}

fn org_json(o: &FakeOrganization) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "default_account_id": o.accounts.first(),
        "accounts": o.accounts.iter().map(|a| json!({"id": a})).collect::<Vec<_>>(),
    })
}

fn not_a_member() -> (StatusCode, Value) {
    // Invented code: DocuSign answers 403 for another organization.
    error(
        StatusCode::FORBIDDEN,
        "USER_NOT_ORGANIZATION_MEMBER",
        "The user is not a member of this organization.",
    )
}

fn paging(n: usize) -> Value {
    json!({
        "result_set_size": n,
        "result_set_start_position": 0,
        "result_set_end_position": n.saturating_sub(1),
        "total_set_size": n,
    })
}

fn admin(shared: &Shared, sub: &str, segments: &[&str]) -> (StatusCode, Value) {
    let Some((first, rest)) = segments.split_first() else {
        return not_found();
    };
    if !first.eq_ignore_ascii_case("management") {
        return not_found();
    }
    match rest {
        ["v2", "organizations"] => {
            let orgs: Vec<Value> = organizations_of(shared, sub).map(org_json).collect();
            let n = orgs.len();
            (
                StatusCode::OK,
                json!({"organizations": orgs, "paging": paging(n)}),
            )
        }
        ["v2" | "v2.1", "organizations", id] => match member_org(shared, sub, id) {
            Some(o) => (StatusCode::OK, org_json(o)),
            None => not_a_member(),
        },
        ["v2" | "v2.1", "organizations", id, "users"] => {
            let Some(o) = member_org(shared, sub, id) else {
                return not_a_member();
            };
            let users: Vec<Value> = shared
                .config
                .users
                .iter()
                .filter(|u| o.members.iter().any(|m| m.eq_ignore_ascii_case(&u.sub)))
                .map(|u| {
                    json!({
                        "id": u.sub,
                        "user_name": u.name,
                        "first_name": u.given_name,
                        "last_name": u.family_name,
                        "email": u.email,
                        "user_status": "active",
                        "membership_status": "active",
                    })
                })
                .collect();
            let n = users.len();
            (StatusCode::OK, json!({"users": users, "paging": paging(n)}))
        }
        _ => not_found(),
    }
}

fn platform(shared: &Shared, user: usize, sub: &str, segments: &[&str]) -> (StatusCode, Value) {
    match segments {
        ["v1", "organizations", id, "stream"] => match member_org(shared, sub, id) {
            Some(_) => (
                StatusCode::OK,
                json!({"data": [], "endCursor": "aW5pdGlhbA"}),
            ),
            None => not_a_member(),
        },
        ["v1", "accounts", account, "agreements", rest @ ..] => {
            let member = shared.config.users[user]
                .accounts
                .iter()
                .any(|a| a.account_id.eq_ignore_ascii_case(account));
            if !member {
                return error(
                    StatusCode::FORBIDDEN,
                    "USER_LACKS_MEMBERSHIP",
                    "The UserID does not have a valid membership in this Account.",
                );
            }
            let agreement = json!({
                "id": "7d3c1a2b-0e4f-4a5b-8c6d-9e0f1a2b3c4d",
                "title": "Master services agreement",
                "type": "Msa",
                "status": "COMPLETE",
            });
            match rest {
                [] => (
                    StatusCode::OK,
                    json!({"data": [agreement], "response_metadata": {"page_limit": 25}}),
                ),
                [id] if agreement["id"] == *id => (StatusCode::OK, agreement),
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}
