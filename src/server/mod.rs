//! pingora wiring: the gateway service on `server.listen`, the metrics
//! service on `server.metrics_listen`, graceful shutdown and upgrade.

#[cfg(feature = "fake")]
pub mod demo;
mod drain;
mod prometheus;
pub mod tls;
mod upgrade_dir;

pub use upgrade_dir::{check_upgrade_dir, prepare_upgrade_dir};

use std::sync::Arc;

use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;

use pingora::protocols::http::v2::server::{default_h2_options, H2Options};

use crate::ops::metrics::{metrics, RequestClass};
use crate::web::conns::{ConnLimits, Conns};
use crate::web::guarded::Guard;

use crate::config::{Config, ConfigError};
use crate::proxy::{Gateway, GatewayError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// Builds a ready-to-run pingora server for `cfg`. `upgrade`: take the
/// listening sockets over from a running gateway (zero-downtime upgrade).
/// Creates the upgrade socket's directory (0700) when it is missing, and
/// refuses one that group or others can write. Also returns the gateway's
/// client connections.
pub fn build(cfg: Config, upgrade: bool) -> Result<(Server, Arc<Conns>), ServerError> {
    prepare_upgrade_dir(&cfg.server.upgrade_sock)?;
    let tls = match &cfg.server.tls {
        Some(files) => {
            tls::check_tls(files)?;
            Some(tls::settings(files)?)
        }
        None => None,
    };
    let grace = cfg.server.grace_period.as_secs();
    let conf = ServerConf {
        threads: cfg.server.threads,
        // SIGTERM: stop accepting, give in-flight requests `grace` seconds.
        grace_period_seconds: Some(grace),
        graceful_shutdown_timeout_seconds: Some(grace.max(1)),
        upgrade_sock: cfg.server.upgrade_sock.display().to_string(),
        // Attempts per request: the first, one replay after a 401 and a
        // refresh, and one spare for a reused upstream connection that
        // turned out closed. pingora's default is 16.
        max_retries: 3,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let listen = cfg.server.listen;
    let metrics_listen = cfg.server.metrics_listen;
    let read_buffer = cfg.server.client_read_buffer_bytes;
    let max_header = cfg.server.max_header_bytes;
    let conns = Conns::new(
        ConnLimits {
            idle: cfg.server.idle_timeout,
            header: cfg.server.header_timeout,
            max: cfg.server.max_connections,
            max_header,
        },
        count_rejected,
    );
    drain::warn_when_descriptors_below(cfg.server.max_connections);
    let memory = crate::config::warnings::machine_memory();
    if let Some(w) = crate::config::warnings::connection_memory_warning(&cfg, memory) {
        tracing::warn!("{w}");
    }
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();
    let gateway = Gateway::new(cfg)?;
    let webhooks = gateway.webhooks().clone();
    let mut proxy = pingora::proxy::http_proxy(&server.configuration, gateway);
    proxy.h2_options = Some(h2_options(max_header));
    let mut service = Service::new(
        "docusign-gateway".to_string(),
        Guard::new(proxy, conns.clone()),
    );
    let mut endpoint = ListenerConfig::tcp(listen.to_string()).l4_buffer(L4BufferSettings {
        read: Some(read_buffer),
        write: None,
    });
    if let Some(settings) = tls {
        endpoint = endpoint.tls(settings);
    }
    service.add_listener(endpoint);
    server.add_service(service);
    if !webhooks.is_empty() {
        server.add_service(pingora::services::background::background_service(
            "webhook delivery",
            webhooks.delivery_service(),
        ));
    }
    if let Some(addr) = metrics_listen {
        let mut metrics = prometheus::service();
        metrics.add_tcp(&addr.to_string());
        server.add_service(metrics);
    }
    Ok((server, conns))
}

/// The request metrics count what the connection layer refuses (431).
fn count_rejected(status: u16) {
    let label = match status {
        431 => "431",
        _ => "4xx",
    };
    metrics().request(RequestClass::Rejected, label);
}

/// HTTP/2 (over TLS, ALPN `h2`): pingora's bounded defaults, with the
/// header list bounded by `server.max_header_bytes` as HTTP/1.1's head is
/// (the h2 crate answers a larger one 431 and resets the stream).
fn h2_options(max_header: usize) -> H2Options {
    let mut options = default_h2_options();
    options.max_header_list_size(u32::try_from(max_header).unwrap_or(u32::MAX));
    options
}

/// Runs the gateway until a signal stops it: SIGTERM (graceful), SIGINT
/// (fast), SIGQUIT (hand the sockets to a new process started with `--upgrade`).
/// After SIGTERM or SIGQUIT it exits as soon as no request is in flight, at
/// the latest after `grace_period`.
pub fn run(cfg: Config, upgrade: bool) -> Result<(), ServerError> {
    let listen = cfg.server.listen;
    let public = cfg.server.public_url.clone();
    let metrics = cfg.server.metrics_listen;
    crate::ops::audit::set_enabled(cfg.log.audit);
    // The target's Debug form shows no password.
    let session_store = match &cfg.redis {
        Some(redis) => format!("redis {:?}", redis.target),
        None => "memory".to_owned(),
    };
    let (server, conns) = build(cfg, upgrade)?;
    drain::exit_when_drained(&server, conns);
    tracing::info!(
        %listen,
        public_url = %public,
        metrics = metrics.map(|m| m.to_string()).unwrap_or_else(|| "off".into()),
        upgrade,
        session_store,
        "docusign-gateway starting"
    );
    // `run_forever`, with the log queue written out before the exit.
    server.run(RunArgs::default());
    crate::ops::logging::flush();
    std::process::exit(0)
}
