//! Several gateway instances sharing one fake DocuSign and one Redis, as
//! behind a load balancer: every instance has the same `public_url` (the
//! one the browser and DocuSign know; here the first instance's address)
//! and listens on its own port.

use std::net::SocketAddr;
use std::time::Duration;

use fake_docusign::FakeDocuSign;
use reqwest::{Client, Response};

use super::redis::RedisServer;
use super::*;

/// One Redis, one fake DocuSign, `n` gateways with `session.store = "redis"`.
pub struct Instances {
    pub fake: FakeDocuSign,
    pub redis: RedisServer,
    pub gws: Vec<GatewayProcess>,
    pub client: Client,
}

impl Instances {
    /// `n` gateways; `docusign_extra` is appended to their `[docusign]`
    /// (`{admin_api_url}`, `{platform_api_url}` as in [`Options`]).
    pub async fn start(n: usize, docusign_extra: &str) -> Instances {
        let redis = RedisServer::start();
        let mut opts = Options::default();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let public_url = format!("http://127.0.0.1:{}", ports[0]);
        opts.fake.redirect_uris = vec![format!("{public_url}{CALLBACK}")];
        let fake = FakeDocuSign::start(opts.fake)
            .await
            .expect("fake DocuSign starts");
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut gws = Vec::new();
        for port in ports {
            let gw = spawn_instance(&fake, &redis, port, &public_url, docusign_extra);
            wait_healthy(&client, &gw).await;
            gws.push(gw);
        }
        Instances {
            fake,
            redis,
            gws,
            client,
        }
    }

    /// `path` on instance `i`.
    pub fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.gws[i].url)
    }

    /// A browser that logged in through instance 0.
    pub async fn logged_in(&self) -> Browser {
        let mut b = self.browser(0);
        let resp = b.login("/auth/session").await;
        assert_eq!(resp.status(), 302, "callback redirects");
        b
    }

    /// A fresh browser talking to instance `i`.
    pub fn browser(&self, i: usize) -> Browser {
        Browser {
            client: self.client.clone(),
            cookies: Vec::new(),
            base: self.gws[i].url.clone(),
        }
    }

    /// GET `path` on instance `i` with the browser's cookies, as an API
    /// client (JSON).
    pub async fn get_as(&self, i: usize, b: &Browser, path: &str) -> Response {
        self.client
            .get(self.url(i, path))
            .header("Cookie", b.cookie_header())
            .header("Accept", "application/json")
            .send()
            .await
            .expect("request")
    }

    /// The REST path of the fake user's first account.
    pub fn account_path(&self) -> String {
        let account = &self.fake.config().users[0].accounts[0].account_id;
        format!("/restapi/v2.1/accounts/{account}")
    }

    /// Kills instance `i` with SIGKILL and starts it again with the same
    /// configuration; returns once it is healthy.
    pub async fn restart(&mut self, i: usize) {
        let gw = &mut self.gws[i];
        gw.signal("KILL");
        assert!(gw.wait_exit(Duration::from_secs(10)).is_some(), "killed");
        let (child, logs) = spawn_binary(&gw.config_path, &[], &gw.env);
        gw.child = child;
        gw.logs = logs;
        wait_healthy(&self.client, &self.gws[i]).await;
    }
}

fn spawn_instance(
    fake: &FakeDocuSign,
    redis: &RedisServer,
    port: u16,
    public_url: &str,
    docusign_extra: &str,
) -> GatewayProcess {
    let sock_dir = unique_temp_path("sockdir");
    // REST hosts with their ports (`allowed_api_hosts` matches ports).
    let allowed: Vec<String> = (0..fake.rest_host_count())
        .map(|i| {
            let url = fake.rest_host_url(i);
            let authority = url.trim_start_matches("http://").trim_end_matches('/');
            format!("\"{authority}\"")
        })
        .collect();
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "{public_url}"
threads = 2
upgrade_sock = "{upgrade_sock}"

[docusign]
auth_server = "{auth}"
client_id = "{client_id}"
scopes = ["signature"]
callback_path = "{CALLBACK}"
allowed_api_hosts = [{allowed}]
allow_plain_http = true
{docusign_extra}

[session]
cookie_name = "{COOKIE_NAME}"
secure_cookie = false
min_refresh_interval_secs = 0
store = "redis"
"#,
        auth = fake.account_server_url(),
        client_id = fake.config().client_id,
        upgrade_sock = sock_dir.join("upgrade.sock").display(),
        allowed = allowed.join(", "),
        docusign_extra = docusign_extra
            .replace("{admin_api_url}", &fake.admin_api_url())
            .replace("{platform_api_url}", &fake.platform_api_url()),
    );
    let secret = fake.config().client_secret.clone();
    let env: Vec<(String, String)> = [
        ("DSGW_DOCUSIGN_CLIENT_SECRET", secret.as_str()),
        ("DSGW_SESSION_SECRET", SECRET),
        ("DSGW_REDIS_URL", &redis.url()),
        ("RUST_LOG", "info"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let path = unique_temp_path("toml");
    std::fs::write(&path, toml).expect("write config");
    let (child, logs) = spawn_binary(&path, &[], &env);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    GatewayProcess {
        child,
        url: format!("http://{addr}"),
        addr,
        logs,
        config_path: path,
        env,
        owns_config: true,
        sock_dir: Some(Arc::new(SockDir(sock_dir))),
    }
}
