//! Token lifecycle: keeps a session's DocuSign access token usable.
//!
//! [`Refresher::fresh`] is asked before forwarding (is the token inside the
//! refresh window?) and after DocuSign answered 401 (the token that request
//! used is dead). The session itself is data; the coordination lives here:
//! per session, one refresh at a time in this process (a [`Flight`]: a lock,
//! and the back-off after failures). A caller that got the lock re-reads the
//! session from the store (another refresh may have landed), and the new pair
//! is committed with a compare-and-set on the generation, so a rotating
//! refresh token is never sent twice. The refresh runs in its own task, so a
//! client that hangs up cannot lose a rotated token.
//!
//! Outcomes: `invalid_grant` ends the session (log in again); any other
//! failure keeps the session and its refresh token, backs off exponentially
//! and says when to retry, while a still-valid access token keeps being used.
//! A store that does not answer never ends a session.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::{OwnedMutexGuard, Semaphore};
use tracing::{info, warn};

use super::model::Session;
use super::store::{Lease, SessionStore, StoreError, TokenSwap};
use crate::docusign::{AccountServer, OAuthError, TokenSet};
use crate::ops::audit::{self, Event};
use crate::ops::metrics::{metrics, RefreshOutcome};
use crate::util::ids::{log_id, LogId};
use crate::util::time::Clock;

const BACKOFF_FIRST_MS: u64 = 1_000;
const BACKOFF_MAX_MS: u64 = 30_000;
/// Sessions with a refresh in flight or backing off that are tracked at once;
/// past it, finished entries are dropped (they hold no token).
const MAX_FLIGHTS: usize = 100_000;
/// Tries to store a refreshed pair while the store does not answer, and the
/// first wait between them (doubling).
const COMMIT_ATTEMPTS: u32 = 4;
const COMMIT_RETRY_FIRST_MS: u64 = 100;

/// What a request may do with its session's tokens.
#[derive(Debug)]
pub enum Freshness {
    /// Use this session's tokens.
    Ready(Arc<Session>),
    /// The refresh token is gone or refused: the session is over.
    LoginRequired,
    /// No usable access token now; try again after this many seconds.
    Unavailable { retry_after_secs: u64 },
    /// The session store did not answer; the session is kept.
    StoreUnavailable,
    /// DocuSign refused a token younger than the minimum refresh interval:
    /// no new grant for it (its 401 passes through).
    TooRecent,
}

/// When and how long the refresher acts.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Tokens expiring within this are refreshed before use.
    pub window: Duration,
    /// The longest a request waits for another request's refresh.
    pub wait_limit: Duration,
    /// A DocuSign 401 on a token younger than this causes no refresh.
    pub min_interval: Duration,
    /// Refresh grants running at once in this process, at most
    /// (`docusign.max_refreshes_in_flight`): a storm of expiring sessions
    /// queues for turns instead of flooding DocuSign's token endpoint.
    pub max_in_flight: usize,
}

/// One session's refresh coordination in this process.
#[derive(Default)]
struct Flight {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Refreshes that failed in a row for a transient reason.
    failures: AtomicU32,
    /// No refresh is tried before this time (Unix ms): back-off.
    not_before_ms: AtomicU64,
}

pub struct Refresher {
    endpoint: Arc<dyn AccountServer>,
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    window_secs: u64,
    wait_limit: Duration,
    min_interval_secs: u64,
    flights: DashMap<String, Arc<Flight>>,
    /// One permit per refresh grant that may run (`max_in_flight`).
    turns: Arc<Semaphore>,
}

impl Refresher {
    pub fn new(
        endpoint: Arc<dyn AccountServer>,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        policy: RefreshPolicy,
    ) -> Self {
        Refresher {
            endpoint,
            store,
            clock,
            window_secs: policy.window.as_secs(),
            wait_limit: policy.wait_limit,
            min_interval_secs: policy.min_interval.as_secs(),
            flights: DashMap::new(),
            turns: Arc::new(Semaphore::new(policy.max_in_flight.max(1))),
        }
    }

    /// A 401 on a pair obtained less than the minimum interval ago, that is
    /// not about to expire anyway.
    fn too_recent(&self, s: &Session, failed_generation: Option<u64>) -> bool {
        let now = self.clock.now_unix();
        failed_generation == Some(s.tokens.generation)
            && s.tokens.expires_at > now.saturating_add(self.window_secs)
            && now < s.tokens.obtained_at.saturating_add(self.min_interval_secs)
    }

    fn needs_refresh(&self, s: &Session, failed_generation: Option<u64>) -> bool {
        failed_generation == Some(s.tokens.generation)
            || s.tokens.expires_at <= self.clock.now_unix().saturating_add(self.window_secs)
    }

    fn usable(&self, s: &Session, failed_generation: Option<u64>) -> bool {
        failed_generation != Some(s.tokens.generation)
            && s.tokens.expires_at > self.clock.now_unix()
    }

    /// What to answer when no refresh can run now: the current token if it
    /// still works, else `otherwise`.
    fn fallback(
        &self,
        s: &Arc<Session>,
        failed_generation: Option<u64>,
        otherwise: Freshness,
    ) -> Freshness {
        if self.usable(s, failed_generation) {
            Freshness::Ready(s.clone())
        } else {
            otherwise
        }
    }

    fn flight(&self, id: &str) -> Arc<Flight> {
        if self.flights.len() >= MAX_FLIGHTS {
            let now = self.clock.now_millis();
            self.flights.retain(|_, f| {
                Arc::strong_count(f) > 1 || f.not_before_ms.load(Ordering::Acquire) > now
            });
        }
        self.flights.entry(id.to_string()).or_default().clone()
    }

    /// Tokens to forward with. `failed_generation` is the generation of the
    /// pair DocuSign just refused with 401, if any.
    pub async fn fresh(&self, session: &Arc<Session>, failed_generation: Option<u64>) -> Freshness {
        if !self.needs_refresh(session, failed_generation) {
            return Freshness::Ready(session.clone());
        }
        let flight = self.flight(&session.id);
        let guard =
            match tokio::time::timeout(self.wait_limit, flight.lock.clone().lock_owned()).await {
                Ok(guard) => guard,
                Err(_) => {
                    warn!(session = %session.log_id(), "gave up waiting for a token refresh");
                    let busy = Freshness::Unavailable {
                        retry_after_secs: 1,
                    };
                    return self.fallback(session, failed_generation, busy);
                }
            };
        // Whoever held the lock may have refreshed (or ended the session).
        let current = match self.store.get(&session.id).await {
            Ok(Some(current)) => current,
            Ok(None) => return Freshness::LoginRequired,
            Err(e) => {
                warn!(session = %session.log_id(), error = %e, "session store unavailable before a refresh");
                return self.fallback(session, failed_generation, Freshness::StoreUnavailable);
            }
        };
        if !self.needs_refresh(&current, failed_generation) {
            return Freshness::Ready(current);
        }
        if self.too_recent(&current, failed_generation) {
            return Freshness::TooRecent;
        }
        let now_ms = self.clock.now_millis();
        let not_before = flight.not_before_ms.load(Ordering::Acquire);
        if now_ms < not_before {
            let retry_after_secs = (not_before - now_ms).div_ceil(1000).max(1);
            let wait = Freshness::Unavailable { retry_after_secs };
            return self.fallback(&current, failed_generation, wait);
        }
        let outcome = self.refresh_in_task(current.clone(), flight, guard).await;
        match outcome {
            Freshness::Unavailable { .. } | Freshness::StoreUnavailable => {
                self.fallback(&current, failed_generation, outcome)
            }
            Freshness::Ready(_) | Freshness::LoginRequired | Freshness::TooRecent => {
                self.flights
                    .remove_if(&current.id, |_, f| f.failures.load(Ordering::Acquire) == 0);
                outcome
            }
        }
    }

    /// Runs the refresh grant and stores its outcome in a task of its own,
    /// which finishes even if the request that started it is dropped.
    async fn refresh_in_task(
        &self,
        current: Arc<Session>,
        flight: Arc<Flight>,
        guard: OwnedMutexGuard<()>,
    ) -> Freshness {
        let job = RefreshJob {
            _guard: guard,
            wait_limit: self.wait_limit,
            endpoint: self.endpoint.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            flight,
            turns: self.turns.clone(),
        };
        match tokio::spawn(job.run(current)).await {
            Ok(outcome) => outcome,
            Err(_) => Freshness::Unavailable {
                retry_after_secs: 1,
            },
        }
    }
}

/// One refresh grant and its commit, holding the session's refresh lock
/// (and the store's lease) until it is done.
struct RefreshJob {
    _guard: OwnedMutexGuard<()>,
    wait_limit: Duration,
    endpoint: Arc<dyn AccountServer>,
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    flight: Arc<Flight>,
    turns: Arc<Semaphore>,
}

impl RefreshJob {
    async fn run(self, current: Arc<Session>) -> Freshness {
        let log = current.log_id();
        let Some(refresh_token) = current.tokens.refresh_token() else {
            metrics().refreshed(RefreshOutcome::MissingRefresh);
            info!(session = %log, outcome = "missing_refresh", "token refresh");
            return self.end_session(&current.id).await;
        };
        // A turn among `max_in_flight` (held to the end: lease, grant and
        // commit); no turn within the wait limit is a retry-later, no failure.
        let turn = tokio::time::timeout(self.wait_limit, self.turns.clone().acquire_owned()).await;
        let Ok(Ok(_turn)) = turn else {
            warn!(session = %log, "no refresh turn within the wait limit (docusign.max_refreshes_in_flight)");
            return Freshness::Unavailable {
                retry_after_secs: 1,
            };
        };
        // Across instances: one lease holder at a time; after it, re-read.
        let lease = match self.store.acquire_lease(&current.id, self.wait_limit).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return self.after_busy_lease(&current).await,
            Err(e) => {
                warn!(session = %log, error = %e, "refresh lease unavailable");
                return Freshness::StoreUnavailable;
            }
        };
        match self.store.get(&current.id).await {
            Ok(Some(s)) if s.tokens.generation != current.tokens.generation => {
                self.release(lease).await;
                return Freshness::Ready(s);
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                self.release(lease).await;
                return Freshness::LoginRequired;
            }
            Err(_) => {
                self.release(lease).await;
                return Freshness::StoreUnavailable;
            }
        }
        let started = Instant::now();
        let answer = self.endpoint.refresh(&refresh_token).await;
        let elapsed = started.elapsed();
        metrics().refresh_seconds.observe(elapsed.as_secs_f64());
        let duration_ms = elapsed.as_millis() as u64;
        match answer {
            Ok(set) => self.commit(lease, &current, set, duration_ms).await,
            Err(OAuthError::InvalidGrant(description)) => {
                self.release(lease).await;
                metrics().refreshed(RefreshOutcome::InvalidGrant);
                info!(
                    session = %log,
                    outcome = "invalid_grant",
                    description = description.as_deref().unwrap_or(""),
                    duration_ms,
                    "token refresh"
                );
                audit::emit(
                    Event::new("session_ended")
                        .with("session", log.to_string())
                        .with("user", current.user.sub.as_str())
                        .with("reason", "invalid_grant"),
                );
                self.end_session(&current.id).await
            }
            Err(e) => {
                self.release(lease).await;
                self.back_off(&log, &e, duration_ms)
            }
        }
    }

    /// A transient failure: the session keeps its refresh token, and no
    /// refresh is tried again before the back-off has passed.
    fn back_off(&self, log: &LogId, e: &OAuthError, duration_ms: u64) -> Freshness {
        metrics().refreshed(RefreshOutcome::Failed);
        let failures = self.flight.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let delay = BACKOFF_FIRST_MS
            .saturating_mul(1u64 << (failures - 1).min(16))
            .min(BACKOFF_MAX_MS);
        let not_before = self.clock.now_millis() + delay;
        self.flight
            .not_before_ms
            .store(not_before, Ordering::Release);
        warn!(session = %log, outcome = "failed", error = %e, failures, backoff_ms = delay, duration_ms, "token refresh");
        Freshness::Unavailable {
            retry_after_secs: delay.div_ceil(1000).max(1),
        }
    }

    /// Stores the new pair. The refresh token just redeemed is dead, so the
    /// commit is retried (bounded) while the store does not answer.
    async fn commit(
        &self,
        lease: Lease,
        current: &Session,
        set: TokenSet,
        duration_ms: u64,
    ) -> Freshness {
        let log = current.log_id();
        let generation = current.tokens.generation;
        let mut delay = Duration::from_millis(COMMIT_RETRY_FIRST_MS);
        for attempt in 1..=COMMIT_ATTEMPTS {
            match self
                .store
                .commit_tokens(&lease, generation, set.clone())
                .await
            {
                Ok(TokenSwap::Replaced(s)) | Ok(TokenSwap::Stale(s)) => {
                    self.flight.failures.store(0, Ordering::Release);
                    self.flight.not_before_ms.store(0, Ordering::Release);
                    metrics().refreshed(RefreshOutcome::Ok);
                    info!(session = %log, outcome = "ok", generation = s.tokens.generation, duration_ms, "token refresh");
                    return Freshness::Ready(s);
                }
                Ok(TokenSwap::Gone) => return Freshness::LoginRequired,
                Err(e) if attempt == COMMIT_ATTEMPTS => {
                    metrics().refreshed(RefreshOutcome::StoreUnavailable);
                    warn!(session = %log, error = %e, duration_ms, "token refreshed but not stored");
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        self.release(lease).await;
        Freshness::StoreUnavailable
    }

    /// Another instance held the lease for as long as we waited: use its
    /// pair if it committed one.
    async fn after_busy_lease(&self, current: &Session) -> Freshness {
        match self.store.get(&current.id).await {
            Ok(Some(s)) if s.tokens.generation != current.tokens.generation => Freshness::Ready(s),
            Ok(Some(_)) => Freshness::Unavailable {
                retry_after_secs: 1,
            },
            Ok(None) => Freshness::LoginRequired,
            Err(_) => Freshness::StoreUnavailable,
        }
    }

    async fn release(&self, lease: Lease) {
        if let Err(e) = self.store.release_lease(lease).await {
            // It expires by itself.
            warn!(error = %e, "could not release a refresh lease");
        }
    }

    /// The session is over (its refresh token is gone or refused).
    async fn end_session(&self, id: &str) -> Freshness {
        if let Err(StoreError::Unavailable(e)) = self.store.remove(id).await {
            // It will be refused again on its next refresh.
            warn!(session = %log_id(id), error = %e, "could not delete an ended session");
        }
        Freshness::LoginRequired
    }
}

#[cfg(test)]
mod tests;
