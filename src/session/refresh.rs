//! Token lifecycle: keeps a session's DocuSign access token usable.
//!
//! [`Refresher::fresh`] is asked before forwarding (is the token inside the
//! refresh window?) and after DocuSign answered 401 (the token that request
//! used is dead). Per session, one refresh at a time: concurrent callers wait
//! (bounded) on the session's refresh lock, then find the new pair and use it,
//! so a rotating refresh token is never sent twice. The refresh itself runs in
//! its own task, so a client that hangs up cannot lose a rotated token.
//!
//! Outcomes: `invalid_grant` ends the session (log in again); any other
//! failure keeps the session and its refresh token, backs off exponentially
//! and says when to retry, while a still-valid access token keeps being used.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::{info, warn};

use crate::docusign::{DocuSignClient, OAuthError, TokenSet};
use crate::ops::metrics::metrics;
use crate::session::{Session, Tokens};
use crate::util::ids::log_id;
use crate::util::secret::Secret;
use crate::util::time::now_unix;

const BACKOFF_FIRST_MS: u64 = 1_000;
const BACKOFF_MAX_MS: u64 = 30_000;

/// The refresh grant, behind an interface so the logic can be tested alone.
#[async_trait]
pub trait TokenEndpoint: Send + Sync + 'static {
    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError>;
}

#[async_trait]
impl TokenEndpoint for DocuSignClient {
    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError> {
        DocuSignClient::refresh(self, refresh_token).await
    }
}

/// What a request may do with its session's tokens.
#[derive(Debug)]
pub enum Freshness {
    /// Use these.
    Ready(Arc<Tokens>),
    /// The refresh token is gone or refused: the session is over.
    LoginRequired,
    /// No usable access token now; try again after this many seconds.
    Unavailable { retry_after_secs: u64 },
}

/// What the refresh task did with the session.
enum Outcome {
    Refreshed,
    /// `invalid_grant`: the session is over.
    Refused,
    /// A transient failure; the next try is allowed after this many seconds.
    Failed {
        retry_after_secs: u64,
    },
}

pub struct Refresher {
    endpoint: Arc<dyn TokenEndpoint>,
    window_secs: u64,
    wait_limit: Duration,
}

impl Refresher {
    /// `window`: refresh tokens expiring within it; `wait_limit`: the longest a
    /// request waits for another request's refresh.
    pub fn new(endpoint: Arc<dyn TokenEndpoint>, window: Duration, wait_limit: Duration) -> Self {
        Refresher {
            endpoint,
            window_secs: window.as_secs(),
            wait_limit,
        }
    }

    /// Tokens to forward with. `failed_generation` is the generation of the
    /// pair DocuSign just refused with 401, if any.
    pub async fn fresh(&self, session: &Arc<Session>, failed_generation: Option<u64>) -> Freshness {
        let needs_refresh = |t: &Tokens| {
            failed_generation == Some(t.generation)
                || t.set.expires_at <= now_unix().saturating_add(self.window_secs)
        };
        let usable =
            |t: &Tokens| failed_generation != Some(t.generation) && t.set.expires_at > now_unix();

        if session.is_dead() {
            return Freshness::LoginRequired;
        }
        let current = session.tokens();
        if !needs_refresh(&current) {
            return Freshness::Ready(current);
        }

        let guard =
            match tokio::time::timeout(self.wait_limit, session.refresh_lock.clone().lock_owned())
                .await
            {
                Ok(guard) => guard,
                Err(_) => {
                    warn!(session = %log_id(&session.id), "gave up waiting for a token refresh");
                    return if usable(&current) {
                        Freshness::Ready(current)
                    } else {
                        Freshness::Unavailable {
                            retry_after_secs: 1,
                        }
                    };
                }
            };
        // Whoever held the lock may have refreshed (or ended the session).
        if session.is_dead() {
            return Freshness::LoginRequired;
        }
        let current = session.tokens();
        if !needs_refresh(&current) {
            return Freshness::Ready(current);
        }
        let now_ms = now_millis();
        let not_before = session.refresh_not_before_ms.load(Ordering::Acquire);
        if now_ms < not_before {
            return if usable(&current) {
                Freshness::Ready(current)
            } else {
                Freshness::Unavailable {
                    retry_after_secs: (not_before - now_ms).div_ceil(1000).max(1),
                }
            };
        }
        let Some(refresh_token) = current.set.refresh_token.clone() else {
            session.mark_dead();
            metrics()
                .refreshes
                .with_label_values(&["missing_refresh"])
                .inc();
            info!(session = %log_id(&session.id), outcome = "missing_refresh", "token refresh");
            return Freshness::LoginRequired;
        };

        // The refresh runs in its own task, holding the lock until it has
        // stored its outcome, whatever happens to this request.
        let endpoint = self.endpoint.clone();
        let session_for_task = session.clone();
        let task = tokio::spawn(async move {
            let _guard = guard;
            let session = session_for_task;
            let started = Instant::now();
            let answer = endpoint.refresh(&refresh_token).await;
            let elapsed = started.elapsed();
            metrics().refresh_seconds.observe(elapsed.as_secs_f64());
            let duration_ms = elapsed.as_millis() as u64;
            let outcome = match &answer {
                Ok(_) => "ok",
                Err(OAuthError::InvalidGrant(_)) => "invalid_grant",
                Err(_) => "failed",
            };
            metrics().refreshes.with_label_values(&[outcome]).inc();
            match answer {
                Ok(mut set) => {
                    if set.refresh_token.is_none() {
                        set.refresh_token = Some(refresh_token);
                    }
                    let generation = session.replace_tokens(set);
                    session.refresh_failures.store(0, Ordering::Release);
                    session.refresh_not_before_ms.store(0, Ordering::Release);
                    info!(session = %log_id(&session.id), outcome = "ok", generation, duration_ms, "token refresh");
                    Outcome::Refreshed
                }
                Err(OAuthError::InvalidGrant(description)) => {
                    session.mark_dead();
                    info!(
                        session = %log_id(&session.id),
                        outcome = "invalid_grant",
                        description = description.as_deref().unwrap_or(""),
                        duration_ms,
                        "token refresh"
                    );
                    Outcome::Refused
                }
                Err(e) => {
                    let failures = session.refresh_failures.fetch_add(1, Ordering::AcqRel) + 1;
                    let delay = BACKOFF_FIRST_MS
                        .saturating_mul(1u64 << (failures - 1).min(16))
                        .min(BACKOFF_MAX_MS);
                    session
                        .refresh_not_before_ms
                        .store(now_millis() + delay, Ordering::Release);
                    warn!(
                        session = %log_id(&session.id),
                        outcome = "failed",
                        error = %e,
                        failures,
                        backoff_ms = delay,
                        duration_ms,
                        "token refresh"
                    );
                    Outcome::Failed {
                        retry_after_secs: delay.div_ceil(1000).max(1),
                    }
                }
            }
        });
        match task.await {
            Ok(Outcome::Refreshed) => Freshness::Ready(session.tokens()),
            Ok(Outcome::Refused) => Freshness::LoginRequired,
            // A failed refresh still leaves a valid token usable.
            Ok(Outcome::Failed { .. }) if usable(&current) => Freshness::Ready(current),
            Ok(Outcome::Failed { retry_after_secs }) => Freshness::Unavailable { retry_after_secs },
            Err(_) => Freshness::Unavailable {
                retry_after_secs: 1,
            },
        }
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use super::*;
    use crate::session::model::test_support::session;

    /// A token endpoint that answers from a script and counts calls.
    struct Scripted {
        calls: AtomicUsize,
        delay: Duration,
        answer: Mutex<Result<(), OAuthError>>,
        seen: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(answer: Result<(), OAuthError>, delay: Duration) -> Arc<Self> {
            Arc::new(Scripted {
                calls: AtomicUsize::new(0),
                delay,
                answer: Mutex::new(answer),
                seen: Mutex::new(Vec::new()),
            })
        }
    }

    #[async_trait]
    impl TokenEndpoint for Scripted {
        async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen
                .lock()
                .unwrap()
                .push(refresh_token.expose().to_string());
            tokio::time::sleep(self.delay).await;
            self.answer.lock().unwrap().clone().map(|()| TokenSet {
                access_token: Secret::new(format!("at{n}")),
                refresh_token: Some(Secret::new(format!("rt{n}"))),
                expires_at: now_unix() + 3600,
            })
        }
    }

    fn refresher(endpoint: Arc<Scripted>) -> Refresher {
        Refresher::new(endpoint, Duration::from_secs(300), Duration::from_secs(5))
    }

    #[tokio::test]
    async fn outside_the_window_nothing_happens() {
        let ep = Scripted::new(Ok(()), Duration::ZERO);
        let s = Arc::new(session(600));
        let r = refresher(ep.clone());
        assert!(matches!(r.fresh(&s, None).await, Freshness::Ready(t) if t.generation == 0));
        assert_eq!(ep.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn inside_the_window_refreshes_first() {
        let ep = Scripted::new(Ok(()), Duration::ZERO);
        let s = Arc::new(session(600));
        let r = Refresher::new(
            ep.clone(),
            Duration::from_secs(7200),
            Duration::from_secs(5),
        );
        match r.fresh(&s, None).await {
            Freshness::Ready(t) => assert_eq!(t.set.access_token.expose(), "at1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(ep.seen.lock().unwrap().as_slice(), ["rt"]);
    }

    #[tokio::test]
    async fn concurrent_401s_cause_one_refresh_and_never_reuse_a_refresh_token() {
        let ep = Scripted::new(Ok(()), Duration::from_millis(50));
        let s = Arc::new(session(600));
        let r = Arc::new(refresher(ep.clone()));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (r, s) = (r.clone(), s.clone());
            tasks.push(tokio::spawn(async move { r.fresh(&s, Some(0)).await }));
        }
        for t in tasks {
            match t.await.unwrap() {
                Freshness::Ready(t) => assert_eq!(t.set.access_token.expose(), "at1"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
        // A later 401 on the new pair refreshes with the NEW refresh token.
        assert!(matches!(r.fresh(&s, Some(1)).await, Freshness::Ready(_)));
        assert_eq!(ep.seen.lock().unwrap().as_slice(), ["rt", "rt1"]);
    }

    #[tokio::test]
    async fn invalid_grant_ends_the_session_for_everyone() {
        let ep = Scripted::new(
            Err(OAuthError::InvalidGrant(None)),
            Duration::from_millis(20),
        );
        let s = Arc::new(session(600));
        let r = Arc::new(refresher(ep.clone()));
        let a = tokio::spawn({
            let (r, s) = (r.clone(), s.clone());
            async move { r.fresh(&s, Some(0)).await }
        });
        let b = r.fresh(&s, Some(0)).await;
        assert!(matches!(b, Freshness::LoginRequired));
        assert!(matches!(a.await.unwrap(), Freshness::LoginRequired));
        assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
        assert!(s.is_dead());
    }

    #[tokio::test]
    async fn transient_failure_keeps_the_session_and_backs_off() {
        let ep = Scripted::new(Err(OAuthError::Unavailable("down".into())), Duration::ZERO);
        let s = Arc::new(session(600));
        let r = refresher(ep.clone());
        match r.fresh(&s, Some(0)).await {
            Freshness::Unavailable { retry_after_secs } => assert_eq!(retry_after_secs, 1),
            other => panic!("{other:?}"),
        }
        // Within the back-off, nobody calls the endpoint again.
        assert!(matches!(
            r.fresh(&s, Some(0)).await,
            Freshness::Unavailable { .. }
        ));
        assert_eq!(ep.calls.load(Ordering::SeqCst), 1);
        // A proactive refresh that fails still uses the valid token.
        let proactive = Refresher::new(
            ep.clone(),
            Duration::from_secs(7200),
            Duration::from_secs(5),
        );
        assert!(
            matches!(proactive.fresh(&s, None).await, Freshness::Ready(t) if t.generation == 0)
        );
        assert!(!s.is_dead());
        // After the back-off, and once the endpoint is back, it recovers.
        *ep.answer.lock().unwrap() = Ok(());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(matches!(r.fresh(&s, Some(0)).await, Freshness::Ready(t) if t.generation == 1));
        assert_eq!(ep.seen.lock().unwrap().as_slice(), ["rt", "rt"]);
    }
}
