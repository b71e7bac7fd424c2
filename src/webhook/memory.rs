//! The in-process store of `session.store = "memory"`: bounded by
//! `max_pending` messages and `max_pending_bytes`, lost on restart
//! (`docs/src/webhooks.md` says so; `check` warns). Dead messages are logged and counted,
//! not kept: `docusign-gateway webhooks dead/replay` need the Redis store.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::queue::{
    body_digest, Claimed, DeadMessage, Message, Pushed, Queue, QueueError, DEDUP_WINDOW,
};
use crate::util::ids::random_id;

/// Bodies remembered for de-duplication, at most, per webhook (the oldest
/// is forgotten first).
pub const MAX_REMEMBERED_BODIES: usize = 100_000;

struct Entry {
    message: Message,
    attempts: u32,
    due_ms: u64,
}

#[derive(Default)]
struct State {
    /// Stored, not delivered or dead.
    entries: HashMap<String, Entry>,
    /// Ids waiting for a deliverer, oldest first.
    ready: VecDeque<String>,
    bytes: usize,
    /// Digests seen within the window, with when they expire, oldest first.
    seen: VecDeque<(u64, [u8; 32])>,
    /// The same digests, with the event id of their message.
    seen_ids: HashMap<[u8; 32], String>,
}

pub struct MemoryQueue {
    max_pending: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

impl MemoryQueue {
    pub fn new(max_pending: usize, max_bytes: usize) -> Self {
        MemoryQueue {
            max_pending,
            max_bytes,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn forget_expired(&mut self, now_ms: u64) {
        while let Some(&(expiry, digest)) = self.seen.front() {
            if expiry > now_ms && self.seen.len() <= MAX_REMEMBERED_BODIES {
                break;
            }
            self.seen.pop_front();
            self.seen_ids.remove(&digest);
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(e) = self.entries.remove(id) {
            self.bytes -= e.message.body.len();
        }
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn push(
        &self,
        body: Bytes,
        content_type: Option<String>,
        now_ms: u64,
    ) -> Result<Pushed, QueueError> {
        let digest = body_digest(&body);
        let mut s = self.state();
        s.forget_expired(now_ms);
        if let Some(id) = s.seen_ids.get(&digest) {
            return Ok(Pushed::Duplicate(id.clone()));
        }
        if s.entries.len() >= self.max_pending || s.bytes + body.len() > self.max_bytes {
            return Err(QueueError::Full);
        }
        let id = random_id();
        s.bytes += body.len();
        s.seen
            .push_back((now_ms + DEDUP_WINDOW.as_millis() as u64, digest));
        s.seen_ids.insert(digest, id.clone());
        s.ready.push_back(id.clone());
        let message = Message {
            id: id.clone(),
            body,
            content_type,
            received_ms: now_ms,
        };
        s.entries.insert(
            id.clone(),
            Entry {
                message,
                attempts: 0,
                due_ms: 0,
            },
        );
        Ok(Pushed::Stored(id))
    }

    async fn claim(&self, max: usize) -> Result<Vec<Claimed>, QueueError> {
        let mut s = self.state();
        let mut out = Vec::new();
        while out.len() < max {
            let Some(id) = s.ready.pop_front() else { break };
            if let Some(e) = s.entries.get(&id) {
                out.push(Claimed {
                    message: e.message.clone(),
                    attempts: e.attempts,
                    due_ms: e.due_ms,
                    entry: id,
                });
            }
        }
        Ok(out)
    }

    async fn keep(&self, claimed: &Claimed) -> Result<bool, QueueError> {
        Ok(self.state().entries.contains_key(&claimed.entry))
    }

    async fn failed(
        &self,
        claimed: &Claimed,
        attempts: u32,
        due_ms: u64,
    ) -> Result<(), QueueError> {
        if let Some(e) = self.state().entries.get_mut(&claimed.entry) {
            e.attempts = attempts;
            e.due_ms = due_ms;
        }
        Ok(())
    }

    async fn delivered(&self, claimed: &Claimed) -> Result<(), QueueError> {
        self.state().remove(&claimed.entry);
        Ok(())
    }

    async fn dead(&self, claimed: &Claimed, _dead: DeadMessage) -> Result<(), QueueError> {
        self.state().remove(&claimed.entry);
        Ok(())
    }

    async fn pending(&self) -> Result<u64, QueueError> {
        Ok(self.state().entries.len() as u64)
    }

    async fn dead_messages(&self) -> Result<Vec<DeadMessage>, QueueError> {
        Ok(Vec::new())
    }

    async fn replay(&self, _id: Option<&str>, _now_ms: u64) -> Result<usize, QueueError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_by_count_and_bytes_and_duplicates_are_recognised() {
        let q = MemoryQueue::new(2, 10);
        let a = q.push(Bytes::from_static(b"aaaa"), None, 0).await.unwrap();
        assert!(matches!(a, Pushed::Stored(_)));
        assert!(matches!(
            q.push(Bytes::from_static(b"aaaa"), None, 1).await.unwrap(),
            Pushed::Duplicate(_)
        ));
        assert_eq!(
            q.push(Bytes::from_static(b"bbbbbbbb"), None, 1).await,
            Err(QueueError::Full)
        );
        q.push(Bytes::from_static(b"cc"), None, 1).await.unwrap();
        assert_eq!(
            q.push(Bytes::from_static(b"d"), None, 1).await,
            Err(QueueError::Full)
        );
        assert_eq!(q.pending().await.unwrap(), 2);
        let claimed = q.claim(10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        assert!(
            q.claim(10).await.unwrap().is_empty(),
            "each message is handed out once"
        );
        q.delivered(&claimed[0]).await.unwrap();
        assert!(!q.keep(&claimed[0]).await.unwrap());
        assert!(q.keep(&claimed[1]).await.unwrap());
        q.push(Bytes::from_static(b"d"), None, 2).await.unwrap();
        // Delivered, still a duplicate within the window; not after it.
        assert!(matches!(
            q.push(Bytes::from_static(b"aaaa"), None, 3).await.unwrap(),
            Pushed::Duplicate(_)
        ));
        let later = DEDUP_WINDOW.as_millis() as u64 + 1;
        q.delivered(&claimed[1]).await.unwrap();
        assert!(matches!(
            q.push(Bytes::from_static(b"aaaa"), None, later)
                .await
                .unwrap(),
            Pushed::Stored(_)
        ));
    }
}
