//! DocuSign's rate limits on the request path: step 3's account check and
//! step 4's session count (before forwarding), and reading every REST
//! answer's rate-limit headers (step 5). The state lives in
//! `session::ratelimit`, where `/auth/session` reads it too.

use pingora::http::ResponseHeader;
use serde_json::json;
use tracing::warn;

use super::ctx::Forwarding;
use super::Gateway;
use crate::ops::metrics::{metrics, Label, RateLimitReason};
use crate::session::ratelimit::{CallCount, RateHeaders};
use crate::session::{Account, Session};
use crate::web::reply::Reply;

impl Gateway {
    /// Step 3: 429 while the account's last seen hourly remaining is at or
    /// below `limits.hourly_reserve`, or its burst is used up.
    pub(super) fn within_account_limits(&self, account: &Account) -> Result<(), Reply> {
        let Some(block) = self.auth.rates.check(&account.account_id) else {
            return Ok(());
        };
        let label = account.account_id.to_ascii_lowercase();
        metrics().ratelimited(&label, block.reason);
        let now = self.auth.clock.now_unix();
        Err(rate_limited(block.reason, block.reset_at, now))
    }

    /// Step 4, last: counts the call against `limits.session_hourly` (not
    /// asked when that is 0). A counter that does not answer lets the call
    /// through: the limit shares DocuSign's budget fairly, it guards nothing.
    pub(super) async fn within_session_limit(
        &self,
        session: &Session,
        account: &Account,
    ) -> Result<(), Reply> {
        let limit = self.auth.cfg.limits.session_hourly;
        if limit == 0 {
            return Ok(());
        }
        match self.calls.count(&session.id, limit).await {
            Ok(CallCount::Counted) => Ok(()),
            Ok(CallCount::Refused { retry_after_secs }) => {
                let label = account.account_id.to_ascii_lowercase();
                metrics().ratelimited(&label, RateLimitReason::SessionHourly);
                let now = self.auth.clock.now_unix();
                let reason = RateLimitReason::SessionHourly;
                Err(rate_limited(reason, now + retry_after_secs, now))
            }
            Err(e) => {
                warn!(session = %session.log_id(), error = %e, "session call count unavailable; call forwarded");
                Ok(())
            }
        }
    }

    /// Step 5: what an answer says about its account's limits (the headers
    /// pass through untouched).
    pub(super) fn observe_rates(&self, f: &Forwarding, answer: &ResponseHeader) {
        let Some(account) = &f.account_id else {
            return;
        };
        let seen = RateHeaders::parse(&answer.headers, self.auth.clock.now_unix());
        self.auth
            .rates
            .observe(account, &seen, answer.status.as_u16());
    }
}

/// The gateway's own 429: nothing was forwarded.
fn rate_limited(reason: RateLimitReason, reset_at: u64, now: u64) -> Reply {
    let retry_after = reset_at.saturating_sub(now).max(1);
    let message = match reason {
        RateLimitReason::DocusignHourly => {
            "This DocuSign account's hourly API limit is used up (or down to the gateway's reserve) until reset_at."
        }
        RateLimitReason::DocusignBurst => {
            "This DocuSign account's 30-second burst limit is used up; retry after Retry-After seconds."
        }
        _ => "This session made as many DocuSign calls as the gateway allows per hour; retry after Retry-After seconds.",
    };
    Reply::json(
        429,
        &json!({
            "error": "rate_limited",
            "reason": reason.as_str(),
            "reset_at": reset_at,
            "message": message,
        }),
    )
    .header("Retry-After", retry_after.to_string())
    .no_store()
}
