//! Delivery of Connect messages: a bounded queue feeding one sender task,
//! which delivers each message to each of its listeners concurrently, with
//! retries, and records every attempt in the shared state.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use reqwest::redirect::Policy;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{sign, ConnectAttempt, ConnectListener, MAX_RECORDED_ATTEMPTS};
use crate::state::Shared;

/// Messages the queue holds before new ones are dropped (with a warning).
const QUEUE_CAPACITY: usize = 1024;

/// One queued message and the listeners it goes to.
pub(crate) struct Outgoing {
    id: u64,
    body: Bytes,
    listeners: Vec<ConnectListener>,
}

/// The sending end of the Connect queue, and the message id counter.
pub(crate) struct ConnectQueue {
    sender: mpsc::Sender<Outgoing>,
    next_id: AtomicU64,
}

impl ConnectQueue {
    /// A queue and the receiver [`run`] consumes.
    pub(crate) fn channel() -> (ConnectQueue, mpsc::Receiver<Outgoing>) {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let queue = ConnectQueue {
            sender,
            next_id: AtomicU64::new(1),
        };
        (queue, receiver)
    }

    /// Queues `body` for `listeners` without waiting and returns its message
    /// id. A full queue drops the message with a warning.
    fn queue(&self, body: Bytes, listeners: Vec<ConnectListener>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if listeners.is_empty() {
            return id;
        }
        let message = Outgoing {
            id,
            body,
            listeners,
        };
        if let Err(e) = self.sender.try_send(message) {
            tracing::warn!(message_id = id, error = %e, "fake DocuSign: Connect message dropped");
        }
        id
    }
}

/// Queues `body` for every listener configured now; returns its message id.
pub(crate) fn send(shared: &Shared, body: Bytes) -> u64 {
    let listeners = shared.lock().connect_listeners.clone();
    shared.connect.queue(body, listeners)
}

/// Appends `attempt` to the bounded record, dropping the oldest.
pub(crate) fn record(attempts: &mut VecDeque<ConnectAttempt>, attempt: ConnectAttempt) {
    while attempts.len() >= MAX_RECORDED_ATTEMPTS {
        attempts.pop_front();
    }
    attempts.push_back(attempt);
}

/// The HTTP client of the sender: no redirects followed, no proxies.
pub(crate) fn client() -> io::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| io::Error::other(format!("fake DocuSign: no Connect HTTP client: {e}")))
}

/// The sender task: takes messages off the queue and delivers each to each
/// of its listeners in a task of its own. Aborting it aborts every delivery.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut receiver: mpsc::Receiver<Outgoing>,
    client: reqwest::Client,
) {
    let mut deliveries = JoinSet::new();
    loop {
        tokio::select! {
            message = receiver.recv() => {
                let Some(message) = message else { break };
                for listener in message.listeners {
                    let delivery = Delivery {
                        shared: shared.clone(),
                        client: client.clone(),
                        listener,
                        id: message.id,
                        body: message.body.clone(),
                    };
                    deliveries.spawn(delivery.run());
                }
            }
            Some(_) = deliveries.join_next(), if !deliveries.is_empty() => {}
        }
    }
    while deliveries.join_next().await.is_some() {}
}

/// One message on its way to one listener.
struct Delivery {
    shared: Arc<Shared>,
    client: reqwest::Client,
    listener: ConnectListener,
    id: u64,
    body: Bytes,
}

impl Delivery {
    /// Attempts until a 2xx answer or `max_attempts`, waiting the
    /// listener's growing interval between attempts.
    async fn run(self) {
        let max = self.listener.max_attempts.max(1);
        for attempt in 1..=max {
            let outcome = self.attempt(attempt).await;
            let delivered = outcome.succeeded();
            if !delivered {
                tracing::debug!(
                    url = %outcome.url, message_id = self.id, attempt,
                    status = ?outcome.status, error = ?outcome.error,
                    "fake DocuSign: Connect delivery failed"
                );
            }
            record(&mut self.shared.lock().connect_attempts, outcome);
            if delivered {
                return;
            }
            if attempt < max {
                tokio::time::sleep(self.listener.retry_delay(attempt)).await;
            }
        }
    }

    /// One signed POST of the body, as an attempt record.
    async fn attempt(&self, attempt: u32) -> ConnectAttempt {
        let (status, error) = match self.request().send().await {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(describe(&e))),
        };
        ConnectAttempt {
            url: self.listener.url.clone(),
            message_id: self.id,
            attempt,
            status,
            error,
        }
    }

    /// The POST: exact body bytes, JSON content type, one signature header
    /// per HMAC key in key order.
    fn request(&self) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(&self.listener.url)
            .timeout(self.listener.timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(self.body.clone());
        for (i, key) in self.listener.hmac_keys.iter().enumerate() {
            let name = format!("X-DocuSign-Signature-{}", i + 1);
            request = request.header(name, sign(key, &self.body));
        }
        if !self.listener.hmac_keys.is_empty() {
            request = request.header("X-Authorization-Digest", "HMACSHA256");
        }
        request
    }
}

/// A reqwest error with its causes, e.g. `error sending request: ...:
/// Connection refused`.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("timeout: {e}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
