//! DocuSign Connect webhooks under load: how many messages a second
//! `POST /webhooks/<name>` accepts (verified, stored, answered 200) with N
//! concurrent senders, and the delay from each POST's 200 to the app
//! receiving the message (p50, p99, max), for the Redis store and, as the
//! baseline, the memory store, in one run.
//!
//! `cargo bench --bench webhooks [-- --rounds 3 --messages 4000
//! --large-messages 200 --senders 16,64 --sizes 2048,262144 --threads 2]`;
//! under `cargo test --bench webhooks` a small run with the same checks.
//!
//! The bench starts a standalone `redis-server` (AOF on, fsync every
//! second, as a deployment would keep webhook messages) on a free loopback
//! port and stops it at the end, and two gateways, one per store, each with
//! one `[[webhook]]` delivering to a receiver of its own in this process
//! (`fake_docusign::receiver`). Each message is a Connect-like JSON body of
//! `--sizes` bytes, unique (the gateway drops a body it saw as a
//! duplicate), starting with its sequence number so the receiver can tell
//! which arrived when, and signed like Connect (`X-DocuSign-Signature-1`,
//! HMAC-SHA256, base64); bodies and signatures are made before the clock
//! starts. A run sends `--messages` (bodies under 64 KiB) or
//! `--large-messages` bodies, senders taking the next one as they finish
//! one, then waits for the app to have them all. Rounds run every size,
//! sender count and store in turn; the table shows the medians of the
//! rounds. "before 200" counts messages the app had before the sender read
//! its 200 (the gateway answers once the message is stored and delivery may
//! be quicker than the answer); their delay counts as 0. "drain": from the
//! last 200 to the last arrival.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_docusign::receiver::{Arrival, Receiver};

/// The webhook's Connect key (`BENCH_CONNECT_KEYS`).
const KEY: &str = "bench-connect-hmac-key";
/// Bodies from this size on are "large": `--large-messages` of them a run.
const LARGE: usize = 64 * 1024;
/// Longest wait for the app to have every accepted message of a run.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    bench: bool,
    rounds: usize,
    messages: usize,
    large_messages: usize,
    senders: Vec<usize>,
    sizes: Vec<usize>,
    threads: usize,
}

impl Args {
    /// Messages of a round for bodies of `size`: fewer of the large ones.
    fn count(&self, size: usize) -> usize {
        if size >= LARGE {
            self.large_messages
        } else {
            self.messages
        }
    }
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
    let number = |name: &str, bench_default: usize, test_default: usize| {
        value(name)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}: a number, not {v:?}"))
            })
            .unwrap_or(if bench { bench_default } else { test_default })
    };
    let list = |name: &str, bench_default: &str, test_default: &str| -> Vec<usize> {
        value(name)
            .unwrap_or_else(|| if bench { bench_default } else { test_default }.to_string())
            .split(',')
            .map(|v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: numbers, not {v:?}"))
            })
            .collect()
    };
    Args {
        bench,
        rounds: number("--rounds", 3, 1).max(1),
        messages: number("--messages", 4000, 60).max(1),
        large_messages: number("--large-messages", 200, 6).max(1),
        senders: list("--senders", "16,64", "4"),
        sizes: list("--sizes", "2048,262144", "2048,262144"),
        threads: number("--threads", 2, 2).max(1),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Store {
    Memory,
    Redis,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Redis => "redis",
        }
    }
}

/// Arrival times by sequence number, and how many came twice.
#[derive(Default)]
struct Arrivals {
    at: HashMap<u64, Instant>,
    twice: usize,
}

/// A gateway with its receiver.
struct Target {
    store: Store,
    url: String,
    arrivals: Arc<Mutex<Arrivals>>,
    _receiver: Receiver,
    _gateway: support::GatewayProcess,
}

/// The sequence number a body starts with (`{"dsgwBenchSeq":N,`).
fn seq_of(body: &[u8]) -> Option<u64> {
    let rest = body.strip_prefix(b"{\"dsgwBenchSeq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

async fn start_target(store: Store, redis_url: &str, threads: usize) -> Target {
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let record = arrivals.clone();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), move |a: Arrival| {
        let Some(seq) = seq_of(&a.body) else { return };
        let mut r = record.lock().unwrap();
        if r.at.insert(seq, a.at).is_some() {
            r.twice += 1;
        }
    })
    .await
    .expect("start the receiver");
    let port = support::free_port();
    let store_toml = match store {
        Store::Memory => "store = \"memory\"\n".to_string(),
        Store::Redis => format!("store = \"redis\"\n[redis]\nurl = \"{redis_url}\"\n"),
    };
    let sock_dir = std::env::temp_dir().join(format!(
        "dsgw-bench-webhooks-{}-{}",
        std::process::id(),
        store.name()
    ));
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
         threads = {threads}\nupgrade_sock = \"{sock}\"\n\
         [docusign]\nauth_server = \"http://127.0.0.1:9\"\nallow_plain_http = true\n\
         client_id = \"bench-integration-key\"\n\
         [log]\nlevel = \"warn\"\naccess = false\n\
         [session]\nsecure_cookie = false\n{store_toml}\
         [[webhook]]\nname = \"bench\"\nforward_to = \"{forward_to}\"\n\
         hmac_keys_env = \"BENCH_CONNECT_KEYS\"\nmax_pending = 1000000\n\
         max_pending_bytes = 4294967296\n",
        sock = sock_dir.join("upgrade.sock").display(),
        forward_to = receiver.url(),
    );
    let name = format!("webhooks-{}", store.name());
    let gateway =
        support::GatewayProcess::start(&name, port, &config, &[("BENCH_CONNECT_KEYS", KEY)], None)
            .await;
    Target {
        store,
        url: format!("http://127.0.0.1:{port}/webhooks/bench"),
        arrivals,
        _receiver: receiver,
        _gateway: gateway,
    }
}

/// A Connect-like JSON body of `size` bytes (at least the fields'):
/// `{"dsgwBenchSeq":N,"event":"envelope-completed",...}`.
fn body(seq: u64, size: usize) -> Bytes {
    let head = format!(
        "{{\"dsgwBenchSeq\":{seq},\"event\":\"envelope-completed\",\"apiVersion\":\"v2.1\",\
         \"uri\":\"/restapi/v2.1/accounts/a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f/envelopes/{seq:08x}-5d6a-4b3c-8e9f-0a1b2c3d4e5f\",\
         \"retryCount\":0,\"configurationId\":10501,\"generatedDateTime\":\"2025-01-01T12:00:00.0000000Z\",\
         \"data\":{{\"accountId\":\"a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f\",\
         \"userId\":\"4799e5e9-1559-4915-9862-cf4713bbcacc\",\
         \"envelopeId\":\"{seq:08x}-5d6a-4b3c-8e9f-0a1b2c3d4e5f\",\
         \"envelopeSummary\":{{\"status\":\"completed\",\"emailSubject\":\"Please sign: contract {seq}\",\
         \"sender\":{{\"userName\":\"Demo User\",\"email\":\"demo.user@example.com\"}},\
         \"recipients\":{{\"signers\":[{{\"name\":\"Signer\",\"email\":\"signer@example.com\",\
         \"status\":\"completed\",\"recipientId\":\"1\",\"routingOrder\":\"1\"}}]}},\
         \"customFields\":{{\"textCustomFields\":[{{\"name\":\"notes\",\"value\":\""
    );
    let tail = "\"}]}}}}";
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut text = head;
    // Connect's text, more or less: words and spaces.
    const WORDS: &[u8] = b"the quick brown fox jumps over the lazy dog ";
    text.extend((0..pad).map(|i| WORDS[i % WORDS.len()] as char));
    text.push_str(tail);
    Bytes::from(text)
}

/// What one run measured.
struct Run {
    accepted: usize,
    refused: usize,
    per_sec: f64,
    delays: Vec<Duration>,
    before_200: usize,
    lost: usize,
    twice: usize,
    drain: Duration,
}

/// Sends `count` fresh bodies of `size` bytes from `senders` concurrent
/// senders; waits for the app to have every accepted one.
async fn run(
    target: &Target,
    client: &reqwest::Client,
    size: usize,
    senders: usize,
    count: usize,
    next_seq: &mut u64,
) -> Run {
    let first = *next_seq;
    *next_seq += count as u64;
    let messages: Arc<Vec<(u64, Bytes, String)>> = Arc::new(
        (first..first + count as u64)
            .map(|seq| {
                let b = body(seq, size);
                let sig = fake_docusign::sign(KEY, &b);
                (seq, b, sig)
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(senders);
    for _ in 0..senders {
        let (client, url) = (client.clone(), target.url.clone());
        let (messages, next) = (messages.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok: Vec<(u64, Instant)> = Vec::new();
            let mut refused = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((seq, body, sig)) = messages.get(i) else {
                    break;
                };
                let answer = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-Authorization-Digest", "HMACSHA256")
                    .header("X-DocuSign-Signature-1", sig)
                    .body(body.clone())
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        ok.push((*seq, Instant::now()));
                    }
                    Ok(r) => {
                        refused += 1;
                        eprintln!("webhooks bench: answer {}", r.status());
                    }
                    Err(e) => {
                        refused += 1;
                        eprintln!("webhooks bench: {e}");
                    }
                }
            }
            (ok, refused)
        }));
    }
    let mut ok = Vec::with_capacity(count);
    let mut refused = 0;
    for t in tasks {
        let (o, r) = t.await.expect("sender task");
        ok.extend(o);
        refused += r;
    }
    let sent_for = started.elapsed();
    let last_ok = ok.iter().map(|(_, at)| *at).max().unwrap_or(started);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let all_in = {
            let a = target.arrivals.lock().unwrap();
            ok.iter().all(|(seq, _)| a.at.contains_key(seq))
        };
        if all_in || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut a = target.arrivals.lock().unwrap();
    let mut delays = Vec::with_capacity(ok.len());
    let (mut before_200, mut lost) = (0, 0);
    let mut last_arrival = last_ok;
    for (seq, at_200) in &ok {
        match a.at.remove(seq) {
            Some(arrived) => {
                if arrived < *at_200 {
                    before_200 += 1;
                }
                last_arrival = last_arrival.max(arrived);
                delays.push(arrived.saturating_duration_since(*at_200));
            }
            None => lost += 1,
        }
    }
    let twice = std::mem::take(&mut a.twice);
    a.at.clear();
    delays.sort();
    Run {
        accepted: ok.len(),
        refused,
        per_sec: ok.len() as f64 / sent_for.as_secs_f64(),
        delays,
        before_200,
        lost,
        twice,
        drain: last_arrival.saturating_duration_since(last_ok),
    }
}

/// Nearest-rank percentile of sorted `v`.
fn percentile(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

// ------------------------------------------------------------ redis-server

/// A standalone `redis-server` of this bench: its own directory, a free
/// loopback port; stopped (SIGTERM, bounded wait) and removed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let port = support::free_port();
        let dir = std::env::temp_dir().join(format!("dsgw-bench-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the Redis directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "everysec"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): apt-get install redis-server")
            });
        let mut redis = Redis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while redis.command("PING").as_deref() != Some("+PONG") {
            let exited = redis.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "redis-server on port {port} did not answer PING (exited: {exited:?}); log:\n{}",
                std::fs::read_to_string(redis.dir.join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One inline command; the first line of the answer.
    fn command(&self, command: &str) -> Option<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.lines().next().map(str::to_owned)
    }

    fn version(&self) -> String {
        let out = Command::new("redis-server").arg("--version").output();
        out.ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.split_whitespace()
                    .find_map(|w| w.strip_prefix("v=").map(str::to_owned))
            })
            .unwrap_or_else(|| "?".into())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ------------------------------------------------------------ main

/// The medians of one row's rounds.
#[derive(Default)]
struct Row {
    per_sec: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    max: Vec<f64>,
    drain: Vec<f64>,
    before_200: Vec<f64>,
    refused: usize,
    lost: usize,
    twice: usize,
    accepted: usize,
}

#[tokio::main]
async fn main() {
    let a = args();
    let started = Instant::now();
    let redis = Redis::start();
    let mut targets = Vec::new();
    for store in [Store::Memory, Store::Redis] {
        targets.push(start_target(store, &redis.url(), a.threads).await);
    }
    let most_senders = a.senders.iter().copied().max().unwrap_or(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(most_senders)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    // Warm-up: connections, the Redis scripts, the receivers.
    let mut next_seq = 0u64;
    for t in &targets {
        run(
            t,
            &client,
            2048,
            most_senders,
            most_senders * 4,
            &mut next_seq,
        )
        .await;
    }

    let mut rows: HashMap<(usize, usize, Store), Row> = HashMap::new();
    for round in 0..a.rounds {
        for &size in &a.sizes {
            let count = a.count(size);
            for &senders in &a.senders {
                for t in &targets {
                    let r = run(t, &client, size, senders, count, &mut next_seq).await;
                    if a.bench {
                        eprintln!(
                            "round {}: {} {} senders {}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
                            round + 1,
                            size_label(size),
                            senders,
                            t.store.name(),
                            r.per_sec,
                            ms(percentile(&r.delays, 0.5)),
                            ms(percentile(&r.delays, 0.99)),
                        );
                    }
                    let row = rows.entry((size, senders, t.store)).or_default();
                    row.per_sec.push(r.per_sec);
                    row.p50.push(ms(percentile(&r.delays, 0.5)));
                    row.p99.push(ms(percentile(&r.delays, 0.99)));
                    row.max
                        .push(ms(r.delays.last().copied().unwrap_or_default()));
                    row.drain.push(ms(r.drain));
                    row.before_200
                        .push(100.0 * r.before_200 as f64 / r.accepted.max(1) as f64);
                    row.refused += r.refused;
                    row.lost += r.lost;
                    row.twice += r.twice;
                    row.accepted += r.accepted;
                }
            }
        }
    }
    let redis_version = redis.version();
    drop(targets);
    drop(redis);

    println!(
        "\nwebhooks: POST /webhooks/<name> accepted per second (signed like Connect, verified, stored, \
         answered 200) and the delay from its 200 to the app receiving it; medians of {} interleaved \
         round(s); server.threads = {}; Redis {redis_version} standalone on loopback (AOF, fsync every \
         second); {} CPUs; {:.0} s in all",
        a.rounds,
        a.threads,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64(),
    );
    println!(
        "command: cargo bench --bench webhooks -- --rounds {} --messages {} --large-messages {} \
         --senders {} --sizes {} --threads {}\n",
        a.rounds,
        a.messages,
        a.large_messages,
        join(&a.senders),
        join(&a.sizes),
        a.threads
    );
    println!(
        "| body | messages | senders | store | accepted/s | delay p50 | p99 | max | drain | before 200 |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut problems = Vec::new();
    for &size in &a.sizes {
        let count = a.count(size);
        for &senders in &a.senders {
            for store in [Store::Memory, Store::Redis] {
                let Some(row) = rows.remove(&(size, senders, store)) else {
                    continue;
                };
                println!(
                    "| {} | {count} | {senders} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} % |",
                    size_label(size),
                    store.name(),
                    support::median(&row.per_sec),
                    support::median(&row.p50),
                    support::median(&row.p99),
                    support::median(&row.max),
                    support::median(&row.drain),
                    support::median(&row.before_200),
                );
                if row.refused + row.lost + row.twice > 0 {
                    problems.push(format!(
                        "{} {senders} senders {}: {} not answered 200, {} accepted but not delivered \
                         within {} s, {} delivered twice (of {} accepted)",
                        size_label(size),
                        store.name(),
                        row.refused,
                        row.lost,
                        DRAIN_TIMEOUT.as_secs(),
                        row.twice,
                        row.accepted
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        println!("\nevery message answered 200 and delivered once");
    } else {
        println!("\n{}", problems.join("\n"));
    }
    assert!(problems.is_empty(), "messages refused, lost or doubled");
}

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}
