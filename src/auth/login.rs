//! The login: `GET /auth/login` sends the browser to DocuSign's consent page
//! with a fresh state and PKCE pair bound to this browser; the callback
//! checks the state before anything else, exchanges the code, reads userinfo
//! once and creates the session.

use pingora::http::RequestHeader;
use tracing::{info, warn};

use super::pending::{state_key, BrowserLogins, PendingLogin, StateError, MAX_RETURN_TO_LEN};
use super::{policy, return_to, store_unavailable, Auth};
use crate::config::email_domain;
use crate::docusign::OAuthError;
use crate::ops::audit::{self, Event};
use crate::ops::metrics::{metrics, Label, LoginFailure};
use crate::session::Session;
use crate::util::ids::log_id;
use crate::util::secret::Secret;
use crate::web::reply::Reply;
use crate::web::request::{cookie_header, query_param, wants_html};

/// `GET /auth/login?return_to=<path>`: the login travels in the
/// browser's encrypted login cookie (see `pending`).
pub fn login(gw: &Auth, req: &RequestHeader) -> Reply {
    let mut return_to = return_to::sanitize(query_param(req, "return_to").as_deref());
    if return_to.len() > MAX_RETURN_TO_LEN {
        return_to = return_to::DEFAULT_RETURN_TO.to_string();
    }
    let (url, state, verifier) = gw.docusign.authorize_url();
    metrics().logins_started.inc();
    let reply = to_docusign(gw, req, &url, state, verifier, return_to, None);
    info!(pending_logins = gw.logins.len(), "login started");
    reply
}

/// The redirect to DocuSign's consent page, with the login in progress
/// added to this browser's login cookie.
pub(super) fn to_docusign(
    gw: &Auth,
    req: &RequestHeader,
    url: &url::Url,
    state: String,
    pkce_verifier: Secret,
    return_to: String,
    consent_for: Option<String>,
) -> Reply {
    let now = gw.clock.now_unix();
    let timeout = gw.cfg.session.login_timeout;
    let mut logins =
        BrowserLogins::from_cookie(&gw.cookies, cookie_header(req)).unwrap_or_default();
    gw.logins.started(&state);
    logins.push(
        PendingLogin {
            state: Secret::new(state),
            pkce_verifier,
            return_to,
            expires_at: now.saturating_add(timeout.as_secs()),
            consent_for,
        },
        now,
    );
    Reply::redirect(url.as_str())
        .header("Set-Cookie", logins.set_cookie(&gw.cookies, timeout))
        .no_store()
}

/// `GET {callback_path}`: checks the state (in this browser's login cookie,
/// unused on every instance, fresh) before anything else, then completes
/// the login.
pub async fn callback(gw: &Auth, req: &RequestHeader) -> Reply {
    let logins = BrowserLogins::from_cookie(&gw.cookies, cookie_header(req));
    if let Some(error) = query_param(req, "error") {
        return docusign_refused(gw, &error);
    }
    let (Some(code), Some(state)) = (query_param(req, "code"), query_param(req, "state")) else {
        metrics().login_failed(LoginFailure::InvalidCallback);
        return failure_page(
            400,
            "Invalid login callback",
            "The callback is missing its code or state.",
        );
    };
    let mut logins = logins.unwrap_or_default();
    let taken = match logins.take(&state, gw.clock.now_unix()) {
        Err(StateError::Unknown) if logins.is_empty() => Err(StateError::OtherBrowser),
        Ok(login) => claim(gw, &state, login).await,
        Err(e) => Err(e),
    };
    let pending = match taken {
        Ok(Some(p)) => p,
        Ok(None) => return store_unavailable(),
        Err(e) => return bad_state(e),
    };
    gw.logins.finished(&state);
    let remaining = logins.set_cookie(&gw.cookies, gw.cfg.session.login_timeout);
    if let Some(service) = &pending.consent_for {
        return super::consent::given(service, remaining);
    }
    complete(gw, req, &code, &pending, remaining).await
}

/// Marks the state used on every instance; `Ok(None)`: the store did not
/// answer.
async fn claim(
    gw: &Auth,
    state: &str,
    login: PendingLogin,
) -> Result<Option<PendingLogin>, StateError> {
    match gw
        .sessions
        .claim_state(&state_key(state), gw.cfg.session.login_timeout)
        .await
    {
        Ok(true) => Ok(Some(login)),
        Ok(false) => Err(StateError::Unknown),
        Err(e) => {
            warn!(error = %e, "login state not checked: the session store is unavailable");
            Ok(None)
        }
    }
}

fn bad_state(e: StateError) -> Reply {
    let text = match e {
        StateError::Unknown => "This login link is unknown or was already used.",
        StateError::Expired => "This login took too long and has expired.",
        StateError::OtherBrowser => "This login was started in another browser.",
    };
    warn!(reason = ?e, "login failed: bad state");
    metrics().login_failed(LoginFailure::BadState);
    failure_page(400, "Login failed", text)
}

/// The code exchange, userinfo and the new session.
async fn complete(
    gw: &Auth,
    req: &RequestHeader,
    code: &str,
    pending: &PendingLogin,
    login_cookie: String,
) -> Reply {
    let tokens = match gw
        .docusign
        .exchange_code(code, &pending.pkce_verifier)
        .await
    {
        Ok(t) => t,
        Err(e) => return login_failure(LoginFailure::CodeExchange, &e),
    };
    let mut info = match gw.docusign.userinfo(&tokens.access_token).await {
        Ok(i) => i,
        Err(e) => return login_failure(LoginFailure::Userinfo, &e),
    };
    if let Err(refusal) = policy::admit(&gw.cfg.access, &mut info) {
        // The refused user's tokens go no further: dropped here, unstored.
        drop(tokens);
        audit::emit(
            Event::new("login_denied")
                .with("user", info.sub.as_str())
                .with("email_domain", email_domain(&info.email))
                .with("reason", refusal.as_str()),
        );
        return access_denied(req, login_cookie);
    }
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
    info!(session = %session.log_id(), accounts = session.accounts.len(), "login completed");
    let accounts: Vec<&str> = session
        .accounts
        .iter()
        .map(|a| a.account_id.as_str())
        .collect();
    audit::emit(
        Event::new("login")
            .with("user", session.user.sub.as_str())
            .with("email_domain", email_domain(&session.user.email))
            .with("accounts", accounts)
            .with("session", session.log_id().to_string()),
    );
    Reply::redirect(&pending.return_to)
        .header("Set-Cookie", gw.cookies.set_session(&session.id, lifetime))
        .header("Set-Cookie", login_cookie)
        .no_store()
}

/// 403 for a user the `[access]` policy refuses: no session, no session
/// cookie; a page for browsers, naming no internal detail.
fn access_denied(req: &RequestHeader, login_cookie: String) -> Reply {
    warn!("login refused by the access policy");
    metrics().login_failed(LoginFailure::AccessDenied);
    let text =
        "This gateway does not accept your DocuSign user or accounts. Ask its operator for access.";
    let reply = if wants_html(req) {
        Reply::page(403, "Access denied", text, None)
    } else {
        Reply::error(403, "access_denied", text)
    };
    reply.header("Set-Cookie", login_cookie).no_store()
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
