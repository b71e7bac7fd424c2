//! The baseline the benches measure the gateway against: a pingora proxy
//! that sets `Host` and `Authorization`, drops `Cookie` and forwards,
//! nothing else (no log, no session), built from this project's pingora.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Bare {
    upstream: std::net::SocketAddr,
    host: String,
    authorization: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        _: &mut Session,
        req: &mut RequestHeader,
        _: &mut (),
    ) -> Result<()> {
        req.insert_header("Host", self.host.as_str())?;
        req.insert_header("Authorization", self.authorization.as_str())?;
        req.remove_header("Cookie");
        Ok(())
    }
}

/// Runs the bare proxy: `args` are the harness's `PINGORA_MIN_BIN`
/// convention, `LISTEN UPSTREAM_ADDR UPSTREAM_HOST TOKEN [THREADS
/// [KEEPALIVE_POOL]]` (pingora's `upstream_keepalive_pool_size`, default
/// pingora's 128). Never returns.
pub fn run(args: &[String]) {
    let usage =
        "--bare-pingora LISTEN UPSTREAM_ADDR UPSTREAM_HOST TOKEN [THREADS [KEEPALIVE_POOL]]";
    assert!(args.len() >= 4, "usage: {usage}");
    let defaults = ServerConf::default();
    let conf = ServerConf {
        threads: args.get(4).map_or(1, |t| t.parse().expect("THREADS")),
        upstream_keepalive_pool_size: args
            .get(5)
            .map_or(defaults.upstream_keepalive_pool_size, |p| {
                p.parse().expect("KEEPALIVE_POOL")
            }),
        ..defaults
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let bare = Bare {
        upstream: args[1].parse().expect("UPSTREAM_ADDR"),
        host: args[2].clone(),
        authorization: format!("Bearer {}", args[3]),
    };
    let mut service = http_proxy_service(&server.configuration, bare);
    service.add_tcp(&args[0]);
    server.add_service(service);
    server.run_forever();
}
