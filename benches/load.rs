//! End-to-end load: the gateway binary in front of the fake DocuSign, driven
//! over loopback by concurrent clients for a bounded time. Reports requests
//! per second, latency percentiles and the gateway's resident memory with
//! many sessions. `cargo bench --bench load [-- --seconds N --clients N
//! --sessions N --redis-url redis://HOST:PORT]`; under `cargo test` it runs a
//! tiny smoke load. With `--redis-url` the gateway keeps its sessions in that
//! Redis (`session.store = "redis"`; the bench flushes nothing, use a
//! scratch server).

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_docusign::{FakeConfig, FakeDocuSign};

struct Args {
    seconds: u64,
    clients: usize,
    sessions: usize,
    bench: bool,
    redis_url: Option<String>,
}

fn args() -> Args {
    let all: Vec<String> = std::env::args().collect();
    let bench = all.iter().any(|a| a == "--bench");
    let redis_url = all
        .iter()
        .position(|a| a == "--redis-url")
        .and_then(|i| all.get(i + 1))
        .cloned();
    let get = |name: &str, default: u64| {
        all.iter()
            .position(|a| a == name)
            .and_then(|i| all.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Args {
        seconds: get("--seconds", if bench { 10 } else { 1 }),
        clients: get("--clients", if bench { 32 } else { 2 }) as usize,
        sessions: get("--sessions", if bench { 1000 } else { 3 }) as usize,
        bench,
        redis_url,
    }
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let mut s = String::new();
    let _ = std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|mut f| f.read_to_string(&mut s));
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let a = args();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://127.0.0.1:{port}");
    let mut fake_cfg = FakeConfig::demo_defaults();
    fake_cfg.redirect_uris = vec![format!("{public}/auth/docusign/callback")];
    let fake = FakeDocuSign::start(fake_cfg).await.expect("fake");
    // Load, not DocuSign's rate limits, is measured here.
    let unlimited = fake_docusign::AccountLimits {
        hourly: u64::MAX,
        burst: u64::MAX,
    };
    fake.set_rate_limits(None, unlimited);
    let config = std::env::temp_dir().join(format!("dsgw-load-{}.toml", std::process::id()));
    // Every session is the fake's one user: no per-user bound here.
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public}\"\n\
             [docusign]\nauth_server = \"{}\"\nclient_id = \"demo-integration-key\"\n\
             allowed_api_hosts = [\"{}\", \"{}\"]\nallow_plain_http = true\n\
             [session]\nsecure_cookie = false\nmax_sessions_per_user = 1000000\n[log]\nlevel = \"warn\"\n",
            fake.account_server_url(),
            fake.rest_host_url(0).trim_start_matches("http://"),
            fake.rest_host_url(1).trim_start_matches("http://"),
        ),
    )
    .unwrap();
    // GATEWAY_TEST_BIN: a private copy, as in tests/common (a shared target
    // dir's copy can be replaced by another worktree's build mid-run).
    let bin = std::env::var_os("GATEWAY_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_docusign-gateway").into());
    let mut command = Command::new(bin);
    if let Some(url) = &a.redis_url {
        command
            .env("DSGW_SESSION_STORE", "redis")
            .env("DSGW_REDIS_URL", url);
    }
    let child = command
        .arg("--config")
        .arg(&config)
        .env("DSGW_DOCUSIGN_CLIENT_SECRET", "demo-client-secret")
        .env(
            "DSGW_SESSION_SECRET",
            "load-secret-0123456789abcdef0123456789abcdef",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gateway");
    let pid = child.id();
    let _gateway = Gateway(child);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{public}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_idle = rss_kib(pid);

    // Log in many sessions (each a full consent + callback).
    let mut cookies = Vec::new();
    for _ in 0..a.sessions {
        let r = client
            .get(format!("{public}/auth/login"))
            .send()
            .await
            .unwrap();
        let login_cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let consent = r.headers()["location"].to_str().unwrap().to_string();
        let r = client.get(consent).send().await.unwrap();
        let callback = r.headers()["location"].to_str().unwrap().to_string();
        let r = client
            .get(callback)
            .header("Cookie", login_cookie)
            .send()
            .await
            .unwrap();
        let session = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .find(|c| c.starts_with("dsgw_session="))
            .expect("session cookie");
        cookies.push(session);
    }
    let rss_sessions = rss_kib(pid);

    let account = &fake.config().users[0].accounts[0].account_id;
    let url = format!("{public}/restapi/v2.1/accounts/{account}");
    let end = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for i in 0..a.clients {
        let (client, url, cookie) = (
            client.clone(),
            url.clone(),
            cookies[i % cookies.len()].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                match client.get(&url).header("Cookie", &cookie).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let _ = std::fs::remove_file(&config);
    assert_eq!(errors, 0, "failed requests under load");
    assert!(!latencies.is_empty(), "requests were made");
    if a.bench {
        println!(
            "proxied GET, {} store, {} clients, {} s: {:.0} req/s, p50 {:?}, p99 {:?}, errors {errors}",
            if a.redis_url.is_some() { "redis" } else { "memory" },
            a.clients,
            a.seconds,
            latencies.len() as f64 / a.seconds as f64,
            pct(0.50),
            pct(0.99),
        );
        println!(
            "gateway RSS: {} KiB idle, {} KiB with {} sessions ({:.1} KiB per session), {} KiB after load",
            rss_idle,
            rss_sessions,
            a.sessions,
            (rss_sessions.saturating_sub(rss_idle)) as f64 / a.sessions.max(1) as f64,
            rss_kib(pid)
        );
    }
}
