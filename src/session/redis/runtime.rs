//! A small tokio runtime of the Redis store's own, for its connection and
//! subscriber tasks: the store is built before pingora's runtimes exist,
//! and its tasks must live as long as the store, whichever runtime serves
//! the requests that use it.

use tokio::runtime::{Builder, Handle, Runtime};

use super::BackendError;

/// Owns the runtime; dropping it stops the tasks without waiting (so it may
/// be dropped inside another runtime, as tests do).
pub(crate) struct Background {
    runtime: Option<Runtime>,
}

impl Background {
    pub(crate) fn new() -> Result<Self, BackendError> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dsgw-redis")
            .enable_all()
            .build()
            .map_err(|e| {
                BackendError::Unavailable(format!("cannot start the Redis runtime: {e}"))
            })?;
        Ok(Background {
            runtime: Some(runtime),
        })
    }

    pub(crate) fn handle(&self) -> Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the runtime lives until drop"),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
