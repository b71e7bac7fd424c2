//! The endpoints of a logged-in caller: `/auth/session` (who, which
//! accounts; never a token), `POST /auth/token` (a gateway token) and
//! `/auth/logout`.

use pingora::http::RequestHeader;
use serde_json::json;
use tracing::{info, warn};

use super::{cross_site, pages, store_unavailable, Auth, Caller};
use crate::crypto::api_token::SERVICE_SID_PREFIX;
use crate::ops::audit::{self, Event};
use crate::util::paths::SESSION_PATH;
use crate::web::reply::Reply;
use crate::web::request::wants_html;

/// `GET /auth/session`: JSON, or a small page for browsers.
pub async fn session_info(gw: &Auth, req: &RequestHeader) -> Reply {
    let browser = wants_html(req);
    let session = match gw.caller(req).await {
        Caller::Session(s) => s,
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
        }),
    )
    .no_store()
}

/// `POST /auth/token`: a gateway bearer token for the session of the cookie.
pub async fn mint_token(gw: &Auth, req: &RequestHeader) -> Reply {
    if req.method != http::Method::POST {
        return Reply::error(405, "method_not_allowed", "Use POST to mint a token.")
            .header("Allow", "POST");
    }
    // Only a browser session mints tokens: a token cannot mint its successor.
    if gw.origins.is_cross_site(req) {
        return cross_site();
    }
    let session = match gw.cookie_session(req).await {
        Ok(Some(session)) => session,
        Ok(None) => return gw.login_required_for(&Caller::Anonymous, false, SESSION_PATH),
        Err(_) => return store_unavailable(),
    };
    let (token, expires_at) = gw.api_tokens.mint(
        &session.user.sub,
        &session.id,
        gw.clock.now_unix(),
        session.expires_at,
    );
    info!(session = %session.log_id(), expires_at, "gateway token minted");
    Reply::json(
        200,
        &json!({ "token": token, "token_type": "Bearer", "expires_at": expires_at }),
    )
    .no_store()
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
        Caller::Session(session) => {
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
