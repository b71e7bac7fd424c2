//! Steps 1 to 4 of the request path (see the module doc of `proxy`): what
//! the gateway does with a request head, before anything is forwarded.
//! In-process and free of pingora's session, so it is tested as a table.

use std::sync::Arc;
use std::time::Duration;

use pingora::http::RequestHeader;
use serde_json::json;
use tracing::warn;

use super::ctx::{Forwarding, Upstream};
use super::router::{self, Route};
use super::Gateway;
use crate::auth::{self, policy, store_unavailable, Caller};
use crate::config::{AccessConfig, Api};
use crate::crypto::api_token::is_service;
use crate::crypto::scope::{Outside, Scope};
use crate::docusign::api_host::ApiHost;
use crate::ops::audit::{self, Event};
use crate::session::refresh::Freshness;
use crate::session::{Account, Session};
use crate::web::reply::Reply;
use crate::web::request::{asks_for_upgrade, wants_html};

/// How long `/readyz` waits for the session store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What to do with a request.
pub enum Decision {
    /// Answer it here.
    Answer(Reply),
    /// Forward it.
    Forward(Forwarding),
}

impl Gateway {
    /// Step 1: the endpoints answered here; step 2-4 for an API's path.
    /// `body` is the request's body where the route takes one that the
    /// gateway reads itself (`POST /auth/token`), else empty.
    pub async fn decide(&self, route: Route, req: &RequestHeader, body: &[u8]) -> Decision {
        let auth = &self.auth;
        let reply = match route {
            Route::Health => Reply::json(200, &json!({ "status": "ok" })),
            Route::Ready => self.readiness().await,
            Route::Login => auth::login(auth, req),
            Route::Callback => auth::callback(auth, req).await,
            Route::SessionInfo => auth::session_info(auth, req).await,
            Route::Logout => auth::logout(auth, req).await,
            Route::Token => auth::mint_token(auth, req, body).await,
            Route::Tokens => auth::list_tokens(auth, req).await,
            Route::TokenItem => {
                let id = req.uri.path().rsplit('/').next().unwrap_or_default();
                let id = match req.uri.path().matches('/').count() {
                    3 => id,
                    _ => "",
                };
                auth::revoke_token(auth, req, id).await
            }
            Route::Consent => auth::consent(auth, req),
            // Read and answered in `request_filter` (it needs the body).
            Route::NotFound | Route::Webhook => super::not_found(),
            Route::Api(api) => match self.prepare_forward(api, req).await {
                Ok(forwarding) => return Decision::Forward(forwarding),
                Err(reply) => reply,
            },
        };
        Decision::Answer(reply)
    }

    /// `/readyz`: ready when the session store answers (the configuration
    /// was loaded before the gateway was built).
    async fn readiness(&self) -> Reply {
        let store = self.auth.sessions.name();
        match tokio::time::timeout(READY_TIMEOUT, self.auth.sessions.count()).await {
            Ok(Ok(_)) => Reply::json(200, &json!({ "status": "ready", "store": store })),
            Ok(Err(_)) | Err(_) => Reply::json(
                503,
                &json!({
                    "status": "not_ready",
                    "error": "session_store_unavailable",
                    "store": store,
                    "message": format!("The {store} session store does not answer."),
                }),
            )
            .header("Retry-After", "2"),
        }
    }

    /// Steps 2 to 4: the session, the account or organization, the host, a
    /// usable token.
    async fn prepare_forward(&self, api: Api, req: &RequestHeader) -> Result<Forwarding, Reply> {
        let path = req.uri.path();
        let original = req.uri.path_and_query().map_or(path, |pq| pq.as_str());
        router::check_method(&req.method)?;
        if asks_for_upgrade(req) {
            // A 101 from upstream would make the connection a raw tunnel to
            // the REST host, no longer parsed here: DocuSign uses none.
            return Err(Reply::error(
                400,
                "upgrade_not_supported",
                "The gateway does not switch protocols (Upgrade): DocuSign's REST APIs use none.",
            ));
        }
        let browser = wants_html(req);
        let (session, token) = match self.auth.caller(req).await {
            Caller::Session(session, token) => (session, token),
            other => return Err(self.auth.login_required_for(&other, browser, original)),
        };
        if !is_service(&session.id) && !policy::user_still_allowed(&self.auth.cfg.access, &session)
        {
            return Err(self.end_refused_session(&session, browser, original).await);
        }
        let api_path = router::parse_api_path(api, path).map_err(router::PathError::reply)?;
        let access = &self.auth.cfg.access;
        if let Some(org) = api_path.organization {
            within_organizations(access, org)?;
        }
        // eSignature and Click live on the account's REST host (an
        // account-less path means the default account); a platform path may
        // name an account, checked the same way; Admin names none.
        let account = match api {
            Api::Esignature | Api::Click => Some(account_of(access, &session, api_path.account)?),
            Api::Platform => match api_path.account {
                Some(id) => Some(account_of(access, &session, Some(id))?),
                None => None,
            },
            Api::Admin => None,
        };
        if let Some(scope) = token.as_ref().and_then(|c| c.scope.as_ref()) {
            let account = account.map(|a| a.account_id.as_str());
            within_scope(scope, account, req.method.as_str(), path)?;
        }
        // The local rate-limit accounting is the eSignature API's.
        let esignature = match api {
            Api::Esignature => account,
            _ => None,
        };
        if let Some(account) = esignature {
            self.within_account_limits(account)?;
        }
        let upstream = match (api, account) {
            (Api::Esignature | Api::Click, Some(account)) => self.upstream_for(account).await?,
            _ => self.fixed_upstream(api).await?,
        };
        // A service's session comes fresh from `Auth::caller` (service mode).
        let fresh = if is_service(&session.id) {
            session.clone()
        } else {
            match self.refresher.fresh(&session, None).await {
                Freshness::Ready(fresh) => fresh,
                other => return Err(self.not_fresh(other, browser, original)),
            }
        };
        if let Some(account) = esignature {
            self.within_session_limit(&fresh, account).await?;
        }
        Ok(Forwarding {
            session: fresh,
            upstream,
            api,
            account_id: account.map(|a| a.account_id.clone()),
            browser,
        })
    }

    /// A session whose user this instance's `[access]` policy no longer
    /// admits: it ends (on every instance), and the caller must log in.
    async fn end_refused_session(&self, session: &Session, browser: bool, original: &str) -> Reply {
        match self.auth.sessions.remove(&session.id).await {
            Ok(_) => audit::emit(
                Event::new("session_ended")
                    .with("session", session.log_id().to_string())
                    .with("user", session.user.sub.as_str())
                    .with("reason", "policy"),
            ),
            Err(e) => warn!(session = %session.log_id(), error = %e, "refused session not ended"),
        }
        self.auth
            .login_required_for(&Caller::Anonymous, browser, original)
    }

    /// Where an account's requests go: its REST host, checked at login,
    /// resolved now.
    async fn upstream_for(&self, account: &Account) -> Result<Upstream, Reply> {
        // The verdict of the login, then this configuration's (a session
        // from a shared store may predate a narrower `allowed_api_hosts`).
        let host = account
            .api_host
            .clone()
            .and_then(|host| self.auth.policy.admits(&host).map(|()| host))
            .map_err(|reason| {
                warn!(account = %account.account_id, %reason, "REST host refused");
                Reply::error(502, "api_host_not_allowed", &reason.to_string())
            })?;
        self.resolved(host).await
    }

    /// Where an Admin or platform call goes: the configured host of that
    /// API (`admin_api_url`, `platform_api_url`), admitted as configured.
    async fn fixed_upstream(&self, api: Api) -> Result<Upstream, Reply> {
        let host = match api {
            Api::Admin => self.fixed_hosts.admin.clone(),
            _ => self.fixed_hosts.platform.clone(),
        };
        self.resolved(host).await
    }

    /// `host` with its address (502 `upstream_unreachable` when it has none).
    async fn resolved(&self, host: Arc<ApiHost>) -> Result<Upstream, Reply> {
        let addr = self
            .resolver
            .resolve(&host.host, host.port)
            .await
            .map_err(|reason| {
                warn!(host = %host.host, %reason, "API host unreachable");
                Reply::error(502, "upstream_unreachable", &reason.to_string())
            })?;
        Ok(Upstream { addr, host })
    }

    /// The answer when the session has no usable token.
    pub(super) fn not_fresh(&self, outcome: Freshness, browser: bool, original: &str) -> Reply {
        match outcome {
            Freshness::LoginRequired => {
                self.auth
                    .login_required_for(&Caller::Anonymous, browser, original)
            }
            Freshness::Unavailable { retry_after_secs } => token_unavailable(retry_after_secs),
            Freshness::StoreUnavailable => store_unavailable(),
            // Not outcomes that end a request (callers handle them first).
            Freshness::Ready(_) | Freshness::TooRecent => token_unavailable(1),
        }
    }
}

/// Step 3: an organization the path names must be one `[access]
/// allowed_organizations` admits.
fn within_organizations(access: &AccessConfig, organization: &str) -> Result<(), Reply> {
    if access.organization_allowed(organization) {
        return Ok(());
    }
    Err(Reply::error(
        403,
        "organization_not_permitted",
        "This gateway does not permit calls to this organization.",
    ))
}

/// Step 3 for a scoped gateway token: the call must be inside its scope.
/// A call naming no account (an organization's) is outside a scope that
/// lists accounts.
fn within_scope(
    scope: &Scope,
    account: Option<&str>,
    method: &str,
    path: &str,
) -> Result<(), Reply> {
    scope.check(account, method, path).map_err(|outside| {
        let message = match outside {
            Outside::Account => "This gateway token's scope does not include this account.",
            Outside::Method => "This gateway token's scope does not include this method.",
            Outside::Path => "This gateway token's scope does not include this path.",
        };
        Reply::json(
            403,
            &json!({ "error": "token_scope", "message": message, "outside": outside.as_str() }),
        )
        .no_store()
    })
}

/// Step 3: the account the path names must be one of the session's and
/// allowed by this instance's `[access]` policy; other paths go to the
/// default account (see [`policy::default_account`]).
fn account_of<'s>(
    access: &'s AccessConfig,
    session: &'s Session,
    named: Option<&str>,
) -> Result<&'s Account, Reply> {
    let not_permitted = || {
        Reply::error(
            403,
            "account_not_permitted",
            "This gateway does not permit calls to this account.",
        )
    };
    match named {
        Some(id) if !access.account_allowed(id) => Err(not_permitted()),
        Some(id) => session.account(id).ok_or_else(|| {
            Reply::error(
                403,
                "account_not_permitted",
                "This account is not one of the accounts of your DocuSign session.",
            )
        }),
        None if session.accounts.is_empty() => Err(Reply::error(
            403,
            "no_account",
            "Your DocuSign user has no account.",
        )),
        None => policy::default_account(access, session).ok_or_else(not_permitted),
    }
}

/// 503 while DocuSign's token endpoint is failing and no usable token is left.
fn token_unavailable(retry_after_secs: u64) -> Reply {
    Reply::error(
        503,
        "docusign_unavailable",
        "The DocuSign access token could not be refreshed; the session is kept. Retry later.",
    )
    .header("Retry-After", retry_after_secs.to_string())
    .no_store()
}
