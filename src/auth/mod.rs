//! The endpoints the gateway answers itself (login, callback, session,
//! token, logout) and who a request comes from ([`Auth::caller`]).
//!
//! [`Auth`] holds what authentication needs: the session store, the logins
//! in progress, the cookie and token codecs and the DocuSign client. The
//! request path (`proxy`) asks it; it never asks the request path.

mod consent;
mod endpoints;
pub mod grant;
mod login;
mod origin;
pub mod pages;
pub mod pending;
pub mod policy;
pub mod return_to;
pub mod service;

use std::sync::Arc;

use pingora::http::RequestHeader;
use serde_json::json;

pub use consent::consent;
pub use endpoints::{list_tokens, logout, mint_token, revoke_token, session_info};
pub use login::{callback, login};

use crate::config::Config;
use crate::crypto::api_token::{service_sid, ApiTokens, Claims};
use crate::crypto::cookies::CookieCodec;
use crate::docusign::api_host::HostPolicy;
use crate::docusign::AccountServer;
use crate::session::ratelimit::AccountRates;
use crate::session::{Session, SessionStore, StoreError};
use crate::util::paths::LOGIN_PATH;
use crate::util::time::Clock;
use crate::web::reply::Reply;
use crate::web::request::{bearer_token, cookie_header};
pub use origin::OriginPolicy;
use pending::PendingLogins;

/// Who sent a request.
pub enum Caller {
    /// A live session, and the gateway token that named it (`None`: the
    /// session cookie).
    Session(Arc<Session>, Option<Arc<Claims>>),
    /// No session cookie and no bearer token.
    Anonymous,
    /// A bearer token that is not a valid gateway token of a live session.
    BadToken,
    /// The session store did not answer: who it is cannot be told now.
    StoreUnavailable,
    /// A session cookie on an unsafe request from another site.
    CrossSite,
    /// A valid service token whose service cannot act now: this answer
    /// (consent required, grant refused, DocuSign unavailable).
    ServiceRefused(Reply),
}

/// Authentication's shared state; one instance serves every request.
pub struct Auth {
    pub cfg: Arc<Config>,
    pub sessions: Arc<dyn SessionStore>,
    pub logins: Arc<PendingLogins>,
    pub cookies: CookieCodec,
    pub docusign: Arc<dyn AccountServer>,
    pub policy: HostPolicy,
    pub api_tokens: ApiTokens,
    pub clock: Arc<dyn Clock>,
    /// DocuSign's rate limits as last seen per account.
    pub rates: Arc<AccountRates>,
    pub origins: OriginPolicy,
    pub services: service::Services,
}

/// 403 for a cookie-authenticated unsafe request from another site.
pub fn cross_site() -> Reply {
    Reply::error(
        403,
        "cross_site_request",
        "Requests that change something are accepted with the session cookie only from the gateway's own origin (or server.allowed_origins).",
    )
    .no_store()
}

/// Seconds a client is asked to wait while the session store is unreachable.
const STORE_RETRY_AFTER_SECS: u64 = 2;

/// 503 while the session store does not answer; nothing was lost.
pub fn store_unavailable() -> Reply {
    Reply::error(
        503,
        "session_store_unavailable",
        "The session store cannot be reached; your session is kept. Retry later.",
    )
    .header("Retry-After", STORE_RETRY_AFTER_SECS.to_string())
    .no_store()
}

impl Auth {
    /// Who is calling: the session of the request's cookie, else the session
    /// named by a gateway token in `Authorization: Bearer`.
    pub async fn caller(&self, req: &RequestHeader) -> Caller {
        let mut cross_site = false;
        match self.cookie_session(req).await {
            Ok(Some(_)) if self.origins.is_cross_site(req) => cross_site = true,
            Ok(Some(session)) => return Caller::Session(session, None),
            Ok(None) => {}
            Err(_) => return Caller::StoreUnavailable,
        }
        let Some(token) = bearer_token(req) else {
            return match cross_site {
                true => Caller::CrossSite,
                false => Caller::Anonymous,
            };
        };
        let Some(claims) = self.api_tokens.verify(token) else {
            return Caller::BadToken;
        };
        if let Some(name) = claims.svc.clone() {
            return self.service_caller(&name, claims).await;
        }
        let session = match self.sessions.get(&claims.sid).await {
            Ok(Some(session)) if session.user.sub == claims.sub => session,
            Ok(_) => return Caller::BadToken,
            Err(_) => return Caller::StoreUnavailable,
        };
        // A token with an id counts while its session's registry holds it
        // (it may have been revoked); one from before ids, for its session.
        if let Some(jti) = &claims.jti {
            let now = self.clock.now_unix();
            match self.sessions.tokens(&claims.sid).await {
                Ok(tokens) if tokens.iter().any(|t| &t.id == jti && t.is_live(now)) => {}
                Ok(_) => return Caller::BadToken,
                Err(_) => return Caller::StoreUnavailable,
            }
        }
        Caller::Session(session, Some(claims))
    }

    /// The session of a service token's service, unless the token was issued
    /// before the service's `not_before` or names another user.
    async fn service_caller(&self, name: &str, claims: Arc<Claims>) -> Caller {
        let Some(cfg) = self.services.config(name) else {
            return Caller::BadToken;
        };
        if claims.iat < cfg.not_before
            || claims.sub != cfg.user_id
            || claims.sid != service_sid(name)
        {
            return Caller::BadToken;
        }
        match self.services.session(name, None).await {
            Ok(session) => Caller::Session(session, Some(claims)),
            Err(reply) => Caller::ServiceRefused(reply),
        }
    }

    /// The live session of the request's session cookie, if any.
    pub async fn cookie_session(
        &self,
        req: &RequestHeader,
    ) -> Result<Option<Arc<Session>>, StoreError> {
        match self.cookies.session_from(cookie_header(req)) {
            Some(id) => self.sessions.get(&id).await,
            None => Ok(None),
        }
    }

    /// The answer to a request that needs a session and has none: a browser
    /// goes to login (and back to `original`), any other client gets 401.
    pub fn login_required_for(&self, caller: &Caller, browser: bool, original: &str) -> Reply {
        match caller {
            Caller::StoreUnavailable => return store_unavailable(),
            Caller::CrossSite => return cross_site(),
            Caller::ServiceRefused(reply) => return reply.clone(),
            _ => {}
        }
        let login_url = self.cfg.public_link(LOGIN_PATH);
        let bad_token = matches!(caller, Caller::BadToken);
        if browser && !bad_token {
            let return_to: String = form_urlencoded::byte_serialize(original.as_bytes()).collect();
            return Reply::redirect(&format!("{login_url}?return_to={return_to}")).no_store();
        }
        let (message, challenge) = if bad_token {
            (
                "The gateway token is invalid or expired, or its session has ended. Log in again and mint a new one.",
                "Bearer realm=\"docusign-gateway\", error=\"invalid_token\"",
            )
        } else {
            (
                "No valid gateway session. Log in through the login_url in a browser.",
                "Bearer realm=\"docusign-gateway\"",
            )
        };
        Reply::json(
            401,
            &json!({
                "error": "login_required",
                "message": message,
                "login_url": login_url,
            }),
        )
        .header("WWW-Authenticate", challenge)
        .no_store()
    }
}
