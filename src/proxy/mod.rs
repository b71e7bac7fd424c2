//! The request path, top to bottom: [`Gateway`] is pingora's `ProxyHttp`.
//!
//! For every request, `request_filter` decides:
//! 1. `/healthz`, `/auth/*` and the callback are answered here (see `auth`).
//! 2. `/restapi/...` needs a session: the session cookie, or a gateway token
//!    (`Authorization: Bearer`, see `api_token`). Without one: a browser is
//!    redirected to login, any other client (and any bad token) gets 401
//!    `login_required`.
//! 3. The path must follow `router::parse_api_path`'s grammar (else 400
//!    `invalid_path`) and the method be one DocuSign uses (else 405). The
//!    account named in the path must be one of the session's (else 403);
//!    other paths go to the default account. Its REST host must have passed
//!    `allowed_api_hosts` at login (else 502), and must resolve (else 502).
//! 4. The session's access token must be usable: inside the refresh window
//!    it is refreshed first (see `refresh`); a refused refresh token ends the
//!    session (as in 2), a DocuSign outage without a usable token is 503.
//! 5. The request is forwarded with `Host` and SNI of that REST host, the
//!    session's DocuSign bearer token and without the gateway's cookies; the
//!    response streams back untouched, except `Set-Cookie` headers for the
//!    gateway's own cookie names, which are dropped.
//! 6. If DocuSign answers 401, the session is refreshed (once, shared with
//!    concurrent requests) and the request replayed once with the new token;
//!    a body too large to replay (over 64 KiB) gets DocuSign's 401 as it is.
//!
//! Anything else is 404.

pub mod resolver;
pub mod router;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session as Downstream};
use pingora::{Error, ErrorSource, ErrorType, Result};
use serde_json::json;
use tracing::{info, warn};

use crate::util::ids::log_id;

use crate::auth::pending::PendingLogins;
use crate::auth::{self, Auth, Caller};
use crate::config::Config;
use crate::crypto::api_token::ApiTokens;
use crate::crypto::cookies::CookieCodec;
use crate::docusign::api_host::{ApiHost, HostPolicy};
use crate::docusign::DocuSignClient;
use crate::ops::metrics::{self, metrics};
use crate::proxy::resolver::Resolver;
use crate::session::refresh::{Freshness, Refresher};
use crate::session::Session;
use crate::session::{MemoryStore, SessionStore};
use crate::util::secret::Secret;
use crate::web::reply::Reply;
use crate::web::request::{cookie_header, wants_html};
use router::Route;

const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Shared state of the gateway; one instance serves every request.
pub struct Gateway {
    pub auth: Auth,
    refresher: Refresher,
    resolver: Resolver,
}

/// Where a forwarded request goes.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub host: ApiHost,
}

/// What one request learns on its way through the gateway.
pub struct RequestCtx {
    started: Instant,
    route: Route,
    session: Option<Arc<Session>>,
    upstream: Option<Upstream>,
    bearer: Option<Secret>,
    /// Generation of the token pair `bearer` belongs to.
    generation: u64,
    browser: bool,
    /// The one replay after a 401 has been decided.
    replayed: bool,
    /// The error being returned asks pingora for that replay.
    replay_pending: bool,
    /// What to answer when forwarding ends in an error we chose.
    local_reply: Option<Reply>,
    /// When the current upstream attempt was sent.
    upstream_sent: Option<Instant>,
}

impl Gateway {
    pub fn new(cfg: Config) -> Result<Gateway, String> {
        let docusign = Arc::new(DocuSignClient::new(&cfg)?);
        let refresher = Refresher::new(
            docusign.clone(),
            cfg.session.refresh_before_expiry,
            cfg.docusign.request_timeout + Duration::from_secs(5),
        );
        let store = Arc::new(MemoryStore::new(cfg.session.max_sessions));
        let logins = Arc::new(PendingLogins::new(
            cfg.session.login_timeout,
            cfg.session.max_pending_logins,
        ));
        let live = store.clone();
        metrics::register_live_gauge("dsgw_sessions", "Live sessions", move || live.len() as i64);
        let pending = logins.clone();
        metrics::register_live_gauge("dsgw_pending_logins", "Logins in progress", move || {
            pending.len() as i64
        });
        let sessions: Arc<dyn SessionStore> = store;
        let auth = Auth {
            api_tokens: ApiTokens::new(
                cfg.session.secret.expose().as_bytes(),
                &cfg.public_link(""),
                cfg.session.api_token_ttl.as_secs(),
            ),
            sessions,
            logins,
            cookies: CookieCodec::new(&cfg.session),
            policy: HostPolicy {
                allowed: cfg.docusign.allowed_api_hosts.clone(),
                allow_plain_http: cfg.docusign.allow_plain_http,
            },
            docusign,
            cfg: Arc::new(cfg),
        };
        Ok(Gateway {
            auth,
            refresher,
            resolver: Resolver::new(),
        })
    }

    /// `/readyz`: ready when the session store answers (the configuration
    /// was loaded before the gateway was built).
    async fn readiness(&self) -> Reply {
        match tokio::time::timeout(Duration::from_secs(2), self.auth.sessions.count()).await {
            // No session count: anyone may call /readyz (it is in the metrics).
            Ok(_) => Reply::json(200, &json!({ "status": "ready" })),
            Err(_) => Reply::error(503, "not_ready", "The session store does not answer."),
        }
    }

    /// Steps 2 to 4 of the module doc: the session, the account, its host,
    /// a usable token.
    async fn prepare_forward(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<(), Reply> {
        let path = req.uri.path();
        let original = req.uri.path_and_query().map_or(path, |pq| pq.as_str());
        router::check_method(&req.method)?;
        ctx.browser = wants_html(req);
        let session = match self.auth.caller(req).await {
            Caller::Session(session) => session,
            other => return Err(self.auth.login_required_for(&other, ctx.browser, original)),
        };
        let api_path = router::parse_api_path(path).map_err(router::PathError::reply)?;
        let account = match api_path.account {
            Some(id) => session.account(id).ok_or_else(|| {
                Reply::error(
                    403,
                    "account_not_permitted",
                    "This account is not one of the accounts of your DocuSign session.",
                )
            })?,
            None => session.default_account().ok_or_else(|| {
                Reply::error(403, "no_account", "Your DocuSign user has no account.")
            })?,
        };
        let host = account.api_host.clone().map_err(|reason| {
            warn!(account = %account.account_id, %reason, "REST host refused");
            Reply::error(502, "api_host_not_allowed", &reason)
        })?;
        let addr = self
            .resolver
            .resolve(&host.host, host.port)
            .await
            .map_err(|reason| {
                warn!(host = %host.host, %reason, "REST host unreachable");
                Reply::error(502, "upstream_unreachable", &reason)
            })?;
        let tokens = match self.refresher.fresh(&session, None).await {
            Freshness::Ready(tokens) => tokens,
            Freshness::LoginRequired => {
                self.auth.sessions.remove(&session.id).await;
                return Err(self.auth.login_required_for(
                    &Caller::Anonymous,
                    ctx.browser,
                    original,
                ));
            }
            Freshness::Unavailable { retry_after_secs } => {
                return Err(token_unavailable(retry_after_secs));
            }
        };
        ctx.bearer = Some(tokens.set.access_token.clone());
        ctx.generation = tokens.generation;
        ctx.session = Some(session);
        ctx.upstream = Some(Upstream { addr, host });
        Ok(())
    }

    /// Step 6: DocuSign refused the token. Returns `Ok` to pass its answer
    /// through, or an error that replays the request or ends it with
    /// `ctx.local_reply`.
    async fn after_upstream_401(
        &self,
        replayable: bool,
        original: &str,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(session) = ctx.session.clone() else {
            return Ok(());
        };
        ctx.replayed = true;
        let outcome = self.refresher.fresh(&session, Some(ctx.generation)).await;
        if let Freshness::LoginRequired = outcome {
            self.auth.sessions.remove(&session.id).await;
        }
        if !replayable {
            // The session is refreshed for the next call; this one gets DocuSign's own 401.
            return Ok(());
        }
        let mut e = match outcome {
            Freshness::Ready(tokens) => {
                ctx.bearer = Some(tokens.set.access_token.clone());
                ctx.generation = tokens.generation;
                ctx.replay_pending = true;
                metrics().replays.inc();
                info!(session = %log_id(&session.id), "replaying after DocuSign answered 401");
                let mut e = Error::explain(
                    ErrorType::Custom("docusign_401"),
                    "replay with refreshed token",
                );
                e.set_retry(true);
                return Err(e);
            }
            Freshness::LoginRequired => {
                ctx.local_reply = Some(self.auth.login_required_for(
                    &Caller::Anonymous,
                    ctx.browser,
                    original,
                ));
                Error::explain(ErrorType::Custom("login_required"), "refresh token refused")
            }
            Freshness::Unavailable { retry_after_secs } => {
                ctx.local_reply = Some(token_unavailable(retry_after_secs));
                Error::explain(
                    ErrorType::Custom("refresh_unavailable"),
                    "token refresh failed",
                )
            }
        };
        e.set_retry(false);
        Err(e)
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

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: Route::NotFound,
            session: None,
            upstream: None,
            bearer: None,
            generation: 0,
            browser: false,
            replayed: false,
            replay_pending: false,
            local_reply: None,
            upstream_sent: None,
        }
    }

    async fn request_filter(
        &self,
        downstream: &mut Downstream,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        let req = downstream.req_header();
        ctx.route = router::route(req.uri.path(), &self.auth.cfg.docusign.callback_path);
        let reply = match ctx.route {
            Route::Health => Reply::json(200, &json!({ "status": "ok" })),
            Route::Ready => self.readiness().await,
            Route::Login => auth::login(&self.auth, req),
            Route::Callback => auth::callback(&self.auth, req).await,
            Route::SessionInfo => auth::session_info(&self.auth, req).await,
            Route::Logout => auth::logout(&self.auth, req).await,
            Route::Token => auth::mint_token(&self.auth, req).await,
            Route::NotFound => Reply::error(
                404,
                "not_found",
                "The gateway serves /restapi/... and /auth/...",
            ),
            Route::Api => match self.prepare_forward(req, ctx).await {
                Ok(()) => {
                    // Keep up to 64 KiB of the body so a 401 can be replayed.
                    downstream.enable_retry_buffering();
                    return Ok(false);
                }
                Err(reply) => reply,
            },
        };
        reply.send(downstream).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _: &mut Downstream,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(up) = &ctx.upstream else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        let mut peer = HttpPeer::new(up.addr, up.host.tls, up.host.host.clone());
        peer.options.connection_timeout = Some(UPSTREAM_CONNECT_TIMEOUT);
        peer.options.total_connection_timeout = Some(UPSTREAM_CONNECT_TIMEOUT);
        peer.options.read_timeout = Some(UPSTREAM_READ_TIMEOUT);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _: &mut Downstream,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(up), Some(bearer)) = (&ctx.upstream, &ctx.bearer) else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        ctx.upstream_sent = Some(Instant::now());
        upstream_request.insert_header("Host", up.host.authority.as_str())?;
        upstream_request.insert_header("Authorization", format!("Bearer {}", bearer.expose()))?;
        let kept = cookie_header(upstream_request).and_then(|c| self.auth.cookies.strip_own(&c));
        match kept {
            Some(c) => upstream_request.insert_header("Cookie", c)?,
            None => {
                upstream_request.remove_header("Cookie");
            }
        }
        let uri = router::upstream_target(&up.host.path_prefix, &upstream_request.uri)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "bad upstream path"))?;
        upstream_request.set_uri(uri);
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        downstream: &mut Downstream,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(sent), Some(up)) = (ctx.upstream_sent, &ctx.upstream) {
            metrics()
                .upstream_seconds
                .with_label_values(&[up.host.authority.as_str()])
                .observe(sent.elapsed().as_secs_f64());
        }
        self.auth.cookies.strip_own_set_cookies(upstream_response)?;
        if upstream_response.status.as_u16() != 401 || ctx.replayed {
            return Ok(());
        }
        let replayable = !downstream.retry_buffer_truncated();
        let original = downstream.req_header().uri.to_string();
        self.after_upstream_401(replayable, &original, ctx).await
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        downstream: &mut Downstream,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if std::mem::take(&mut ctx.replay_pending) {
            // Our own replay after a refresh: safe for any method, because
            // the body came from the retry buffer and the request was refused.
            return e;
        }
        if !downstream.req_header().method.is_idempotent() || downstream.retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        downstream: &mut Downstream,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        // pingora closes the connection after a failed proxy attempt: say so.
        downstream.set_keepalive(None);
        if let Some(reply) = ctx.local_reply.take() {
            let code = reply.status;
            if downstream.response_written().is_none() {
                let _ = reply.send(downstream).await;
            }
            return FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            };
        }
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && downstream.response_written().is_none() {
            let (error, message) = match code {
                502 => (
                    "upstream_error",
                    "The DocuSign REST host could not be reached or failed.",
                ),
                504 => (
                    "upstream_timeout",
                    "The DocuSign REST host did not answer in time.",
                ),
                400..=499 => ("bad_request", "The request could not be read."),
                _ => (
                    "internal_error",
                    "The gateway failed to handle the request.",
                ),
            };
            let _ = Reply::error(code, error, message).send(downstream).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, downstream: &mut Downstream, e: Option<&Error>, ctx: &mut RequestCtx) {
        let req = downstream.req_header();
        let status = downstream
            .response_written()
            .map_or(0, |r| r.status.as_u16());
        let session = ctx
            .session
            .as_ref()
            .map(|s| log_id(&s.id))
            .unwrap_or_default();
        let upstream = ctx
            .upstream
            .as_ref()
            .map(|u| u.host.authority.as_str())
            .unwrap_or("-");
        let class = match ctx.route {
            Route::Api if ctx.upstream_sent.is_some() => "proxied",
            Route::Api | Route::NotFound => "rejected",
            Route::Health | Route::Ready => "health",
            _ => "auth",
        };
        metrics()
            .requests
            .with_label_values(&[class, status_label(status)])
            .inc();
        info!(
            method = %req.method,
            path = %req.uri.path(),
            status,
            class,
            upstream,
            session = %session,
            duration_ms = ctx.started.elapsed().as_millis() as u64,
            error = e.map(|e| e.etype().as_str()).unwrap_or(""),
            "request"
        );
    }

    fn request_summary(&self, downstream: &Downstream, _ctx: &RequestCtx) -> String {
        // Never the query string: the callback's carries the authorization code.
        let req = downstream.req_header();
        format!("{} {}", req.method, req.uri.path())
    }
}

/// The status as a metric label, without allocating for common codes.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        302 => "302",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        0 => "none",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
