//! Service mode: back-end services (`[[service]]`) call DocuSign as one
//! DocuSign user through the JWT grant. Each service has one in-process
//! session (id `service:<name>`, never in the session store) whose tokens
//! come from a signed assertion instead of a refresh token: minted on first
//! use and again inside `refresh_before_expiry`, or after DocuSign refused
//! the token (401), one mint at a time per service. `/oauth/userinfo` is read
//! once per token, for the accounts and their REST hosts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde_json::json;
use tracing::{info, warn};

use crate::config::{AccessConfig, ServiceConfig};
use crate::crypto::api_token::service_sid;
use crate::docusign::api_host::HostPolicy;
use crate::docusign::{AccountServer, OAuthError};
use crate::ops::audit::{self, Event};
use crate::ops::metrics::{metrics, Label, MintOutcome};
use crate::session::Session;
use crate::util::time::Clock;
use crate::web::reply::Reply;

/// Seconds a client is asked to wait while DocuSign's token endpoint fails.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// How long a refused grant (or a failing token endpoint) is answered from
/// memory before DocuSign is asked again.
const FAILURE_HOLD_SECS: u64 = 5;

struct Entry {
    cfg: ServiceConfig,
    current: RwLock<Option<Arc<Session>>>,
    mint: tokio::sync::Mutex<()>,
    /// The answer of the last failed grant and until when it stands.
    failure: Mutex<Option<(u64, Reply)>>,
    /// DocuSign's code of the last failed grant: the same failure again is
    /// not logged again (until a grant succeeds).
    failing: Mutex<Option<String>>,
}

/// Every configured service and its current session.
pub struct Services {
    entries: HashMap<String, Entry>,
    docusign: Arc<dyn AccountServer>,
    policy: HostPolicy,
    clock: Arc<dyn Clock>,
    window_secs: u64,
    wait_limit: Duration,
    /// `<public_url>/auth/consent?service=`
    consent_link: String,
    /// The `[access]` policy a service's user and accounts must pass.
    access: AccessConfig,
}

impl Services {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        services: &[ServiceConfig],
        docusign: Arc<dyn AccountServer>,
        policy: HostPolicy,
        clock: Arc<dyn Clock>,
        window: Duration,
        wait_limit: Duration,
        consent_link: String,
        access: AccessConfig,
    ) -> Self {
        let entries = services
            .iter()
            .map(|cfg| {
                let entry = Entry {
                    cfg: cfg.clone(),
                    current: RwLock::new(None),
                    mint: tokio::sync::Mutex::new(()),
                    failure: Mutex::new(None),
                    failing: Mutex::new(None),
                };
                (cfg.name.clone(), entry)
            })
            .collect();
        Services {
            entries,
            docusign,
            policy,
            clock,
            window_secs: window.as_secs(),
            wait_limit,
            consent_link,
            access,
        }
    }

    /// The service's configuration, if it is configured.
    pub fn config(&self, name: &str) -> Option<&ServiceConfig> {
        self.entries.get(name).map(|e| &e.cfg)
    }

    fn usable(&self, s: &Session, failed_generation: Option<u64>) -> bool {
        failed_generation != Some(s.tokens.generation)
            && s.tokens.expires_at > self.clock.now_unix().saturating_add(self.window_secs)
    }

    fn current(&self, entry: &Entry, failed_generation: Option<u64>) -> Option<Arc<Session>> {
        let current = entry.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|s| self.usable(s, failed_generation))
            .cloned()
    }

    /// The current session if its token has not expired and DocuSign did
    /// not refuse it: what a request gets while no new token can be had.
    fn still_valid(&self, entry: &Entry, failed_generation: Option<u64>) -> Option<Arc<Session>> {
        let now = self.clock.now_unix();
        let current = entry.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|s| failed_generation != Some(s.tokens.generation) && s.tokens.expires_at > now)
            .cloned()
    }

    /// The service's session with a usable token: the current one, or a new
    /// one after a mint. `failed_generation` is the generation DocuSign just
    /// refused with 401, if any. The error is the answer for the client.
    pub async fn session(
        &self,
        name: &str,
        failed_generation: Option<u64>,
    ) -> Result<Arc<Session>, Reply> {
        let entry = self.entries.get(name).ok_or_else(unknown_service)?;
        if let Some(s) = self.current(entry, failed_generation) {
            return Ok(s);
        }
        let _guard = tokio::time::timeout(self.wait_limit, entry.mint.lock())
            .await
            .map_err(|_| unavailable(1))?;
        // Whoever held the lock may have minted meanwhile, or failed.
        if let Some(s) = self.current(entry, failed_generation) {
            return Ok(s);
        }
        let now = self.clock.now_unix();
        let held = lock(&entry.failure)
            .as_ref()
            .filter(|(until, _)| now < *until)
            .map(|(_, reply)| reply.clone());
        if let Some(reply) = held {
            return self.still_valid(entry, failed_generation).ok_or(reply);
        }
        let session = match self.mint(entry).await {
            Ok(session) => session,
            Err(reply) => {
                if reply.status != 403 {
                    *lock(&entry.failure) = Some((now + FAILURE_HOLD_SECS, reply.clone()));
                }
                // A token that still works is used until it expires.
                return self.still_valid(entry, failed_generation).ok_or(reply);
            }
        };
        *lock(&entry.failure) = None;
        *lock(&entry.failing) = None;
        let previous = entry.current.read().map(|c| c.clone()).ok().flatten();
        let mut session = session;
        session.tokens.generation = previous.map_or(0, |p| p.tokens.generation + 1);
        let session = Arc::new(session);
        *entry.current.write().unwrap_or_else(|p| p.into_inner()) = Some(session.clone());
        Ok(session)
    }

    /// One JWT grant and the user's accounts.
    async fn mint(&self, entry: &Entry) -> Result<Session, Reply> {
        let cfg = &entry.cfg;
        let answer = self
            .docusign
            .jwt_grant(&cfg.user_id, &cfg.scopes, &cfg.key)
            .await;
        let tokens = answer.map_err(|e| self.failed(entry, &e))?;
        let mut info = self
            .docusign
            .userinfo(&tokens.access_token)
            .await
            .map_err(|e| self.failed(entry, &e))?;
        if let Err(refusal) = super::policy::admit(&self.access, &mut info) {
            // The refused user's tokens go no further: dropped, unstored.
            drop(tokens);
            warn!(service = %cfg.name, reason = refusal.as_str(), "service refused by the access policy");
            return Err(Reply::error(
                403,
                "access_denied",
                &format!("The gateway's access policy does not admit the DocuSign user or accounts of service {}.", cfg.name),
            )
            .no_store());
        }
        let now = self.clock.now_unix();
        metrics().service_minted(&cfg.name, MintOutcome::Ok);
        info!(service = %cfg.name, outcome = "ok", "service token minted");
        let accounts: Vec<&str> = info
            .accounts
            .iter()
            .map(|a| a.account_id.as_str())
            .collect();
        audit::emit(
            Event::new("service_token_minted")
                .with("service", cfg.name.as_str())
                .with("user", info.sub.as_str())
                .with("accounts", accounts)
                .with("expires_at", tokens.expires_at),
        );
        let ttl = tokens.expires_at.saturating_sub(now);
        Ok(Session::new(info, tokens, &self.policy, ttl, now).renamed(service_sid(&cfg.name)))
    }

    /// A failed grant: counted, logged once until a grant succeeds (never
    /// the assertion), and the client's answer.
    fn failed(&self, entry: &Entry, e: &OAuthError) -> Reply {
        let (reply, outcome) = self.refused(&entry.cfg, e);
        metrics().service_minted(&entry.cfg.name, outcome);
        let (code, description) = match e {
            OAuthError::InvalidGrant(d) => ("invalid_grant", d.as_deref()),
            OAuthError::Rejected { error, description } => (error.as_str(), description.as_deref()),
            OAuthError::Unavailable(why) => ("unavailable", Some(why.as_str())),
        };
        let seen = format!("{code} {}", description.unwrap_or(""));
        if lock(&entry.failing).replace(seen.clone()).as_ref() != Some(&seen) {
            warn!(service = %entry.cfg.name, outcome = outcome.as_str(), error = code, description = description.unwrap_or(""), "service token not minted");
        }
        reply
    }

    /// The client's answer for a failed grant.
    fn refused(&self, cfg: &ServiceConfig, e: &OAuthError) -> (Reply, MintOutcome) {
        let code = match e {
            OAuthError::Rejected { error, .. } if error == "consent_required" => {
                let consent = Reply::json(
                    403,
                    &json!({
                        "error": "consent_required",
                        "message": format!("The DocuSign user of service {} has not consented to impersonation by the integration key. Open consent_url in a browser as that user (or an admin) and grant it.", cfg.name),
                        "consent_url": format!("{}{}", self.consent_link, cfg.name),
                    }),
                )
                .no_store();
                return (consent, MintOutcome::ConsentRequired);
            }
            OAuthError::Unavailable(_) => {
                return (
                    unavailable(UNAVAILABLE_RETRY_SECS),
                    MintOutcome::Unavailable,
                )
            }
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::Rejected { error, .. } => error.as_str(),
        };
        let refused = Reply::json(
                    502,
                    &json!({
                        "error": "service_auth_failed",
                        "service": cfg.name,
                        "message": format!("DocuSign refused the JWT grant of service {} ({code}). Check the integration key's RSA public key and the user id.", cfg.name),
                    }),
                )
                .no_store();
        (refused, MintOutcome::Refused)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unknown_service() -> Reply {
    Reply::error(
        401,
        "login_required",
        "The gateway token names a service that is not configured.",
    )
    .header(
        "WWW-Authenticate",
        "Bearer realm=\"docusign-gateway\", error=\"invalid_token\"",
    )
    .no_store()
}

/// 503 while DocuSign's token endpoint is failing.
fn unavailable(retry_after_secs: u64) -> Reply {
    Reply::error(
        503,
        "docusign_unavailable",
        "A DocuSign access token for the service could not be obtained. Retry later.",
    )
    .header("Retry-After", retry_after_secs.to_string())
    .no_store()
}
