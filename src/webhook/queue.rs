//! What a webhook's store does, whichever store it is: keep a verified
//! message until it is delivered or dead, hand each to one deliverer at a
//! time, and recognise Connect's retry of a message already kept.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The event id the app sees (`X-Dsgw-Event-Id`): stable across
    /// attempts, instances and a replay.
    pub id: String,
    pub body: Bytes,
    pub content_type: Option<String>,
    /// When the gateway accepted it (Unix milliseconds); a replay starts
    /// the clock again.
    pub received_ms: u64,
}

/// What became of a message Connect posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Stored: it will be delivered.
    Stored(String),
    /// The same body was received within [`DEDUP_WINDOW`]: not stored again.
    Duplicate(String),
}

/// Why a message could not be stored (the answer is 503 + `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the webhook store is unavailable: {0}")]
    Unavailable(String),
    #[error("the webhook queue is full (max_pending or max_pending_bytes)")]
    Full,
    #[error("the webhook store holds a value it cannot read: {0}")]
    Corrupt(String),
}

/// A message handed to this deliverer.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub message: Message,
    /// Attempts made before (by any instance).
    pub attempts: u32,
    /// Not before this (Unix ms): the back-off of the last failure.
    pub due_ms: u64,
    /// The store's handle of the entry (a stream entry id in Redis).
    pub entry: String,
}

/// A message that was retried for `retry_for_secs` and given up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadMessage {
    pub id: String,
    pub received_ms: u64,
    pub dead_ms: u64,
    pub attempts: u32,
    /// The last failure: `status 500`, `connection refused`, ...
    pub last_error: String,
    pub content_type: Option<String>,
    pub bytes: usize,
}

/// A body seen within this window is Connect's retry of one already kept.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The de-duplication key of a body: its SHA-256.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// One webhook's store.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Stores a verified message (or recognises its duplicate).
    async fn push(
        &self,
        body: Bytes,
        content_type: Option<String>,
        now_ms: u64,
    ) -> Result<Pushed, QueueError>;
    /// Up to `max` messages for this deliverer: new ones, and ones whose
    /// deliverer stopped (in Redis: idle past the claim time).
    async fn claim(&self, max: usize) -> Result<Vec<Claimed>, QueueError>;
    /// Whether the message is still this deliverer's (and keeps it so).
    async fn keep(&self, claimed: &Claimed) -> Result<bool, QueueError>;
    /// Records a failed attempt and when the next one is due.
    async fn failed(&self, claimed: &Claimed, attempts: u32, due_ms: u64)
        -> Result<(), QueueError>;
    /// The app took it: forget it.
    async fn delivered(&self, claimed: &Claimed) -> Result<(), QueueError>;
    /// Given up: kept as a dead message.
    async fn dead(&self, claimed: &Claimed, dead: DeadMessage) -> Result<(), QueueError>;
    /// Messages stored and not delivered or dead yet.
    async fn pending(&self) -> Result<u64, QueueError>;
    /// The dead messages kept, oldest first.
    async fn dead_messages(&self) -> Result<Vec<DeadMessage>, QueueError>;
    /// Queues dead message `id` (or all) again, with a fresh `retry_for`;
    /// returns how many.
    async fn replay(&self, id: Option<&str>, now_ms: u64) -> Result<usize, QueueError>;
}

/// The wait after the `attempts`-th failure: 1 s, 2 s, 4 s, ... at most
/// [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(0).as_secs(), 1);
    }
}
