//! pingora wiring: a server with the gateway service on `server.listen`.

use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;

use crate::config::Config;
use crate::gateway::Gateway;

/// Seconds in-flight requests get to finish after SIGTERM.
const GRACE_PERIOD_SECS: u64 = 10;

/// Builds a ready-to-run pingora server for `cfg`.
pub fn build(cfg: Config, opt: Option<Opt>) -> Result<Server, String> {
    let conf = ServerConf {
        threads: cfg.server.threads,
        grace_period_seconds: Some(GRACE_PERIOD_SECS),
        graceful_shutdown_timeout_seconds: Some(GRACE_PERIOD_SECS),
        // Attempts per request: the first, one replay after a 401 and a
        // refresh, and one spare for a reused upstream connection that
        // turned out closed. pingora's default is 16.
        max_retries: 3,
        ..ServerConf::default()
    };
    let listen = cfg.server.listen;
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let gateway = Gateway::new(cfg)?;
    let mut service = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        gateway,
        "docusign-gateway",
    );
    service.add_tcp(&listen.to_string());
    server.add_service(service);
    Ok(server)
}

/// Runs the gateway until a signal stops it.
pub fn run(cfg: Config, opt: Option<Opt>) -> Result<(), String> {
    let listen = cfg.server.listen;
    let public = cfg.server.public_url.clone();
    let server = build(cfg, opt)?;
    tracing::info!(%listen, public_url = %public, "docusign-gateway listening");
    server.run_forever()
}
