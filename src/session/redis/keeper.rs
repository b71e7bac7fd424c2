//! Keeps a refresh lease alive while the token call runs (the lesson of
//! oauth2-proxy's fixed 2 s lock that expired under a slow token call).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::RedisBackend;

/// Renews a lease every third of its TTL until dropped. If a renewal finds
/// the lease held by someone else (or gone), it stops and reports the lease
/// lost; a renewal that cannot reach Redis is retried at the next tick (the
/// commit's owner check is the final word either way).
#[derive(Debug)]
pub struct LeaseKeeper {
    lost: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// True once a renewal found that this owner no longer holds the lease.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisBackend {
    /// Starts renewing the lease that `owner` holds on session `id`, to
    /// `ttl` from each renewal. Must be called inside a tokio runtime; the
    /// renewals stop when the keeper is dropped (do that before committing
    /// or releasing).
    pub fn keep_lease(&self, id: &str, owner: &str, ttl: Duration) -> LeaseKeeper {
        let lost = Arc::new(AtomicBool::new(false));
        let (backend, id, owner) = (self.clone(), id.to_owned(), owner.to_owned());
        let flag = lost.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 3);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match backend.renew_lease(&id, &owner, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, Ordering::SeqCst);
                        tracing::warn!("refresh lease lost while the token call ran");
                        return;
                    }
                    Err(e) => tracing::debug!(error = %e, "lease renewal failed; retrying"),
                }
            }
        });
        LeaseKeeper { lost, task }
    }
}
