//! Step 6: DocuSign answered 401. The session is refreshed (once, shared
//! with concurrent requests) and the request replayed once with the new
//! token; a body too large to replay gets DocuSign's 401 as it is.

use pingora::{Error, ErrorType, Result};
use tracing::info;

use super::ctx::{Replay, RequestCtx};
use super::Gateway;
use crate::crypto::api_token::SERVICE_SID_PREFIX;
use crate::ops::metrics::metrics;
use crate::session::refresh::Freshness;
use crate::session::Session;
use crate::web::reply::Reply;

impl Gateway {
    /// Returns `Ok` to pass DocuSign's 401 through, or an error that replays
    /// the request (`Replay::Pending`) or ends it with our own answer
    /// (`Replay::Failed`).
    pub(super) async fn after_upstream_401(
        &self,
        replayable: bool,
        original: &str,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(forwarding) = ctx.forwarding.as_mut() else {
            return Ok(());
        };
        ctx.replay = Replay::Done;
        let used = forwarding.session.clone();
        if let Some(name) = used.id.strip_prefix(SERVICE_SID_PREFIX) {
            let outcome = self
                .auth
                .services
                .session(name, Some(used.tokens.generation))
                .await;
            return self.replay_service(replayable, outcome, ctx);
        }
        let outcome = self
            .refresher
            .fresh(&used, Some(used.tokens.generation))
            .await;
        if !replayable || matches!(outcome, Freshness::TooRecent) {
            // The session is refreshed for the next call; this one gets DocuSign's own 401.
            return Ok(());
        }
        let outcome = match outcome {
            Freshness::Ready(session) => {
                forwarding.session = session;
                ctx.replay = Replay::Pending;
                metrics().replays.inc();
                info!(session = %used.log_id(), "replaying after DocuSign answered 401");
                let mut e = Error::explain(
                    ErrorType::Custom("docusign_401"),
                    "replay with refreshed token",
                );
                e.set_retry(true);
                return Err(e);
            }
            other => other,
        };
        let (etype, why) = match outcome {
            Freshness::LoginRequired => ("login_required", "refresh token refused"),
            Freshness::Unavailable { .. } => ("refresh_unavailable", "token refresh failed"),
            _ => ("store_unavailable", "session store unavailable"),
        };
        let browser = forwarding.browser;
        ctx.replay = Replay::Failed(self.not_fresh(outcome, browser, original));
        let mut e = Error::explain(ErrorType::Custom(etype), why);
        e.set_retry(false);
        Err(e)
    }
}

impl Gateway {
    /// Step 6 for a service: a new token was minted (replay with it), or
    /// the mint failed (its answer ends the request).
    fn replay_service(
        &self,
        replayable: bool,
        outcome: std::result::Result<std::sync::Arc<Session>, Reply>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if !replayable {
            return Ok(());
        }
        let Some(forwarding) = ctx.forwarding.as_mut() else {
            return Ok(());
        };
        match outcome {
            Ok(session) => {
                forwarding.session = session;
                ctx.replay = Replay::Pending;
                metrics().replays.inc();
                info!(service = %forwarding.session.id, "replaying after DocuSign answered 401");
                let mut e = Error::explain(
                    ErrorType::Custom("docusign_401"),
                    "replay with a new service token",
                );
                e.set_retry(true);
                Err(e)
            }
            Err(reply) => {
                ctx.replay = Replay::Failed(reply);
                let mut e = Error::explain(
                    ErrorType::Custom("service_token"),
                    "service token unavailable",
                );
                e.set_retry(false);
                Err(e)
            }
        }
    }
}
