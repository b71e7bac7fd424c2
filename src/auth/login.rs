//! The login: `GET /auth/login` sends the browser to DocuSign's consent page
//! with a fresh state and PKCE pair bound to this browser; the callback
//! checks the state before anything else, exchanges the code, reads userinfo
//! once and creates the session.

use pingora::http::RequestHeader;
use tracing::{info, warn};

use super::pending::{PendingLogin, StateError};
use super::{return_to, store_unavailable, Auth};
use crate::docusign::OAuthError;
use crate::ops::metrics::{metrics, Label, LoginFailure};
use crate::session::Session;
use crate::util::ids::{log_id, random_id};
use crate::web::reply::Reply;
use crate::web::request::{cookie_header, query_param};

/// `GET /auth/login?return_to=<path>`.
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
/// browser) before anything else, then completes the login.
pub async fn callback(gw: &Auth, req: &RequestHeader) -> Reply {
    let binding = gw.cookies.login_from(cookie_header(req));
    let state = query_param(req, "state");
    if let Some(error) = query_param(req, "error") {
        // Forget the pending login this answer belongs to, if it is ours.
        if let Some(state) = &state {
            let _ = gw.logins.take(state, binding.as_deref());
        }
        return docusign_refused(gw, &error);
    }
    let (Some(code), Some(state)) = (query_param(req, "code"), state) else {
        metrics().login_failed(LoginFailure::InvalidCallback);
        return failure_page(
            400,
            "Invalid login callback",
            "The callback is missing its code or state.",
        );
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
            metrics().login_failed(LoginFailure::BadState);
            return failure_page(400, "Login failed", text);
        }
    };
    complete(gw, req, &code, &pending).await
}

/// The code exchange, userinfo and the new session.
async fn complete(gw: &Auth, req: &RequestHeader, code: &str, pending: &PendingLogin) -> Reply {
    let tokens = match gw
        .docusign
        .exchange_code(code, &pending.pkce_verifier)
        .await
    {
        Ok(t) => t,
        Err(e) => return login_failure(LoginFailure::CodeExchange, &e),
    };
    let info = match gw.docusign.userinfo(&tokens.access_token).await {
        Ok(i) => i,
        Err(e) => return login_failure(LoginFailure::Userinfo, &e),
    };
    let lifetime = gw.cfg.session_lifetime();
    let now = gw.clock.now_unix();
    let session = Session::new(info, tokens, &gw.policy, lifetime.as_secs(), now);
    let session = match gw.sessions.insert(session).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "login failed: the session could not be stored");
            metrics().login_failed(LoginFailure::StoreUnavailable);
            return store_unavailable();
        }
    };
    // A browser that logs in again leaves no orphaned session behind.
    if let Some(previous) = gw.cookies.session_from(cookie_header(req)) {
        if let Err(e) = gw.sessions.remove(&previous).await {
            warn!(session = %log_id(&previous), error = %e, "previous session not deleted");
        }
    }
    metrics().logins_completed.inc();
    info!(session = %log_id(&session.id), accounts = session.accounts.len(), "login completed");
    Reply::redirect(&pending.return_to)
        .header("Set-Cookie", gw.cookies.set_session(&session.id, lifetime))
        .header("Set-Cookie", gw.cookies.clear_login())
        .no_store()
}

/// DocuSign sent the browser back with `error=...` (consent declined, ...).
fn docusign_refused(gw: &Auth, error: &str) -> Reply {
    let error: String = error
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    warn!(reason = %error, "login failed: DocuSign returned an error");
    let (status, reason, text) = if error == "access_denied" {
        (
            403,
            LoginFailure::Denied,
            "You declined to give this application access to your DocuSign account.".to_string(),
        )
    } else {
        (
            400,
            LoginFailure::DocusignError,
            format!("DocuSign could not complete the login ({error})."),
        )
    };
    metrics().login_failed(reason);
    Reply::page(
        status,
        "Login not completed",
        &text,
        Some(("/auth/login", "Try again")),
    )
    .header("Set-Cookie", gw.cookies.clear_login())
    .no_store()
}

fn login_failure(step: LoginFailure, e: &OAuthError) -> Reply {
    warn!(step = step.as_str(), error = %e, "login failed");
    metrics().login_failed(step);
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
    failure_page(status, "Login failed", text)
}

fn failure_page(status: u16, title: &str, text: &str) -> Reply {
    let link = if status == 400 && title.starts_with("Invalid") {
        ("/auth/login", "Log in")
    } else {
        ("/auth/login", "Log in again")
    };
    Reply::page(status, title, text, Some(link)).no_store()
}
