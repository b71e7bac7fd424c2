//! Webhook tests' parts: an app that records what the gateway delivers
//! (and can fail or be down), gateways with a `[[webhook]]`, Connect's
//! signature computed here with the hmac crate.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Client;
use sha2::Sha256;

use super::*;

/// The keys the gateways are configured with (`TEST_CONNECT_KEYS`).
pub const KEYS: &str = "old-connect-key-1,new-connect-key-2";
pub const KEY_1: &str = "old-connect-key-1";
pub const KEY_2: &str = "new-connect-key-2";

/// Connect's signature: base64 HMAC-SHA256 of the body under `key`.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// One delivery the app received.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivered {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
    pub fn event_id(&self) -> String {
        self.header("x-dsgw-event-id")
    }
}

#[derive(Default)]
struct AppState {
    received: Mutex<Vec<Delivered>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
}

/// The app behind the gateway: records every request, answers 200 (after
/// `fail_first` 500s).
pub struct App {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    s.received.lock().unwrap().push(Delivered { headers, body });
    let failing = s
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

impl App {
    /// An app on `port` (0: any) of 127.0.0.1.
    pub async fn start(port: u16, fail_first: usize) -> App {
        let state = Arc::new(AppState::default());
        state.fail_first.store(fail_first, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .route("/events", post(record))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        App { addr, state, task }
    }

    pub fn url(port: u16) -> String {
        format!("http://127.0.0.1:{port}/events")
    }

    pub fn received(&self) -> Vec<Delivered> {
        self.state.received.lock().unwrap().clone()
    }

    /// Every request the app got (answered 200 or 500), once there are
    /// `n` of them or `within` has passed.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Delivered> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Where the gateways keep sessions and webhook messages.
#[derive(Clone)]
pub enum Store {
    Memory,
    Redis(String),
    Cluster(Vec<String>),
}

/// A gateway with one `[[webhook]] name = "connect"` delivering to
/// `forward_to`; `webhook_extra` is appended to that table.
pub struct WebhookGateway {
    pub gw: GatewayProcess,
    pub metrics_port: u16,
    pub client: Client,
}

impl WebhookGateway {
    pub async fn start(store: &Store, forward_to: &str, webhook_extra: &str) -> WebhookGateway {
        let (gw, metrics_port) = spawn(store, forward_to, webhook_extra);
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        wait_healthy(&client, &gw).await;
        WebhookGateway {
            gw,
            metrics_port,
            client,
        }
    }

    /// Posts `body` to `/webhooks/<name>` with these signature headers.
    pub async fn post(
        &self,
        name: &str,
        body: &[u8],
        signatures: &[(&str, String)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/webhooks/{name}", self.gw.url))
            .header("Content-Type", "application/json; charset=utf-8")
            .header("X-Authorization-Digest", "HMACSHA256")
            .body(body.to_vec());
        for (n, v) in signatures {
            req = req.header(*n, v);
        }
        req.send().await.unwrap()
    }

    /// Posts `body` signed like Connect with both keys.
    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        let sigs = [
            ("X-DocuSign-Signature-1", sign(KEY_1, body)),
            ("X-DocuSign-Signature-2", sign(KEY_2, body)),
        ];
        self.post("connect", body, &sigs).await
    }

    pub async fn metrics(&self) -> String {
        scrape(&self.client, self.metrics_port).await
    }

    /// Runs `docusign-gateway webhooks <args>` with this gateway's config
    /// and environment: (exit success, stdout, stderr).
    pub fn webhooks_command(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new(gateway_bin())
            .arg("--config")
            .arg(&self.gw.config_path)
            .arg("webhooks")
            .args(args)
            .envs(gateway_env())
            .output()
            .expect("run the webhooks command");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The environment every webhook gateway gets.
fn gateway_env() -> Vec<(String, String)> {
    [
        ("DSGW_DOCUSIGN_CLIENT_SECRET", "test-client-secret"),
        ("DSGW_SESSION_SECRET", SECRET),
        ("TEST_CONNECT_KEYS", KEYS),
        ("RUST_LOG", "info"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Starts a gateway process (not waiting for it).
pub fn spawn(store: &Store, forward_to: &str, webhook_extra: &str) -> (GatewayProcess, u16) {
    let port = free_port();
    let metrics_port = free_port();
    let sock_dir = unique_temp_path("sockdir");
    let store_toml = match store {
        Store::Memory => "store = \"memory\"".to_string(),
        Store::Redis(url) => format!("store = \"redis\"\n[redis]\nurl = \"{url}\""),
        Store::Cluster(urls) => format!(
            "store = \"redis\"\n[redis]\ncluster_urls = [{}]",
            urls.iter()
                .map(|u| format!("\"{u}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
metrics_listen = "127.0.0.1:{metrics_port}"
upgrade_sock = "{sock}"

[docusign]
auth_server = "http://127.0.0.1:9"
allow_plain_http = true
client_id = "test-integration-key"
request_timeout_secs = 5

[session]
secure_cookie = false
{store_toml}

[[webhook]]
name = "connect"
forward_to = "{forward_to}"
hmac_keys_env = "TEST_CONNECT_KEYS"
{webhook_extra}
"#,
        sock = sock_dir.join("upgrade.sock").display(),
    );
    let env = gateway_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (child, logs, path) = spawn_gateway(&toml, &env);
    let gw = GatewayProcess::adopt(child, &format!("http://127.0.0.1:{port}"), logs, path)
        .with_sock_dir(sock_dir);
    (gw, metrics_port)
}

/// The value of a metric series line `name{labels} value` in `text`.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
