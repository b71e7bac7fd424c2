//! Invalidation messages: which sessions another instance changed or ended.
//!
//! A dedicated pub/sub connection (the multiplexed command connection cannot
//! SUBSCRIBE) listens on `{prefix}:invalidate`; every message is the tag of a
//! session (see [`super::layout`]). In a cluster it uses plain
//! SUBSCRIBE/PUBLISH on one node: Redis Cluster forwards every PUBLISH to all
//! nodes, so one subscription on any node hears the scripts run on any
//! master. (Sharded pub/sub would spread that traffic, but its channel is
//! bound to one slot's master and must follow resharding and failover; the
//! invalidation traffic is one short message per refresh or logout, so the
//! simpler broadcast is the choice here.)
//!
//! The connection is watched with a PING; when it is lost the task
//! reconnects with back-off (trying each node in turn), subscribes again and
//! sends [`Invalidation::Resync`], since messages published meanwhile are
//! lost. The channel to the caller is bounded: when it is full, messages are
//! dropped and a `Resync` follows as soon as there is room.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::RedisBackend;

/// One message to the session cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// The session with this tag changed or ended: drop it from the cache.
    Session(String),
    /// (Re)subscribed, or messages were dropped: any cached session may be
    /// stale, re-read each before trusting it.
    Resync,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often the subscription is checked with a PING.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

impl RedisBackend {
    /// Starts listening for invalidations; the listener runs until the
    /// receiver is dropped. Must be called inside a tokio runtime.
    pub fn subscribe(&self, capacity: usize) -> mpsc::Receiver<Invalidation> {
        self.subscribe_linked(capacity).0
    }

    /// [`subscribe`](Self::subscribe), with the state of the subscription:
    /// a counter that is odd while subscribed and even while not, and moves
    /// on at every change (it turns odd just before the `Resync` of a new
    /// subscription is sent). A cache trusts its entries only while the
    /// counter is odd and still the value it saw when it handled `Resync`.
    pub fn subscribe_linked(
        &self,
        capacity: usize,
    ) -> (mpsc::Receiver<Invalidation>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let link = Arc::new(AtomicU64::new(0));
        let listener = Listener {
            link: link.clone(),
            urls: self.target.urls(),
            channel: self.layout.channel(),
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            tx,
            dropped: false,
        };
        tokio::spawn(listener.run());
        (rx, link)
    }
}

struct Listener {
    /// Odd while subscribed (see [`RedisBackend::subscribe_linked`]).
    link: Arc<AtomicU64>,
    urls: Vec<String>,
    channel: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    tx: mpsc::Sender<Invalidation>,
    /// A message was dropped on a full channel: a Resync is owed.
    dropped: bool,
}

impl Listener {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut next_url = 0;
        while !self.tx.is_closed() {
            let url = self.urls[next_url % self.urls.len()].clone();
            next_url += 1;
            match self.subscribe(&url).await {
                Some((sink, stream)) => {
                    backoff = BACKOFF_MIN;
                    self.link.fetch_add(1, Ordering::SeqCst);
                    self.deliver(Invalidation::Resync);
                    self.listen(sink, stream).await;
                    self.link.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!("session invalidation subscription lost; resubscribing");
                }
                None => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Connects to `url` and subscribes, each step bounded by its timeout.
    async fn subscribe(&self, url: &str) -> Option<(PubSubSink, PubSubStream)> {
        let client = redis::Client::open(url).ok()?;
        let pubsub = tokio::time::timeout(self.connect_timeout, client.get_async_pubsub())
            .await
            .ok()?
            .map_err(
                |e| tracing::debug!(kind = ?e.kind(), "invalidation subscriber cannot connect"),
            )
            .ok()?;
        let (mut sink, stream) = pubsub.split();
        tokio::time::timeout(self.command_timeout, sink.subscribe(&self.channel))
            .await
            .ok()?
            .ok()?;
        Some((sink, stream))
    }

    /// Forwards messages until the connection is lost or the receiver is gone.
    async fn listen(&mut self, mut sink: PubSubSink, mut stream: PubSubStream) {
        let mut health = tokio::time::interval(HEALTH_INTERVAL);
        health.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => match message.get_payload::<String>() {
                        Ok(tag) => self.deliver(Invalidation::Session(tag)),
                        Err(_) => self.deliver(Invalidation::Resync),
                    },
                    None => return,
                },
                _ = health.tick() => {
                    let ping = tokio::time::timeout(self.command_timeout, sink.ping::<redis::Value>());
                    if !matches!(ping.await, Ok(Ok(_))) {
                        return;
                    }
                }
                _ = self.tx.closed() => return,
            }
        }
    }

    /// Sends without waiting; on a full channel drops the message and owes a
    /// Resync, sent before anything else once there is room.
    fn deliver(&mut self, message: Invalidation) {
        if self.dropped {
            match self.tx.try_send(Invalidation::Resync) {
                Ok(()) => self.dropped = false,
                Err(TrySendError::Full(_)) => return,
                Err(TrySendError::Closed(_)) => return,
            }
            if message == Invalidation::Resync {
                return;
            }
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(message) {
            self.dropped = true;
        }
    }
}
