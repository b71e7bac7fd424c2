//! Shutdown without waiting for nothing, and the descriptor limit check.
//!
//! After SIGTERM (or SIGQUIT, once the sockets are handed over) pingora
//! stops accepting and then sleeps the whole `grace_period_seconds` before
//! it stops its runtimes, whether or not a request is still in flight. A
//! thread of ours watches pingora's execution phase; during the grace period
//! it exits the process as soon as no connection has a request in progress
//! (or a head being read) on two checks in a row.

use std::sync::Arc;
use std::time::Duration;

use pingora::server::{ExecutionPhase, Server};

use crate::web::conns::Conns;

const POLL: Duration = Duration::from_millis(50);

/// Exits the process during pingora's grace period once nothing is in flight.
pub fn exit_when_drained(server: &Server, conns: Arc<Conns>) {
    let mut phases = server.watch_execution_phase();
    let spawned = std::thread::Builder::new()
        .name("dsgw-drain".into())
        .spawn(move || loop {
            use tokio::sync::broadcast::error::RecvError;
            match phases.blocking_recv() {
                Ok(ExecutionPhase::ShutdownGracePeriod) => break wait_then_exit(&conns),
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch for shutdown: SIGTERM waits the whole grace period");
    }
}

fn wait_then_exit(conns: &Conns) {
    let mut idle_checks = 0;
    loop {
        if conns.in_flight() == 0 {
            idle_checks += 1;
        } else {
            idle_checks = 0;
        }
        if idle_checks >= 2 {
            tracing::info!("graceful shutdown: no request in flight, exiting");
            crate::ops::logging::flush();
            std::process::exit(0);
        }
        std::thread::sleep(POLL);
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None`
/// when unknown or unlimited.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files(&text)
}

fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Warns when the open-file limit is below `max_connections` (each client
/// connection is a descriptor, and the gateway needs more for upstreams).
pub fn warn_when_descriptors_below(max_connections: usize) {
    if let Some(limit) = open_files_limit() {
        if limit < max_connections as u64 {
            tracing::warn!(
                open_files_limit = limit,
                max_connections,
                "the open-file limit (ulimit -n) is below server.max_connections: \
                 past it new connections fail; raise the limit or lower the cap"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_files_limit_is_read() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max cpu time              unlimited            unlimited            seconds\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_files(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files(unlimited), None);
        assert!(open_files_limit().is_some(), "Linux has /proc/self/limits");
    }
}
