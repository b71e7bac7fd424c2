//! End-to-end load: the gateway binary in front of the fake DocuSign, driven
//! over loopback by concurrent clients for a bounded time. Reports requests
//! per second, latency percentiles and the gateway's resident memory with
//! many sessions. `cargo bench --bench load [-- --seconds N --clients N
//! --sessions N --redis-url redis://HOST:PORT]`; under `cargo test` it runs a
//! tiny smoke load. With `--redis-url` the gateway keeps its sessions in that
//! Redis (`session.store = "redis"`; the bench flushes nothing, use a
//! scratch server).

mod support;

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

#[tokio::main]
async fn main() {
    let a = args();
    let port = support::free_port();
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
    // Every session is the fake's one user: no per-user bound here. In
    // memory, room for every session the bench logs in; with Redis, the
    // default cache (`session.max_sessions`) bounds the gateway's memory.
    let capacity = match a.redis_url {
        Some(_) => String::new(),
        None => format!("max_sessions = {}\n", a.sessions.max(100_000)),
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public}\"\n\
         [docusign]\nauth_server = \"{}\"\nclient_id = \"demo-integration-key\"\n\
         allowed_api_hosts = [\"{}\", \"{}\"]\nallow_plain_http = true\n\
         [session]\nsecure_cookie = false\nmax_sessions_per_user = 10000000\n{capacity}\
         [log]\nlevel = \"warn\"\n",
        fake.account_server_url(),
        fake.rest_host_url(0).trim_start_matches("http://"),
        fake.rest_host_url(1).trim_start_matches("http://"),
    );
    let redis_env;
    let env: &[(&str, &str)] = match &a.redis_url {
        Some(url) => {
            redis_env = [
                ("DSGW_SESSION_STORE", "redis"),
                ("DSGW_REDIS_URL", url.as_str()),
            ];
            &redis_env
        }
        None => &[],
    };
    let gateway = support::GatewayProcess::start("load", port, &config, env, None).await;
    let client = support::client();
    let rss_idle = gateway.rss_kib();

    // Log in many sessions (each a full consent + callback), 16 at a time.
    let started = Instant::now();
    let cookies = support::login_many(&client, &public, a.sessions, 16).await;
    let login_secs = started.elapsed().as_secs_f64();
    let rss_sessions = gateway.rss_kib();

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
            "gateway RSS: {} KiB idle, {} KiB with {} sessions ({:.0} bytes per session; logins took {:.0} s), {} KiB after load",
            rss_idle,
            rss_sessions,
            a.sessions,
            (rss_sessions.saturating_sub(rss_idle)) as f64 * 1024.0 / a.sessions.max(1) as f64,
            login_secs,
            gateway.rss_kib()
        );
    }
}
