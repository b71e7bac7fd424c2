//! The request path, top to bottom: [`Gateway`] is pingora's `ProxyHttp`.
//!
//! For every request (`decide.rs`):
//! 1. `/healthz`, `/readyz`, `/auth/*` and the callback are answered here
//!    (see `auth`); `POST /webhooks/<name>` is read and stored (`webhook`).
//! 2. An API's path needs a method DocuSign uses (else 405), no `Upgrade`
//!    (else 400) and a session: the session cookie, or a gateway token
//!    (`Authorization: Bearer`). Without one: a browser is redirected to
//!    login, any other client (and any bad token) gets 401 `login_required`.
//!    A session store that does not answer: 503 `session_store_unavailable`.
//! 3. The path must follow `router::parse_api_path`'s grammar (else 400
//!    `invalid_path`). The account named in the path must be one of the
//!    session's (else 403); other paths go to the default account. While the
//!    account's last seen DocuSign rate limit is used up (`limits.rs`): 429
//!    `rate_limited`. Its REST host must pass `allowed_api_hosts`, at login
//!    and again under this configuration (else 502), and must resolve (else
//!    502).
//! 4. The session's access token must be usable: inside the refresh window
//!    it is refreshed first (see `session::refresh`); a refused refresh token
//!    ends the session (as in 2), a DocuSign outage without a usable token is
//!    503. Last, the call counts against `limits.session_hourly` (past it:
//!    429 `rate_limited`).
//! 5. The request is forwarded (`upstream.rs`) with `Host` and SNI of that
//!    REST host, the session's DocuSign bearer token and without the
//!    gateway's cookies; the response streams back untouched, except
//!    `Set-Cookie` headers for the gateway's own cookie names (dropped). Its
//!    rate-limit headers are recorded for its account (`limits.rs`).
//! 6. If DocuSign answers 401 (`replay.rs`), the session is refreshed (once,
//!    shared with concurrent requests) and the request replayed once with
//!    the new token; a body too large to replay (over 64 KiB) gets
//!    DocuSign's 401 as it is.
//! 7. The answer when forwarding fails, and the access log (`respond.rs`).
//!
//! Anything else is 404.

mod ctx;
mod decide;
mod limits;
mod replay;
pub mod resolver;
mod respond;
pub mod router;
mod upstream;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session as Downstream};
use pingora::{Error, ErrorType, Result};

pub use ctx::{Forwarding, Replay, RequestCtx, Upstream};
pub use decide::Decision;

use crate::auth::grant::MAX_GRANT_BODY_BYTES;
use crate::auth::pending::PendingLogins;
use crate::auth::service::Services;
use crate::auth::{Auth, OriginPolicy};
use crate::config::{Api, Config};
use crate::crypto::api_token::ApiTokens;
use crate::crypto::cookies::CookieCodec;
use crate::docusign::api_host::{ApiHost, HostPolicy};
use crate::docusign::{AccountServer, ClientError, DocuSignClient};
use crate::ops::metrics::{self, metrics};
use crate::session::ratelimit::{AccountRates, CallCounter, MemoryCallCounter, RedisCallCounter};
use crate::session::redis::{RedisSettings, RedisStore, Target};
use crate::session::refresh::{RefreshPolicy, Refresher};
use crate::session::{MemoryStore, SessionStore};
use crate::util::paths::CONSENT_PATH;
use crate::util::time::{system_clock, Clock};
use crate::web::reply::Reply;
use crate::webhook::Webhooks;
use resolver::Resolver;
use router::Route;

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    DocuSignClient(#[from] ClientError),
    #[error("session store: {0}")]
    SessionStore(String),
}

/// What the gateway is built from: everything it talks to, injectable.
pub struct Parts {
    pub sessions: Arc<dyn SessionStore>,
    pub account_server: Arc<dyn AccountServer>,
    pub clock: Arc<dyn Clock>,
    /// Counts calls per session for `limits.session_hourly`.
    pub calls: Arc<dyn CallCounter>,
    /// Where webhook messages are kept (memory or the session store's Redis).
    pub webhooks: Arc<Webhooks>,
}

/// Shared state of the gateway; one instance serves every request.
pub struct Gateway {
    pub auth: Auth,
    refresher: Refresher,
    resolver: Resolver,
    calls: Arc<dyn CallCounter>,
    fixed_hosts: FixedHosts,
    /// `[[webhook]]`: Connect messages received here.
    webhooks: Arc<Webhooks>,
}

/// The hosts of the APIs that do not live on an account's REST host.
struct FixedHosts {
    /// `docusign.admin_api_url`.
    admin: Arc<ApiHost>,
    /// `docusign.platform_api_url`.
    platform: Arc<ApiHost>,
}

impl FixedHosts {
    fn of(cfg: &Config) -> FixedHosts {
        let apis = &cfg.docusign.apis;
        FixedHosts {
            admin: Arc::new(ApiHost::configured(
                &apis.admin_api_url,
                Some("/management"),
            )),
            platform: Arc::new(ApiHost::configured(&apis.platform_api_url, None)),
        }
    }
}

impl Gateway {
    /// The gateway of a configuration: DocuSign's account server, sessions
    /// in memory or in Redis (`session.store`), the system clock.
    pub fn new(cfg: Config) -> Result<Gateway, GatewayError> {
        let clock = system_clock();
        let (store, calls, redis) = session_store(&cfg, clock.clone())?;
        let webhooks = Arc::new(Webhooks::new(&cfg, redis.as_ref()));
        let parts = Parts {
            sessions: store,
            account_server: Arc::new(DocuSignClient::new(&cfg)?),
            calls,
            clock,
            webhooks,
        };
        Ok(Gateway::from_parts(cfg, parts))
    }

    pub fn from_parts(cfg: Config, parts: Parts) -> Gateway {
        let policy = refresh_policy(&cfg);
        let refresher = Refresher::new(
            parts.account_server.clone(),
            parts.sessions.clone(),
            parts.clock.clone(),
            policy,
        );
        let logins = Arc::new(PendingLogins::new(
            cfg.session.login_timeout,
            cfg.session.max_pending_logins,
            parts.clock.clone(),
        ));
        let pending = logins.clone();
        metrics::register_live_gauge("dsgw_pending_logins", "Logins in progress", move || {
            pending.len() as i64
        });
        let host_policy = HostPolicy {
            allowed: cfg.docusign.allowed_api_hosts.clone(),
            allow_plain_http: cfg.docusign.allow_plain_http,
        };
        let services = Services::new(
            &cfg.services,
            parts.account_server.clone(),
            host_policy.clone(),
            parts.clock.clone(),
            policy.window,
            policy.wait_limit,
            cfg.public_link(&format!("{CONSENT_PATH}?service=")),
            cfg.access.clone(),
        );
        let fixed_hosts = FixedHosts::of(&cfg);
        let auth = Auth {
            api_tokens: ApiTokens::new(
                cfg.session.secret.expose().as_bytes(),
                &cfg.public_link(""),
                cfg.session.api_token_ttl.as_secs(),
            ),
            sessions: parts.sessions,
            logins,
            cookies: CookieCodec::new(&cfg.session),
            policy: host_policy,
            services,
            docusign: parts.account_server,
            rates: Arc::new(AccountRates::new(
                cfg.limits.hourly_reserve,
                parts.clock.clone(),
            )),
            clock: parts.clock,
            origins: OriginPolicy::new(&cfg.server.public_url, &cfg.server.allowed_origins),
            cfg: Arc::new(cfg),
        };
        Gateway {
            auth,
            refresher,
            resolver: Resolver::new(),
            calls: parts.calls,
            fixed_hosts,
            webhooks: parts.webhooks,
        }
    }

    /// The webhooks, for their delivery service.
    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }
}

/// How long a request waits for a refresh, and how long a refresh lease
/// lives without renewal: the token call's timeout and a margin.
fn refresh_wait(cfg: &Config) -> Duration {
    cfg.docusign.request_timeout + Duration::from_secs(5)
}

fn refresh_policy(cfg: &Config) -> RefreshPolicy {
    RefreshPolicy {
        window: cfg.session.refresh_before_expiry,
        wait_limit: refresh_wait(cfg),
        min_interval: cfg.session.min_refresh_interval,
        max_in_flight: cfg.docusign.max_refreshes_in_flight,
    }
}

/// A session store, the call counter that shares its storage, and its
/// Redis (which the webhooks use too).
type Stores = (
    Arc<dyn SessionStore>,
    Arc<dyn CallCounter>,
    Option<crate::session::redis::RedisBackend>,
);

/// The configured session store, with its `dsgw_sessions` gauge, and the
/// counter of `limits.session_hourly` in the same place (memory or Redis).
/// A Redis store is created without waiting for Redis.
fn session_store(cfg: &Config, clock: Arc<dyn Clock>) -> Result<Stores, GatewayError> {
    let Some(redis) = &cfg.redis else {
        let store = Arc::new(MemoryStore::new(
            cfg.session.max_sessions,
            cfg.session.max_sessions_per_user,
            clock.clone(),
        ));
        let live = store.clone();
        metrics::register_live_gauge("dsgw_sessions", "Live sessions", move || live.len() as i64);
        let calls = MemoryCallCounter::new(cfg.session.max_sessions, clock);
        return Ok((store, Arc::new(calls), None));
    };
    let settings = RedisSettings {
        target: Target::from(&redis.target),
        key_prefix: redis.key_prefix.clone(),
        connect_timeout: redis.connect_timeout,
        command_timeout: redis.command_timeout,
        lease_ttl: refresh_wait(cfg),
        cache_capacity: cfg.session.max_sessions,
        secret: cfg.session.secret.expose().as_bytes().to_vec(),
        previous_secret: None,
    };
    let store = RedisStore::start(settings, clock.clone())
        .map_err(|e| GatewayError::SessionStore(e.to_string()))?;
    // `limits.session_hourly` is counted in the same Redis, for every instance.
    let calls = Arc::new(RedisCallCounter::new(store.backend().clone(), clock));
    let backend = store.backend().clone();
    let store = Arc::new(store);
    let live = store.clone();
    metrics::register_live_gauge(
        "dsgw_sessions",
        "Sessions (approximate with the Redis store: keys in Redis)",
        move || live.approx_count(),
    );
    Ok((store, calls, Some(backend)))
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    /// The head is read: the connection has a request in progress.
    async fn early_request_filter(
        &self,
        downstream: &mut Downstream,
        _: &mut RequestCtx,
    ) -> Result<()> {
        crate::web::conns::request_started(downstream, self.auth.cfg.server.idle_timeout);
        Ok(())
    }

    /// Steps 1 to 4.
    async fn request_filter(
        &self,
        downstream: &mut Downstream,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        let path = downstream.req_header().uri.path();
        let docusign = &self.auth.cfg.docusign;
        ctx.route = router::route(path, &docusign.callback_path, docusign.apis.enabled);
        if ctx.route == Route::Webhook {
            let reply = self.webhook(downstream).await;
            reply.send(downstream).await?;
            return Ok(true);
        }
        let body = match ctx.route {
            Route::Token => {
                match read_body(downstream, MAX_GRANT_BODY_BYTES, SMALL_BODY_TIMEOUT).await {
                    Ok(body) => body,
                    Err(reply) => {
                        reply.send(downstream).await?;
                        return Ok(true);
                    }
                }
            }
            _ => Bytes::new(),
        };
        let req = downstream.req_header();
        match self.decide(ctx.route, req, &body).await {
            Decision::Forward(forwarding) => {
                ctx.forwarding = Some(forwarding);
                // Keep up to 64 KiB of the body so a 401 can be replayed.
                downstream.enable_retry_buffering();
                Ok(false)
            }
            Decision::Answer(reply) => {
                reply.send(downstream).await?;
                Ok(true)
            }
        }
    }

    /// Step 5: where.
    async fn upstream_peer(
        &self,
        _: &mut Downstream,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        match &ctx.forwarding {
            Some(f) => Ok(Box::new(upstream::peer(f))),
            None => Error::e_explain(ErrorType::InternalError, "no upstream chosen"),
        }
    }

    /// Step 5: what.
    async fn upstream_request_filter(
        &self,
        _: &mut Downstream,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(f) = &ctx.forwarding else {
            return Error::e_explain(ErrorType::InternalError, "no upstream chosen");
        };
        ctx.upstream_sent = Some(Instant::now());
        upstream::rewrite(upstream_request, f, &self.auth.cookies)
    }

    /// Step 5: the answer's rate-limit headers; step 6: a 401 from DocuSign.
    async fn upstream_response_filter(
        &self,
        downstream: &mut Downstream,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(sent), Some(f)) = (ctx.upstream_sent, &ctx.forwarding) {
            let host = f.upstream.host.authority.as_str();
            metrics().upstream_time(host, sent.elapsed().as_secs_f64());
        }
        self.auth.cookies.strip_own_set_cookies(upstream_response)?;
        if let Some(f) = ctx.forwarding.as_ref().filter(|f| f.api == Api::Esignature) {
            self.observe_rates(f, upstream_response);
        }
        if upstream_response.status.as_u16() != 401 || !matches!(ctx.replay, Replay::NotTried) {
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
        if matches!(ctx.replay, Replay::Pending) {
            // Our own replay after a refresh: safe for any method, because
            // the body came from the retry buffer and the request was refused.
            ctx.replay = Replay::Done;
            return e;
        }
        if !downstream.req_header().method.is_idempotent() || downstream.retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    /// Step 7.
    async fn fail_to_proxy(
        &self,
        downstream: &mut Downstream,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        // pingora closes the connection after a failed proxy attempt: say so.
        downstream.set_keepalive(None);
        let (code, reply) = respond::failure_reply(e, ctx);
        if let Some(reply) = reply {
            if downstream.response_written().is_none() {
                let _ = reply.send(downstream).await;
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, downstream: &mut Downstream, e: Option<&Error>, ctx: &mut RequestCtx) {
        respond::log_request(downstream, e, ctx, self.auth.cfg.log.access);
        crate::web::conns::request_ended(downstream);
    }

    fn request_summary(&self, downstream: &Downstream, _ctx: &RequestCtx) -> String {
        // Never the query string: the callback's carries the authorization code.
        let req = downstream.req_header();
        format!("{} {}", req.method, req.uri.path())
    }
}

/// How long the body of a request the gateway reads itself may take.
const SMALL_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a webhook message's body may take (up to `max_body_bytes`).
const WEBHOOK_BODY_TIMEOUT: Duration = Duration::from_secs(60);

impl Gateway {
    /// `POST /webhooks/<name>`: read whole (bounded by the webhook's
    /// `max_body_bytes`), verified and stored (`webhook`).
    async fn webhook(&self, downstream: &mut Downstream) -> Reply {
        let req = downstream.req_header();
        if req.method != http::Method::POST {
            return Reply::error(
                405,
                "method_not_allowed",
                "Connect posts its messages: POST only.",
            )
            .header("Allow", "POST");
        }
        let Some(hook) = self.webhooks.of_path(req.uri.path()).cloned() else {
            return not_found();
        };
        let limit = hook.cfg.max_body_bytes;
        let declared = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return crate::webhook::too_large(&hook);
        }
        match read_body(downstream, limit, WEBHOOK_BODY_TIMEOUT).await {
            Ok(body) => hook.receive(downstream.req_header(), body).await,
            Err(reply) if reply.status == 413 => crate::webhook::too_large(&hook),
            Err(reply) => reply,
        }
    }
}

/// The 404 of a path the gateway neither answers nor forwards.
pub(crate) fn not_found() -> Reply {
    Reply::error(
        404,
        "not_found",
        "The gateway serves /auth/..., /webhooks/<name> and the paths of the DocuSign APIs it is configured for (docusign.apis).",
    )
}

/// The whole body of a request the gateway answers itself (the JSON of
/// `POST /auth/token`, a webhook message), at most `limit` bytes: 413 past
/// it, 408 when it does not arrive within `timeout`.
async fn read_body(
    downstream: &mut Downstream,
    limit: usize,
    timeout: Duration,
) -> std::result::Result<Bytes, Reply> {
    let too_large = || {
        Reply::error(
            413,
            "body_too_large",
            &format!("The body of this request may have at most {limit} bytes."),
        )
        .header("Connection", "close")
    };
    let read =
        async {
            let mut body = BytesMut::new();
            while let Some(chunk) = downstream.read_request_body().await.map_err(|_| {
                Reply::error(400, "bad_request", "The request body could not be read.")
            })? {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body.freeze())
        };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(Reply::error(
            408,
            "request_timeout",
            "The request body did not arrive in time.",
        )
        .header("Connection", "close")),
    }
}
