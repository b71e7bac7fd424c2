//! A session as the bytes stored in Redis (JSON, sealed by the backend),
//! and how the store reports what it cannot read or reach.

use std::sync::Arc;

use tracing::warn;

use super::BackendError;
use crate::session::model::Session;
use crate::session::store::StoreError;
use crate::util::ids::log_id;

/// A record that does not open or decode (sealed under another secret,
/// tampered with, another version's format): no session, with a warning.
pub(super) fn corrupt(id: &str, why: &str) -> Option<Arc<Session>> {
    warn!(session = %log_id(id), reason = why, "a stored session is unreadable; taken as logged out");
    None
}

pub(super) fn unavailable(e: BackendError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(super) fn encode(session: &Session) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(session)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode a session: {e}")))
}

/// The session of a record; its generation must match the record's.
pub(super) fn decode(gen: u64, data: &[u8]) -> Result<Session, String> {
    let session: Session = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    if session.tokens.generation != gen {
        return Err("generation mismatch".into());
    }
    Ok(session)
}
