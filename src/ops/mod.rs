//! Operations: Prometheus metrics and logging.

pub mod access_log;
pub mod audit;
pub mod log_queue;
pub mod logging;
pub mod metrics;
