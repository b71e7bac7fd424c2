//! The Prometheus listener (`server.metrics_listen`): pingora-prometheus's
//! app, its answers marked `X-Content-Type-Options: nosniff` like every
//! other answer the gateway writes itself.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::modules::http::compression::ResponseCompressionBuilder;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use pingora_prometheus::PrometheusHttpApp;

/// pingora-prometheus's app with the nosniff header.
pub struct MetricsApp;

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut response = PrometheusHttpApp.response(session).await;
        response.headers_mut().insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            http::HeaderValue::from_static("nosniff"),
        );
        response
    }
}

/// The metrics service, gzip-compressed as pingora-prometheus's own.
pub fn service() -> Service<HttpServer<MetricsApp>> {
    let mut app = HttpServer::new_app(MetricsApp);
    app.add_module(ResponseCompressionBuilder::enable(7));
    Service::new("Prometheus metric HTTP".to_string(), app)
}
