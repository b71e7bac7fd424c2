//! DocuSign Connect webhooks (`[[webhook]]`): `POST /webhooks/<name>` is
//! verified (Connect's HMAC), stored, answered, and delivered to the app.
//!
//! - `signature`: Connect's HMAC-SHA256 headers, compared in constant time.
//! - `queue`: what a store does; `memory` (bounded, lost on restart) and
//!   `redis` (a stream with a consumer group, shared by every instance).
//! - `deliver`: the delivery loop and its back-off.
//!
//! A message is answered 200 only once it is stored; a store that does not
//! answer (or a full memory queue) is 503 with `Retry-After`, so Connect
//! retries. A body seen within 24 hours is a duplicate: 200, not stored.

pub mod admin;
mod deliver;
mod memory;
pub mod queue;
mod redis;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, warn};

pub use deliver::{MAX_IN_FLIGHT, POLL_EVERY};
pub use memory::{MemoryQueue, MAX_REMEMBERED_BODIES};
pub use queue::{DeadMessage, Pushed, Queue, QueueError};
pub use redis::{RedisQueue, CLAIM_IDLE, DEAD_TTL, KEEP_EVERY, PRUNE_IDLE};

use crate::config::{Config, WebhookConfig};
use crate::ops::metrics::{metrics, WebhookReceived};
use crate::session::redis::RedisBackend;
use crate::util::paths::WEBHOOKS_PREFIX;
use crate::util::time::now_millis;
use crate::web::reply::Reply;

/// `Retry-After` when the store does not answer.
const RETRY_AFTER_UNAVAILABLE: &str = "5";
/// `Retry-After` when the memory queue is full.
const RETRY_AFTER_FULL: &str = "30";

/// One webhook: its configuration, its store, and the signal that wakes its
/// delivery loop when this instance stored a message.
pub struct Hook {
    pub cfg: WebhookConfig,
    pub queue: Arc<dyn Queue>,
    wake: Notify,
}

/// Every configured webhook.
pub struct Webhooks {
    hooks: Vec<Arc<Hook>>,
    /// `docusign.request_timeout_secs`: the wait for the app's answer.
    timeout: Duration,
}

impl Webhooks {
    /// The webhooks of `cfg`, stored in `redis` when the session store is
    /// Redis, else in memory.
    pub fn new(cfg: &Config, redis: Option<&RedisBackend>) -> Webhooks {
        let hooks = cfg
            .webhooks
            .iter()
            .map(|w| {
                let queue: Arc<dyn Queue> = match redis {
                    Some(backend) => {
                        Arc::new(RedisQueue::new(backend.clone(), &w.name, w.max_pending))
                    }
                    None => Arc::new(MemoryQueue::new(w.max_pending, w.max_pending_bytes)),
                };
                Arc::new(Hook {
                    cfg: w.clone(),
                    queue,
                    wake: Notify::new(),
                })
            })
            .collect();
        Webhooks {
            hooks,
            timeout: cfg.docusign.request_timeout,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// The webhook of a request path `/webhooks/<name>`.
    pub fn of_path(&self, path: &str) -> Option<&Arc<Hook>> {
        let name = path.strip_prefix(WEBHOOKS_PREFIX)?;
        self.hooks.iter().find(|h| h.cfg.name == name)
    }

    /// The pingora background service that delivers the stored messages.
    pub fn delivery_service(self: &Arc<Self>) -> Delivery {
        Delivery(self.clone())
    }
}

/// The 413 of a message over `max_body_bytes` (counted and logged).
pub fn too_large(hook: &Hook) -> Reply {
    metrics().webhook_received(&hook.cfg.name, WebhookReceived::TooLarge);
    warn!(webhook = %hook.cfg.name, limit = hook.cfg.max_body_bytes, "webhook message refused: body too large");
    Reply::error(
        413,
        "body_too_large",
        &format!(
            "A message to this webhook may have at most {} bytes (max_body_bytes).",
            hook.cfg.max_body_bytes
        ),
    )
    .header("Connection", "close")
}

impl Hook {
    /// A whole Connect message: verified against every key and signature
    /// header, then stored. 200 only once it is stored (or is a duplicate
    /// of one that was).
    pub async fn receive(&self, req: &RequestHeader, body: Bytes) -> Reply {
        let name = self.cfg.name.as_str();
        let sigs =
            signature::signatures(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
        let keys = self.cfg.hmac_keys.clone();
        let checked = body.clone();
        // HMAC of up to max_body_bytes per key: off the proxy's threads.
        let valid = tokio::task::spawn_blocking(move || signature::verify(&keys, &sigs, &checked))
            .await
            .unwrap_or(false);
        if !valid {
            metrics().webhook_received(name, WebhookReceived::InvalidSignature);
            warn!(
                webhook = name,
                bytes = body.len(),
                "webhook message refused: no valid signature"
            );
            return Reply::error(
                401,
                "invalid_signature",
                "No X-DocuSign-Signature-N header holds the HMAC of this body under a configured key.",
            );
        }
        let content_type = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = body.len();
        match self.queue.push(body, content_type, now_millis()).await {
            Ok(Pushed::Stored(id)) => {
                metrics().webhook_received(name, WebhookReceived::Accepted);
                info!(webhook = name, event_id = %id, bytes, "webhook message accepted");
                self.wake.notify_one();
                Reply::json(200, &json!({ "status": "accepted", "id": id }))
            }
            Ok(Pushed::Duplicate(id)) => {
                metrics().webhook_received(name, WebhookReceived::Duplicate);
                info!(webhook = name, event_id = %id, bytes, "webhook message is a duplicate: not stored again");
                Reply::json(200, &json!({ "status": "duplicate", "id": id }))
            }
            Err(QueueError::Full) => {
                metrics().webhook_received(name, WebhookReceived::StoreUnavailable);
                warn!(webhook = name, bytes, "webhook message refused: queue full");
                Reply::error(
                    503,
                    "queue_full",
                    "The webhook's queue is full (max_pending, max_pending_bytes): retry later.",
                )
                .header("Retry-After", RETRY_AFTER_FULL)
            }
            Err(e) => {
                metrics().webhook_received(name, WebhookReceived::StoreUnavailable);
                warn!(webhook = name, bytes, error = %e, "webhook message refused: store unavailable");
                Reply::error(
                    503,
                    "store_unavailable",
                    "The webhook store does not answer: the message was not stored, retry later.",
                )
                .header("Retry-After", RETRY_AFTER_UNAVAILABLE)
            }
        }
    }
}

/// Delivers every webhook's messages, in pingora's background service.
pub struct Delivery(Arc<Webhooks>);

#[async_trait]
impl BackgroundService for Delivery {
    async fn start(&self, shutdown: ShutdownWatch) {
        let client = match delivery_client(self.0.timeout) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "webhook delivery cannot start: no HTTP client");
                return;
            }
        };
        let mut loops = Vec::new();
        for hook in &self.0.hooks {
            let mut shutdown = shutdown.clone();
            let stop = async move {
                let _ = shutdown.changed().await;
            };
            loops.push(tokio::spawn(deliver::run(
                hook.clone(),
                client.clone(),
                stop,
            )));
        }
        for l in loops {
            let _ = l.await;
        }
    }
}

/// The client that posts to the apps: no redirects followed, the request
/// timeout of `docusign.request_timeout_secs`.
fn delivery_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
}
