//! Delivery: each stored message is POSTed to the app's `forward_to` until
//! it answers 2xx, with back-off (1 s, 2 s, 4 s, ... at most 5 minutes)
//! for `retry_for_secs` from its acceptance; then it is dead.
//!
//! One loop per webhook claims messages (at most [`MAX_IN_FLIGHT`] held by
//! this instance at once) and gives each a task of its own, so a message in
//! back-off holds up no other. A task renews its hold every
//! [`KEEP_EVERY`](super::redis::KEEP_EVERY) and checks it before every
//! attempt: a message another instance took over is left to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tracing::{error, info, warn};

use super::queue::{backoff, Claimed, DeadMessage};
use super::redis::KEEP_EVERY;
use super::Hook;
use crate::ops::metrics::{metrics, WebhookDelivery};
use crate::util::time::now_millis;

/// Messages one instance holds for delivery at once, per webhook.
pub const MAX_IN_FLIGHT: usize = 64;
/// How often a webhook's loop looks for messages when nothing woke it (a
/// message accepted by this instance, or a delivery ending while every
/// slot was taken, wakes it at once).
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often the `dsgw_webhook_pending` gauge is read from the store.
const GAUGE_EVERY: Duration = Duration::from_secs(5);
/// Wait after the store failed to answer the loop.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// The delivery loop of one webhook, until `stop` says so.
pub(super) async fn run(
    hook: Arc<Hook>,
    client: reqwest::Client,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let freed = Arc::new(Notify::new());
    let mut gauge_read: Option<Instant> = None;
    let mut store_down = false;
    loop {
        if gauge_read.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
            gauge_read = Some(Instant::now());
            if let Ok(n) = hook.queue.pending().await {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                metrics()
                    .webhook_pending
                    .with_label_values(&[&hook.cfg.name])
                    .set(n);
            }
        }
        let free = slots.available_permits();
        let mut wait = POLL_EVERY;
        if free > 0 {
            match hook.queue.claim(free).await {
                Ok(claimed) => {
                    if store_down {
                        info!(webhook = %hook.cfg.name, "webhook store answers again");
                        store_down = false;
                    }
                    let full = claimed.len() == free;
                    for c in claimed {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            break;
                        };
                        let slot = Slot {
                            permit: Some(permit),
                            freed: freed.clone(),
                        };
                        tokio::spawn(deliver(hook.clone(), client.clone(), c, slot));
                    }
                    if full {
                        wait = Duration::ZERO;
                    }
                }
                Err(e) => {
                    if !store_down {
                        warn!(webhook = %hook.cfg.name, error = %e, "webhook store does not answer: delivery waits");
                        store_down = true;
                    }
                    wait = STORE_RETRY;
                }
            }
        }
        tokio::select! {
            _ = hook.wake.notified() => {}
            _ = freed.notified(), if slots.available_permits() == 0 => {}
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return,
        }
    }
}

/// A delivery's place among [`MAX_IN_FLIGHT`]: freeing it wakes the loop,
/// which claims the next message at once instead of at its next poll.
struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit first, so the loop that wakes finds it free.
        drop(self.permit.take());
        self.freed.notify_one();
    }
}

/// Renews the hold on `c` until dropped; sets `lost` when another
/// deliverer has it.
async fn keep_holding(hook: Arc<Hook>, c: Claimed, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(KEEP_EVERY).await;
        if let Ok(false) = hook.queue.keep(&c).await {
            lost.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// Aborts the task on drop.
struct Abort(tokio::task::JoinHandle<()>);
impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Delivers one message: attempts until the app takes it, the message is
/// dead, or another deliverer holds it.
async fn deliver(hook: Arc<Hook>, client: reqwest::Client, c: Claimed, _slot: Slot) {
    let name = hook.cfg.name.as_str();
    let id = c.message.id.as_str();
    let lost = Arc::new(AtomicBool::new(false));
    let _keeper = Abort(tokio::spawn(keep_holding(
        hook.clone(),
        c.clone(),
        lost.clone(),
    )));
    let deadline = c
        .message
        .received_ms
        .saturating_add(hook.cfg.retry_for.as_millis() as u64);
    let mut attempts = c.attempts;
    let mut due = c.due_ms;
    // Just claimed and due: the claim itself made it ours, no need to ask
    // the store again before this first attempt.
    let mut just_claimed = true;
    loop {
        let now = now_millis();
        if due > now {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
            just_claimed = false;
        }
        let ours = if just_claimed {
            !lost.load(Ordering::Relaxed)
        } else {
            still_ours(&hook, &c, &lost).await
        };
        just_claimed = false;
        if !ours {
            info!(
                webhook = name,
                event_id = id,
                "webhook message taken over by another instance"
            );
            return;
        }
        attempts = attempts.saturating_add(1);
        match post(&hook, &client, &c, attempts).await {
            Ok(status) => {
                metrics().webhook_delivery(name, WebhookDelivery::Delivered);
                let waited = now_millis().saturating_sub(c.message.received_ms) as f64 / 1000.0;
                metrics()
                    .webhook_delivery_seconds
                    .with_label_values(&[name])
                    .observe(waited);
                info!(
                    webhook = name,
                    event_id = id,
                    attempt = attempts,
                    status,
                    "webhook message delivered"
                );
                settle(&hook, &c, &lost, End::Delivered).await;
                return;
            }
            Err(why) => {
                metrics().webhook_delivery(name, WebhookDelivery::Failed);
                let now = now_millis();
                let wait = backoff(attempts).as_millis() as u64;
                if now.saturating_add(wait) > deadline {
                    metrics().webhook_delivery(name, WebhookDelivery::Dead);
                    error!(webhook = name, event_id = id, attempts, last_error = %why,
                        "webhook message dead: retried for retry_for_secs (see `docusign-gateway webhooks dead`)");
                    let dead = DeadMessage {
                        id: id.to_owned(),
                        received_ms: c.message.received_ms,
                        dead_ms: now,
                        attempts,
                        last_error: why,
                        content_type: c.message.content_type.clone(),
                        bytes: c.message.body.len(),
                    };
                    settle(&hook, &c, &lost, End::Dead(dead)).await;
                    return;
                }
                warn!(webhook = name, event_id = id, attempt = attempts, error = %why,
                    retry_in_ms = wait, "webhook delivery failed");
                due = now + wait;
                if let Err(e) = hook.queue.failed(&c, attempts, due).await {
                    warn!(webhook = name, event_id = id, error = %e, "webhook attempt not recorded");
                }
            }
        }
    }
}

/// Whether the message is still this deliverer's: the keeper saw no other
/// holder and the store says so. While the store does not answer, waits
/// (another instance may take the message over meanwhile).
async fn still_ours(hook: &Hook, c: &Claimed, lost: &AtomicBool) -> bool {
    loop {
        if lost.load(Ordering::Relaxed) {
            return false;
        }
        match hook.queue.keep(c).await {
            Ok(kept) => return kept,
            Err(_) => tokio::time::sleep(STORE_RETRY).await,
        }
    }
}

/// How a message ended.
enum End {
    Delivered,
    Dead(DeadMessage),
}

/// Records the end of a message in the store, retrying while it does not
/// answer and the message is still held (if it is lost meanwhile, the
/// next holder delivers it again: at least once).
async fn settle(hook: &Hook, c: &Claimed, lost: &AtomicBool, end: End) {
    while !lost.load(Ordering::Relaxed) {
        let done = match &end {
            End::Delivered => hook.queue.delivered(c).await,
            End::Dead(dead) => hook.queue.dead(c, dead.clone()).await,
        };
        match done {
            Ok(()) => return,
            Err(e) => {
                warn!(webhook = %hook.cfg.name, event_id = %c.message.id, error = %e, "webhook store does not answer: retrying");
                tokio::time::sleep(STORE_RETRY).await;
            }
        }
    }
}

/// One attempt: the app's status when 2xx, else what went wrong.
async fn post(
    hook: &Hook,
    client: &reqwest::Client,
    c: &Claimed,
    attempt: u32,
) -> Result<u16, String> {
    let mut req = client
        .post(hook.cfg.forward_to.clone())
        .header("X-Dsgw-Webhook", &hook.cfg.name)
        .header("X-Dsgw-Event-Id", &c.message.id)
        .header("X-Dsgw-Delivery-Attempt", attempt.to_string())
        .body(c.message.body.clone());
    if let Some(ct) = &c.message.content_type {
        req = req.header("Content-Type", ct);
    }
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
        Ok(resp) => Err(format!("status {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => Err("no answer in time (docusign.request_timeout_secs)".into()),
        Err(e) if e.is_connect() => Err("connection failed".into()),
        Err(e) => Err(format!("request failed: {}", e.without_url())),
    }
}
