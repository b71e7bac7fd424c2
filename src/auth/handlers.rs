//! The endpoints the gateway answers itself: login, the DocuSign callback,
//! the session description and logout. Each takes the request head and
//! returns a [`Reply`]; nothing here forwards anything.

use std::sync::Arc;
use std::time::Instant;

use pingora::http::RequestHeader;
use serde_json::json;
use tracing::{info, warn};

use super::{Auth, Caller};
use crate::auth::pages;
use crate::auth::pending::{PendingLogin, StateError};
use crate::auth::return_to;
use crate::docusign::OAuthError;
use crate::ops::metrics::metrics;
use crate::session::Session;
use crate::util::ids::log_id;
use crate::util::ids::random_id;
use crate::util::paths::SESSION_PATH;
use crate::util::time::now_unix;
use crate::web::reply::Reply;
use crate::web::request::{cookie_header, query_param, wants_html};

/// `GET /auth/login?return_to=<path>`: a fresh state and PKCE pair, bound
/// to this browser, and a redirect to DocuSign's consent page.
pub fn login(gw: &Auth, req: &RequestHeader) -> Reply {
    let return_to = return_to::sanitize(query_param(req, "return_to").as_deref());
    let binding = gw
        .cookies
        .login_from(cookie_header(req))
        .unwrap_or_else(random_id);
    let (url, state, verifier) = gw.docusign.authorize_url();
    gw.logins.insert(
        state,
        PendingLogin {
            pkce_verifier: verifier,
            return_to,
            browser_binding: binding.clone(),
            created: Instant::now(),
        },
    );
    metrics().logins_started.inc();
    info!(pending_logins = gw.logins.len(), "login started");
    Reply::redirect(url.as_str())
        .header(
            "Set-Cookie",
            gw.cookies.set_login(&binding, gw.cfg.session.login_timeout),
        )
        .no_store()
}

/// `GET {callback_path}`: checks the state (issued here, unused, fresh, same
/// browser) before anything else, then exchanges the code, reads userinfo
/// once and creates the session.
pub async fn callback(gw: &Auth, req: &RequestHeader) -> Reply {
    let binding = gw.cookies.login_from(cookie_header(req));
    let state = query_param(req, "state");

    if let Some(error) = query_param(req, "error") {
        // Forget the pending login this answer belongs to, if it is ours.
        if let Some(state) = &state {
            let _ = gw.logins.take(state, binding.as_deref());
        }
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        warn!(reason = %error, "login failed: DocuSign returned an error");
        let reason = if error == "access_denied" {
            "denied"
        } else {
            "docusign_error"
        };
        metrics().logins_failed.with_label_values(&[reason]).inc();
        let (status, text) = if error == "access_denied" {
            (
                403,
                "You declined to give this application access to your DocuSign account."
                    .to_string(),
            )
        } else {
            (
                400,
                format!("DocuSign could not complete the login ({error})."),
            )
        };
        return Reply::page(
            status,
            "Login not completed",
            &text,
            Some(("/auth/login", "Try again")),
        )
        .header("Set-Cookie", gw.cookies.clear_login())
        .no_store();
    }

    let (Some(code), Some(state)) = (query_param(req, "code"), state) else {
        metrics()
            .logins_failed
            .with_label_values(&["invalid_callback"])
            .inc();
        return Reply::page(
            400,
            "Invalid login callback",
            "The callback is missing its code or state.",
            Some(("/auth/login", "Log in")),
        )
        .no_store();
    };
    let pending = match gw.logins.take(&state, binding.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            let text = match e {
                StateError::Unknown => "This login link is unknown or was already used.",
                StateError::Expired => "This login took too long and has expired.",
                StateError::OtherBrowser => "This login was started in another browser.",
            };
            warn!(reason = ?e, "login failed: bad state");
            metrics()
                .logins_failed
                .with_label_values(&["bad_state"])
                .inc();
            return Reply::page(
                400,
                "Login failed",
                text,
                Some(("/auth/login", "Log in again")),
            )
            .no_store();
        }
    };

    let tokens = match gw
        .docusign
        .exchange_code(&code, &pending.pkce_verifier)
        .await
    {
        Ok(t) => t,
        Err(e) => return login_failure("code_exchange", &e),
    };
    let info = match gw.docusign.userinfo(&tokens.access_token).await {
        Ok(i) => i,
        Err(e) => return login_failure("userinfo", &e),
    };
    let lifetime = gw.cfg.session_lifetime();
    let session = Arc::new(Session::new(info, tokens, &gw.policy, lifetime.as_secs()));
    gw.sessions.insert(session.clone()).await;
    // A browser that logs in again leaves no orphaned session behind.
    if let Some(previous) = gw.cookies.session_from(cookie_header(req)) {
        if let Some(old) = gw.sessions.remove(&previous).await {
            old.mark_dead();
        }
    }
    metrics().logins_completed.inc();
    info!(
        session = %log_id(&session.id),
        accounts = session.accounts.len(),
        "login completed"
    );
    Reply::redirect(&pending.return_to)
        .header("Set-Cookie", gw.cookies.set_session(&session.id, lifetime))
        .header("Set-Cookie", gw.cookies.clear_login())
        .no_store()
}

fn login_failure(step: &'static str, e: &OAuthError) -> Reply {
    warn!(step, error = %e, "login failed");
    metrics().logins_failed.with_label_values(&[step]).inc();
    let (status, text) = match e {
        OAuthError::InvalidGrant(_) => (
            400,
            "DocuSign did not accept the authorization code (it may have expired). Please log in again.",
        ),
        OAuthError::Rejected { .. } => (
            502,
            "DocuSign rejected the gateway's request. The gateway's integration settings may be wrong.",
        ),
        OAuthError::Unavailable(_) => (
            502,
            "DocuSign could not be reached. Please try again in a moment.",
        ),
    };
    Reply::page(
        status,
        "Login failed",
        text,
        Some(("/auth/login", "Log in again")),
    )
    .no_store()
}

/// `GET /auth/session`: who is logged in and their accounts, never a token.
/// JSON, or a small page for browsers.
pub async fn session_info(gw: &Auth, req: &RequestHeader) -> Reply {
    let browser = wants_html(req);
    let session = match gw.caller(req).await {
        Caller::Session(s) => s,
        // Always 401 JSON here (even for browsers), as documented.
        other => return gw.login_required_for(&other, false, SESSION_PATH),
    };
    if browser {
        return pages::session_page(&session, &gw.cfg.public_link(""));
    }
    let tokens = session.tokens();
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
            })
        })
        .collect();
    Reply::json(
        200,
        &json!({
            "user": session.user,
            "accounts": accounts,
            "default_account_id": session.default_account().map(|a| a.account_id.clone()),
            "access_token_expires_at": tokens.set.expires_at,
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
    let Some(session) = gw.cookie_session(req).await else {
        return gw.login_required_for(&Caller::Anonymous, false, SESSION_PATH);
    };
    let (token, expires_at) = gw.api_tokens.mint(
        &session.user.sub,
        &session.id,
        now_unix(),
        session.expires_at,
    );
    info!(session = %log_id(&session.id), expires_at, "gateway token minted");
    Reply::json(
        200,
        &json!({ "token": token, "token_type": "Bearer", "expires_at": expires_at }),
    )
    .no_store()
}

/// `POST /auth/logout` (and GET): deletes the session and clears the cookie.
pub async fn logout(gw: &Auth, req: &RequestHeader) -> Reply {
    // Ending the session ends every gateway token minted for it.
    if let Caller::Session(session) = gw.caller(req).await {
        session.mark_dead();
        gw.sessions.remove(&session.id).await;
        info!(session = %log_id(&session.id), "logout");
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
