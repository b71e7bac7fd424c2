//! End-to-end load: the gateway binary in front of the fake DocuSign, driven
//! over loopback by concurrent clients. Reports requests per second, latency
//! percentiles and the gateway's resident memory with many sessions.
//!
//! `cargo bench --bench load [-- --seconds N --rounds N --clients N
//! --sessions N --users N --redis-url redis://HOST:PORT --stores
//! memory,redis]`; under `cargo test` it runs a tiny smoke load of the
//! memory store. `--users N` (default 1) spreads the sessions over N users of
//! the fake, who log in in turn (`--users` = `--sessions`: a session each).
//!
//! With `--redis-url` (a scratch `redis-server`: the bench flushes nothing)
//! the stores named by `--stores` (default `memory,redis`) each get a gateway
//! in the same run, in front of the same fake DocuSign, and their rounds are
//! interleaved (memory, redis, memory, redis, ...), so the throughput ratio
//! of the two is not skewed by the machine's drift. For the Redis store it
//! also reports what Redis holds per session (`INFO memory`, `DBSIZE`,
//! `MEMORY USAGE` of one session record). The memory store gets room for
//! every session; the Redis store keeps the default cache
//! (`session.max_sessions`, or `DSGW_SESSION_MAX_SESSIONS`), which bounds the
//! gateway's memory whatever Redis holds.

mod support;

use std::time::{Duration, Instant};

use fake_docusign::{FakeConfig, FakeDocuSign};

struct Args {
    seconds: u64,
    rounds: usize,
    clients: usize,
    sessions: usize,
    users: usize,
    bench: bool,
    redis_url: Option<String>,
    stores: Vec<Store>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Store {
    Memory,
    Redis,
}

fn args() -> Args {
    let all: Vec<String> = std::env::args().collect();
    let bench = all.iter().any(|a| a == "--bench");
    let value = |name: &str| {
        all.iter()
            .position(|a| a == name)
            .and_then(|i| all.get(i + 1))
            .cloned()
    };
    let get =
        |name: &str, default: u64| value(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let redis_url = value("--redis-url");
    let default_stores = if redis_url.is_some() {
        "memory,redis"
    } else {
        "memory"
    };
    let stores = value("--stores")
        .unwrap_or_else(|| default_stores.to_string())
        .split(',')
        .map(|s| match s.trim() {
            "memory" => Store::Memory,
            "redis" => Store::Redis,
            other => panic!("--stores: unknown store {other:?} (memory, redis)"),
        })
        .collect::<Vec<_>>();
    assert!(
        redis_url.is_some() || !stores.contains(&Store::Redis),
        "--stores redis needs --redis-url"
    );
    Args {
        seconds: get("--seconds", if bench { 10 } else { 1 }),
        rounds: get("--rounds", if bench { 3 } else { 1 }) as usize,
        clients: get("--clients", if bench { 32 } else { 2 }) as usize,
        sessions: get("--sessions", if bench { 1000 } else { 3 }) as usize,
        users: get("--users", if bench { 1 } else { 2 }).max(1) as usize,
        bench,
        redis_url,
        stores,
    }
}

/// One gateway under test, with its logged-in sessions and measurements.
struct Target {
    store: Store,
    public: String,
    gateway: support::GatewayProcess,
    cookies: Vec<String>,
    rss_idle: u64,
    rss_sessions: u64,
    /// RSS once every session has served one request (the first request of
    /// a session builds what it keeps for the next ones).
    rss_used: u64,
    login_secs: f64,
    rates: Vec<f64>,
    latencies: Vec<Duration>,
    /// Commands Redis processed during this target's rounds, less the
    /// bench's own `INFO` calls (other instances' too: the pub/sub health
    /// checks of every gateway connected to it).
    redis_commands: u64,
}

async fn start_target(a: &Args, store: Store, port: u16, fake: &FakeDocuSign) -> Target {
    let public = format!("http://127.0.0.1:{port}");
    // Sessions may share a user (`--users`): no per-user bound here.
    let capacity = match store {
        Store::Redis => String::new(),
        Store::Memory => format!("max_sessions = {}\n", a.sessions.max(100_000)),
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
    let url = a.redis_url.clone().unwrap_or_default();
    let env: Vec<(&str, &str)> = match store {
        Store::Redis => vec![("DSGW_SESSION_STORE", "redis"), ("DSGW_REDIS_URL", &url)],
        Store::Memory => Vec::new(),
    };
    let name = format!("load-{store:?}").to_lowercase();
    let gateway = support::GatewayProcess::start(&name, port, &config, &env, None).await;
    let rss_idle = gateway.rss_kib();
    Target {
        store,
        public,
        gateway,
        cookies: Vec::new(),
        rss_idle,
        rss_sessions: 0,
        rss_used: 0,
        login_secs: 0.0,
        rates: Vec::new(),
        latencies: Vec::new(),
        redis_commands: 0,
    }
}

/// `a.clients` clients, each on one session, for `seconds`: the requests
/// that succeeded per second and their latencies. Any failure fails the run.
async fn round(
    client: &reqwest::Client,
    url: &str,
    cookies: &[String],
    clients: usize,
    seconds: u64,
) -> (f64, Vec<Duration>) {
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (client, url, cookie) = (
            client.clone(),
            url.to_string(),
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
        let (l, e) = t.await.expect("client task");
        latencies.extend(l);
        errors += e;
    }
    assert_eq!(errors, 0, "failed requests under load");
    assert!(!latencies.is_empty(), "requests were made");
    (latencies.len() as f64 / seconds as f64, latencies)
}

/// One request through each session of `cookies`, `concurrency` at a time.
async fn use_each(client: &reqwest::Client, url: &str, cookies: &[String], concurrency: usize) {
    let per_task = cookies.len().div_ceil(concurrency.max(1)).max(1);
    let mut tasks = Vec::new();
    for chunk in cookies.chunks(per_task) {
        let (client, url, chunk) = (client.clone(), url.to_string(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for cookie in chunk {
                let r = client.get(&url).header("Cookie", &cookie).send().await;
                let status = r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                assert_eq!(status, 200, "a session's first request");
                let _ = r.expect("checked").bytes().await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("use_each task");
    }
}

/// What the Redis server reports: `used_memory` in bytes and the key count.
async fn redis_usage(con: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(con)
        .await
        .expect("INFO memory");
    let used = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO");
    let keys: u64 = redis::cmd("DBSIZE").query_async(con).await.expect("DBSIZE");
    (used, keys)
}

/// Commands the Redis server has processed since it started.
async fn redis_commands(con: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(con)
        .await
        .expect("INFO stats");
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_commands_processed in INFO")
}

/// `MEMORY USAGE` of one session record (`{prefix}:{tag}:s`), if one is found.
async fn one_record_bytes(con: &mut redis::aio::MultiplexedConnection) -> Option<u64> {
    let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("dsgw:*:s")
        .arg("COUNT")
        .arg(10_000)
        .query_async(con)
        .await
        .ok()?;
    let key = keys.first()?;
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .query_async(con)
        .await
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let a = args();
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < a.stores.len() {
        let port = support::free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    let mut fake_cfg = FakeConfig::demo_defaults();
    fake_cfg.redirect_uris = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/auth/docusign/callback"))
        .collect();
    // More users: copies of the demo user under other ids, with its accounts.
    let demo = fake_cfg.users[0].clone();
    fake_cfg.users = (0..a.users)
        .map(|i| {
            let mut user = demo.clone();
            user.sub = format!("{i:08x}-0000-4000-8000-{:012x}", i + 1);
            user.email = format!("user{i}@example.com");
            user
        })
        .collect();
    let fake = FakeDocuSign::start(fake_cfg).await.expect("fake");
    fake.set_users_consent_in_turn(a.users > 1);
    support::without_rate_limits(&fake);
    let client = support::client();
    let mut redis_con = match &a.redis_url {
        Some(url) => Some(
            redis::Client::open(url.as_str())
                .expect("--redis-url")
                .get_multiplexed_async_connection()
                .await
                .expect("connect to --redis-url"),
        ),
        None => None,
    };

    let mut targets = Vec::new();
    for (&store, &port) in a.stores.iter().zip(&ports) {
        targets.push(start_target(&a, store, port, &fake).await);
    }
    // Log in many sessions on each (each a full consent + callback), 16 at
    // a time; for Redis, what the server holds before and after.
    for t in &mut targets {
        let before = match (&mut redis_con, t.store) {
            (Some(con), Store::Redis) => Some(redis_usage(con).await),
            _ => None,
        };
        let started = Instant::now();
        t.cookies = support::login_many(&client, &t.public, a.sessions, 16).await;
        t.login_secs = started.elapsed().as_secs_f64();
        t.rss_sessions = t.gateway.rss_kib();
        if let (Some(con), Some((used0, keys0))) = (&mut redis_con, before) {
            let (used1, keys1) = redis_usage(con).await;
            let record = one_record_bytes(con).await;
            if a.bench {
                println!(
                    "redis: {} keys and {} bytes of used_memory more after {} logins: {:.0} bytes and {:.2} keys per session; one session record: {} bytes (MEMORY USAGE)",
                    keys1.saturating_sub(keys0),
                    used1.saturating_sub(used0),
                    a.sessions,
                    used1.saturating_sub(used0) as f64 / a.sessions.max(1) as f64,
                    keys1.saturating_sub(keys0) as f64 / a.sessions.max(1) as f64,
                    record.map_or("none found".into(), |b| b.to_string()),
                );
            }
        }
    }

    let account = &fake.config().users[0].accounts[0].account_id;
    for t in &mut targets {
        let url = format!("{}/restapi/v2.1/accounts/{account}", t.public);
        use_each(&client, &url, &t.cookies, 32).await;
        t.rss_used = t.gateway.rss_kib();
    }
    // Rounds in the order A B, B A, A B, ...: a drift of the machine's
    // speed during a pair of rounds favours neither.
    for n in 0..a.rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if n % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let t = &mut targets[i];
            let url = format!("{}/restapi/v2.1/accounts/{account}", t.public);
            let before = match &mut redis_con {
                Some(con) => redis_commands(con).await,
                None => 0,
            };
            let (rate, latencies) = round(&client, &url, &t.cookies, a.clients, a.seconds).await;
            if let Some(con) = &mut redis_con {
                // Less the INFO before (an INFO does not count itself).
                let during = redis_commands(con).await.saturating_sub(before + 1);
                t.redis_commands += during;
            }
            t.rates.push(rate);
            t.latencies.extend(latencies);
        }
    }

    if !a.bench {
        return;
    }
    for t in &mut targets {
        let idle = t.rss_idle;
        let per_session =
            |rss_kib: u64| rss_kib.saturating_sub(idle) as f64 * 1024.0 / a.sessions.max(1) as f64;
        t.latencies.sort();
        println!(
            "{:?} store: proxied GET, {} clients, {} rounds of {} s: median {:.0} req/s (rounds {:?}), p50 {:?}, p99 {:?}, no errors",
            t.store,
            a.clients,
            a.rounds,
            a.seconds,
            median(&t.rates),
            t.rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
            percentile(&t.latencies, 0.50),
            percentile(&t.latencies, 0.99),
        );
        if redis_con.is_some() {
            println!(
                "{:?} store: Redis processed {} commands during its rounds ({} requests)",
                t.store,
                t.redis_commands,
                t.latencies.len()
            );
        }
        println!(
            "{:?} store: gateway RSS {} KiB idle, {} KiB with {} sessions of {} users ({:.0} bytes per session; logins took {:.0} s), {} KiB once each served a request ({:.0} bytes per session), {} KiB after load",
            t.store,
            t.rss_idle,
            t.rss_sessions,
            a.sessions,
            a.users,
            per_session(t.rss_sessions),
            t.login_secs,
            t.rss_used,
            per_session(t.rss_used),
            t.gateway.rss_kib()
        );
    }
    if let [m, r] = &targets[..] {
        // Each round's ratio is of two back-to-back rounds; their median
        // is the figure that the machine's drift moves least.
        let ratios: Vec<f64> = r
            .rates
            .iter()
            .zip(&m.rates)
            .map(|(r, m)| r / m.max(1.0))
            .collect();
        println!(
            "throughput {:?}/{:?}: median of the rounds' ratios {:.3} (rounds {:?}); ratio of the medians {:.3}",
            r.store,
            m.store,
            median(&ratios),
            ratios.iter().map(|x| (x * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            median(&r.rates) / median(&m.rates).max(1.0)
        );
    }
}
