//! What the end-to-end benches share: the gateway binary as a child process
//! (killed on drop), logins through the fake DocuSign, resident memory.

#![allow(dead_code)] // each bench uses its own subset

pub mod bare;

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; the caller binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// The gateway binary under test. `GATEWAY_TEST_BIN`: a private copy, as in
/// tests/common (a shared target dir's copy can be replaced by another
/// worktree's build mid-run).
pub fn gateway_bin() -> PathBuf {
    std::env::var_os("GATEWAY_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_docusign-gateway").into())
        .into()
}

/// The gateway, running on a configuration file of its own.
pub struct GatewayProcess {
    child: Child,
    config: PathBuf,
    pub public: String,
}

impl GatewayProcess {
    /// Starts the gateway with `config` (TOML) plus `env`, its stderr (the
    /// log) to `log` or discarded, and waits (at most 20 s) for `/healthz`.
    pub async fn start(
        name: &str,
        port: u16,
        config: &str,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> GatewayProcess {
        let path = std::env::temp_dir().join(format!("dsgw-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, config).expect("write the gateway config");
        let stderr = match log {
            Some(file) => Stdio::from(std::fs::File::create(file).expect("create the log file")),
            None => Stdio::null(),
        };
        let child = Command::new(gateway_bin())
            .arg("--config")
            .arg(&path)
            .env("DSGW_DOCUSIGN_CLIENT_SECRET", "demo-client-secret")
            .env(
                "DSGW_SESSION_SECRET",
                "load-secret-0123456789abcdef0123456789abcdef",
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the gateway");
        let gateway = GatewayProcess {
            child,
            config: path,
            public: format!("http://127.0.0.1:{port}"),
        };
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client
            .get(format!("{}/healthz", gateway.public))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// An HTTP client that does not follow redirects.
/// Lifts the fake's DocuSign rate limits on every account: the benches
/// measure load, not DocuSign's limits.
pub fn without_rate_limits(fake: &fake_docusign::FakeDocuSign) {
    fake.set_rate_limits(
        None,
        fake_docusign::AccountLimits {
            hourly: u64::MAX,
            burst: u64::MAX,
        },
    );
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// One full login (consent at the fake, callback): the session cookie
/// (`name=value`).
pub async fn login(client: &reqwest::Client, public: &str) -> String {
    let r = client
        .get(format!("{public}/auth/login"))
        .send()
        .await
        .expect("login");
    let login_cookie = first_pair(r.headers()["set-cookie"].to_str().expect("cookie"));
    let consent = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let r = client.get(consent).send().await.expect("consent");
    let callback = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let r = client
        .get(callback)
        .header("Cookie", login_cookie)
        .send()
        .await
        .expect("callback");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(first_pair)
        .find(|c| c.starts_with("dsgw_session="))
        .expect("session cookie")
}

/// `n` logins, `concurrency` at a time: their session cookies.
pub async fn login_many(
    client: &reqwest::Client,
    public: &str,
    n: usize,
    concurrency: usize,
) -> Vec<String> {
    let per_task = n.div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for t in 0..concurrency.max(1) {
        let count = per_task.min(n.saturating_sub(t * per_task));
        let (client, public) = (client.clone(), public.to_string());
        tasks.push(tokio::spawn(async move {
            let mut cookies = Vec::with_capacity(count);
            for _ in 0..count {
                cookies.push(login(&client, &public).await);
            }
            cookies
        }));
    }
    let mut cookies = Vec::with_capacity(n);
    for t in tasks {
        cookies.extend(t.await.expect("login task"));
    }
    cookies
}

/// A gateway token of the session of `cookie` (`POST /auth/token`).
pub async fn gateway_token(client: &reqwest::Client, public: &str, cookie: &str) -> String {
    let r = client
        .post(format!("{public}/auth/token"))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200, "POST /auth/token");
    let body: serde_json::Value = r.json().await.expect("token JSON");
    body["token"].as_str().expect("token field").to_string()
}

fn first_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

/// Resident memory of a process, KiB (0 if unknown).
pub fn rss_kib(pid: u32) -> u64 {
    let mut s = String::new();
    let _ = std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|mut f| f.read_to_string(&mut s));
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The median as the perf harness (`run.sh`) takes it: of an even count,
/// the two middle values' mean; NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
