//! `docusign-gateway webhooks dead <name>` and `... replay <name> [<id>]`:
//! the dead messages of a webhook in the Redis store, listed or queued
//! again. The memory store keeps none outside the running gateway.

use std::sync::Arc;

use super::queue::{DeadMessage, Queue};
use super::redis::RedisQueue;
use crate::config::Config;
use crate::session::redis::{RedisBackend, Sealer, Target};
use crate::util::time::now_millis;

/// The queue of webhook `name` in the configured Redis. Must run inside a
/// tokio runtime.
fn queue(cfg: &Config, name: &str) -> Result<Arc<dyn Queue>, String> {
    let hook = cfg
        .webhook(name)
        .ok_or_else(|| format!("no [[webhook]] named {name:?} in the configuration"))?;
    let Some(redis) = &cfg.redis else {
        return Err(
            "session.store is \"memory\": dead webhook messages are not kept outside the \
             running gateway (its log names each one); `webhooks dead` and `replay` need \
             session.store = \"redis\""
                .into(),
        );
    };
    let target = Target::from(&redis.target);
    let sealer = Sealer::new(cfg.session.secret.expose().as_bytes(), None);
    let backend = RedisBackend::connect(
        target,
        &redis.key_prefix,
        redis.connect_timeout,
        redis.command_timeout,
        sealer,
    )
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(RedisQueue::new(
        backend,
        &hook.name,
        hook.max_pending,
    )))
}

/// The dead messages of webhook `name`, oldest first.
pub async fn dead(cfg: &Config, name: &str) -> Result<Vec<DeadMessage>, String> {
    queue(cfg, name)?
        .dead_messages()
        .await
        .map_err(|e| e.to_string())
}

/// Queues dead message `id` of webhook `name` (or all of them) again;
/// returns how many.
pub async fn replay(cfg: &Config, name: &str, id: Option<&str>) -> Result<usize, String> {
    queue(cfg, name)?
        .replay(id, now_millis())
        .await
        .map_err(|e| e.to_string())
}
