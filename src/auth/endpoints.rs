//! The endpoints of a logged-in caller: `/auth/session` (who, which
//! accounts; never a token), `POST /auth/token` (a gateway token) and
//! `/auth/logout`.

use pingora::http::RequestHeader;
use serde_json::json;
use tracing::{info, warn};

use super::{cross_site, grant, pages, store_unavailable, Auth, Caller};
use crate::crypto::api_token::{is_service, Claims, SERVICE_SID_PREFIX};
use crate::ops::audit::{self, Event};
use crate::session::{Added, TokenRecord};
use crate::util::paths::SESSION_PATH;
use crate::web::reply::Reply;
use crate::web::request::wants_html;

/// `GET /auth/session`: JSON, or a small page for browsers.
pub async fn session_info(gw: &Auth, req: &RequestHeader) -> Reply {
    let browser = wants_html(req);
    let (session, token) = match gw.caller(req).await {
        Caller::Session(s, token) => (s, token),
        // Always 401 JSON here (even for browsers), as documented.
        other => return gw.login_required_for(&other, false, SESSION_PATH),
    };
    let session = super::policy::view(&gw.cfg.access, &session);
    if browser {
        return pages::session_page(&session, &gw.cfg.public_link(""));
    }
    let accounts: Vec<_> = session
        .accounts
        .iter()
        .map(|a| {
            json!({
                "account_id": a.account_id,
                "account_name": a.account_name,
                "base_uri": a.base_uri,
                "is_default": a.is_default,
                "api_host_allowed": a.api_host.is_ok(),
                "rate_limit": gw.rates.get(&a.account_id),
            })
        })
        .collect();
    Reply::json(
        200,
        &json!({
            "service": session.id.strip_prefix(SERVICE_SID_PREFIX),
            "user": session.user,
            "accounts": accounts,
            "default_account_id": session.default_account().map(|a| a.account_id.clone()),
            "access_token_expires_at": session.tokens.expires_at,
            "session_expires_at": session.expires_at,
            "token": token.map(|c| token_view(&c)),
        }),
    )
    .no_store()
}

/// A gateway token as `/auth/session` and `/auth/tokens` show it (never
/// its value).
pub fn token_view(claims: &Claims) -> serde_json::Value {
    json!({
        "id": claims.jti,
        "name": claims.name,
        "scope": claims.scope.clone().unwrap_or_default(),
        "issued_at": claims.iat,
        "expires_at": claims.exp,
    })
}

/// `POST /auth/token`: a gateway bearer token for the session of the
/// cookie; `body` (JSON, optional) names it, shortens its life and narrows
/// its scope (see `grant`).
pub async fn mint_token(gw: &Auth, req: &RequestHeader, body: &[u8]) -> Reply {
    // Only a browser session mints tokens: a token cannot mint its successor.
    let session = match cookie_write(gw, req, http::Method::POST, "Use POST to mint a token.").await
    {
        Ok(session) => session,
        Err(reply) => return reply,
    };
    let now = gw.clock.now_unix();
    let grant = match grant::parse(body, &session, &gw.cfg.access, now) {
        Ok(grant) => grant,
        Err(reply) => return reply,
    };
    let minted = gw.api_tokens.mint_grant(
        &session.user.sub,
        &session.id,
        now,
        session.expires_at,
        &grant,
    );
    let claims = &minted.claims;
    let max = gw.cfg.session.max_tokens_per_session;
    match gw.sessions.add_token(&session.id, record_of(claims), max).await {
        Ok(Added::Added) => {}
        Ok(Added::Full) => {
            return Reply::json(
                409,
                &json!({
                    "error": "too_many_tokens",
                    "message": format!("This session holds {max} live gateway tokens, the most it may (session.max_tokens_per_session): revoke one (DELETE /auth/tokens/{{id}}) first."),
                }),
            )
            .no_store()
        }
        Ok(Added::NoSession) => {
            return gw.login_required_for(&Caller::Anonymous, false, SESSION_PATH)
        }
        Err(_) => return store_unavailable(),
    }
    info!(session = %session.log_id(), expires_at = claims.exp, "gateway token minted");
    audit::emit(
        Event::new("token_minted")
            .with("session", session.log_id().to_string())
            .with("user", session.user.sub.as_str())
            .with("token_id", claims.jti.clone())
            .with("name", claims.name.clone())
            .with("scope", scope_value(claims))
            .with("expires_at", claims.exp)
            .with("by", "browser"),
    );
    Reply::json(
        200,
        &json!({
            "token": minted.token,
            "token_type": "Bearer",
            "expires_at": claims.exp,
            "id": claims.jti,
            "name": claims.name,
            "scope": claims.scope.clone().unwrap_or_default(),
        }),
    )
    .no_store()
}

/// The preamble of a cookie-authenticated write: its one method, the
/// same-origin rule, the cookie's session.
async fn cookie_write(
    gw: &Auth,
    req: &RequestHeader,
    method: http::Method,
    use_it: &str,
) -> Result<std::sync::Arc<crate::session::Session>, Reply> {
    if req.method != method {
        return Err(
            Reply::error(405, "method_not_allowed", use_it).header("Allow", method.as_str())
        );
    }
    if gw.origins.is_cross_site(req) {
        return Err(cross_site());
    }
    match gw.cookie_session(req).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(gw.login_required_for(&Caller::Anonymous, false, SESSION_PATH)),
        Err(_) => Err(store_unavailable()),
    }
}

/// What the registry keeps of a token: never its value.
fn record_of(claims: &Claims) -> TokenRecord {
    TokenRecord {
        id: claims.jti.clone().unwrap_or_default(),
        name: claims.name.clone(),
        scope: claims.scope.clone(),
        issued_at: claims.iat,
        expires_at: claims.exp,
    }
}

/// `GET /auth/tokens`: the live tokens of the caller's session (cookie, or
/// a gateway token of that session); never a token's value.
pub async fn list_tokens(gw: &Auth, req: &RequestHeader) -> Reply {
    if req.method != http::Method::GET && req.method != http::Method::HEAD {
        return Reply::error(405, "method_not_allowed", "Use GET to list tokens.")
            .header("Allow", "GET, HEAD");
    }
    let session = match gw.caller(req).await {
        Caller::Session(s, _) if is_service(&s.id) => return service_tokens_unlisted(),
        Caller::Session(s, _) => s,
        other => return gw.login_required_for(&other, false, SESSION_PATH),
    };
    let tokens = match gw.sessions.tokens(&session.id).await {
        Ok(tokens) => tokens,
        Err(_) => return store_unavailable(),
    };
    let now = gw.clock.now_unix();
    let shown: Vec<_> = tokens
        .iter()
        .filter(|t| t.is_live(now))
        .map(|t| {
            json!({
                "id": t.id,
                "name": t.name,
                "scope": t.scope.clone().unwrap_or_default(),
                "issued_at": t.issued_at,
                "expires_at": t.expires_at,
            })
        })
        .collect();
    Reply::json(200, &json!({ "tokens": shown })).no_store()
}

/// `DELETE /auth/tokens/{id}`: revokes one token of the cookie's session;
/// the session and its other tokens go on.
pub async fn revoke_token(gw: &Auth, req: &RequestHeader, token_id: &str) -> Reply {
    let session = match cookie_write(
        gw,
        req,
        http::Method::DELETE,
        "Use DELETE to revoke a token.",
    )
    .await
    {
        Ok(session) => session,
        Err(reply) => return reply,
    };
    let well_formed =
        (1..=64).contains(&token_id.len()) && token_id.bytes().all(|b| b.is_ascii_hexdigit());
    let revoked = match well_formed {
        true => gw.sessions.revoke_token(&session.id, token_id).await,
        false => Ok(false),
    };
    match revoked {
        Ok(true) => {
            info!(session = %session.log_id(), token = token_id, "gateway token revoked");
            audit::emit(
                Event::new("token_revoked")
                    .with("session", session.log_id().to_string())
                    .with("user", session.user.sub.as_str())
                    .with("token_id", token_id)
                    .with("by", "browser"),
            );
            Reply::new(204, "text/plain", "").no_store()
        }
        Ok(false) => Reply::error(
            404,
            "token_not_found",
            "This session has no live gateway token with this id.",
        )
        .no_store(),
        Err(_) => store_unavailable(),
    }
}

/// A service's tokens are not registered (they end with `not_before`).
fn service_tokens_unlisted() -> Reply {
    Reply::error(
        404,
        "not_found",
        "A service's gateway tokens are not listed: the token command mints them, and the service's not_before revokes them.",
    )
    .no_store()
}

/// A token's scope as JSON (`{}`: the whole session).
pub fn scope_value(claims: &Claims) -> serde_json::Value {
    serde_json::to_value(claims.scope.clone().unwrap_or_default()).unwrap_or_default()
}

/// `POST /auth/logout`: deletes the session and clears the cookie. Ending
/// the session ends every gateway token minted for it. POST only, so that a
/// link on another site cannot log anyone out.
pub async fn logout(gw: &Auth, req: &RequestHeader) -> Reply {
    if req.method != http::Method::POST {
        return Reply::error(405, "method_not_allowed", "Use POST to log out.")
            .header("Allow", "POST");
    }
    match gw.caller(req).await {
        Caller::Session(session, _) => {
            if let Err(e) = gw.sessions.remove(&session.id).await {
                warn!(session = %session.log_id(), error = %e, "logout not stored");
                return store_unavailable();
            }
            info!(session = %session.log_id(), "logout");
            let (session_log, user) = (session.log_id().to_string(), session.user.sub.as_str());
            audit::emit(
                Event::new("logout")
                    .with("session", session_log.as_str())
                    .with("user", user),
            );
            audit::emit(
                Event::new("session_ended")
                    .with("session", session_log)
                    .with("user", user)
                    .with("reason", "logout"),
            );
        }
        Caller::StoreUnavailable => return store_unavailable(),
        Caller::CrossSite => return cross_site(),
        Caller::Anonymous | Caller::BadToken | Caller::ServiceRefused(_) => {}
    }
    let reply = if wants_html(req) {
        Reply::page(
            200,
            "Logged out",
            "You are logged out of the gateway.",
            Some(("/auth/login", "Log in again")),
        )
    } else {
        Reply::json(200, &json!({ "logged_out": true }))
    };
    reply
        .header("Set-Cookie", gw.cookies.clear_session())
        .no_store()
}
