//! A refresh storm: many sessions whose access tokens enter the refresh
//! window at the same moment, all active at once. Reports the refresh grants
//! DocuSign received (exactly one per session), the most that ran at once
//! (bounded by `docusign.max_refreshes_in_flight`), failed requests (none)
//! and the time until every session was served again.
//!
//! `cargo bench --bench refresh_storm [-- --sessions 10000 --clients 256
//! --max-in-flight 32 --token-delay-ms 20 --threads 2]`; under `cargo test`
//! a small storm with the same checks.
//!
//! With `--redis-url redis://127.0.0.1:PORT` (a scratch `redis-server`) the
//! sessions live in Redis and `--instances` gateways (default 2) share it:
//! every session's request goes to every instance at the same moment, so
//! the instances race for each refresh and the Redis lease must leave
//! exactly one grant per session.
//!
//! The fake DocuSign issues access tokens that live `WINDOW + 2` seconds and
//! the gateway refreshes `WINDOW` seconds before expiry, so 2 s after the
//! last login every token is inside the window; no request is made before
//! that. Its token endpoint then answers after `--token-delay-ms`, as a real
//! one over the internet would.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_docusign::{FakeConfig, FakeDocuSign, TokenEndpointMode};

/// `session.refresh_before_expiry_secs` of the gateway.
const WINDOW: u64 = 300;

struct Args {
    sessions: usize,
    clients: usize,
    max_in_flight: usize,
    token_delay_ms: u64,
    threads: usize,
    bench: bool,
    redis_url: Option<String>,
    instances: usize,
}

fn args() -> Args {
    let all: Vec<String> = std::env::args().collect();
    let bench = all.iter().any(|a| a == "--bench");
    let get = |name: &str, bench_default: u64, test_default: u64| {
        all.iter()
            .position(|a| a == name)
            .and_then(|i| all.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(if bench { bench_default } else { test_default })
    };
    let redis_url = all
        .iter()
        .position(|a| a == "--redis-url")
        .and_then(|i| all.get(i + 1))
        .cloned();
    let instances = if redis_url.is_some() { 2 } else { 1 };
    Args {
        instances: get("--instances", instances, instances).max(1) as usize,
        redis_url,
        sessions: get("--sessions", 10_000, 40) as usize,
        clients: get("--clients", 256, 16) as usize,
        max_in_flight: get("--max-in-flight", 32, 3) as usize,
        token_delay_ms: get("--token-delay-ms", 20, 20),
        threads: get("--threads", 2, 2) as usize,
        bench,
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let ports: Vec<u16> = (0..a.instances).map(|_| support::free_port()).collect();
    let publics: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let public = publics[0].clone();
    let mut cfg = FakeConfig::demo_defaults();
    cfg.redirect_uris = publics
        .iter()
        .map(|p| format!("{p}/auth/docusign/callback"))
        .collect();
    cfg.access_token_ttl = Duration::from_secs(WINDOW + 2);
    let fake = FakeDocuSign::start(cfg).await.expect("fake DocuSign");
    support::without_rate_limits(&fake);
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
    let mut gateways = Vec::new();
    for (port, public) in ports.iter().zip(&publics) {
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public}\"\nthreads = {}\n\
             [docusign]\nauth_server = \"{}\"\nclient_id = \"demo-integration-key\"\n\
             allowed_api_hosts = [\"{}\"]\nallow_plain_http = true\nmax_refreshes_in_flight = {}\n\
             [session]\nsecure_cookie = false\nrefresh_before_expiry_secs = {WINDOW}\n\
             max_sessions = {}\nmax_sessions_per_user = {}\n\
             [log]\nlevel = \"warn\"\naccess = false\n",
            a.threads,
            fake.account_server_url(),
            fake.rest_host_url(0).trim_start_matches("http://"),
            a.max_in_flight,
            a.sessions.max(1000),
            a.sessions.max(1000),
        );
        gateways.push(support::GatewayProcess::start("storm", *port, &config, env, None).await);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(a.clients)
        .build()
        .expect("client");

    let started = Instant::now();
    let cookies = Arc::new(support::login_many(&client, &public, a.sessions, 16).await);
    let login_secs = started.elapsed().as_secs_f64();
    // Every token is inside the refresh window 2 s after it was issued.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // Refreshed tokens live DocuSign's 8 hours: far outside the window.
    fake.set_access_token_ttl(fake_docusign::DEFAULT_ACCESS_TOKEN_TTL);
    fake.set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(
        a.token_delay_ms,
    )));
    fake.reset_max_concurrent_token_requests();
    let grants_before = fake.stats().token_refresh;

    let account = fake.config().users[0].accounts[0].account_id.clone();
    let urls: Vec<String> = publics
        .iter()
        .map(|p| format!("{p}/restapi/v2.1/accounts/{account}"))
        .collect();
    let storm = Instant::now();
    let (latencies, failures) = pass(&client, &urls, &cookies, a.clients).await;
    let drain = storm.elapsed();
    let stats = fake.stats();
    let grants = stats.token_refresh - grants_before;
    let most = stats.max_concurrent_token_requests;

    // Every session is fresh now: another pass causes no grant.
    fake.set_token_endpoint(TokenEndpointMode::Normal);
    let (_, failures_after) = pass(&client, &urls, &cookies, a.clients).await;
    let grants_after = fake.stats().token_refresh - grants_before - grants;

    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    if a.bench {
        println!(
            "refresh storm: {} sessions (logged in in {login_secs:.0} s), {} clients, \
             {} instance(s) ({} store), server.threads = {}, max_refreshes_in_flight = {}, \
             token endpoint delay {} ms",
            a.sessions,
            a.clients,
            a.instances,
            if a.redis_url.is_some() {
                "Redis"
            } else {
                "memory"
            },
            a.threads,
            a.max_in_flight,
            a.token_delay_ms
        );
        println!(
            "  refresh grants {grants} (then {grants_after} on a second pass), at most {most} at once, \
             failed requests {failures} (then {failures_after}), drained in {:.2} s; \
             latency p50 {:?}, p99 {:?}, max {:?}; gateway RSS {:?} KiB",
            drain.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            latencies.last().copied().unwrap_or_default(),
            gateways.iter().map(|g| g.rss_kib()).collect::<Vec<_>>()
        );
    }
    assert_eq!(failures, 0, "no request fails during the storm");
    assert_eq!(failures_after, 0, "nor after it");
    assert_eq!(
        grants as usize, a.sessions,
        "exactly one refresh grant per session"
    );
    assert_eq!(grants_after, 0, "refreshed sessions need no other grant");
    assert!(
        most as usize <= a.max_in_flight * a.instances,
        "at most max_refreshes_in_flight grants at once per instance: {most}"
    );
}

/// For every session, one request to each instance at the same moment,
/// `clients` sessions at a time: sorted latencies of the 200s, and how many
/// answers were not 200.
async fn pass(
    client: &reqwest::Client,
    urls: &[String],
    cookies: &Arc<Vec<String>>,
    clients: usize,
) -> (Vec<Duration>, usize) {
    let mut tasks = Vec::new();
    for k in 0..clients.max(1) {
        let (client, urls, cookies) = (client.clone(), urls.to_vec(), cookies.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            for cookie in cookies.iter().skip(k).step_by(clients.max(1)) {
                let t = Instant::now();
                let answers = futures_util::future::join_all(
                    urls.iter()
                        .map(|url| client.get(url).header("Cookie", cookie).send()),
                )
                .await;
                for answer in answers {
                    match answer {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            latencies.push(t.elapsed());
                        }
                        _ => failures += 1,
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.expect("client task");
        latencies.extend(l);
        failures += f;
    }
    latencies.sort();
    (latencies, failures)
}
