//! The gateway under DocuSign's real load, next to bare pingora in the same
//! run: thousands of requests in flight against slow answers, 25 MB
//! uploads, 10 MB downloads.
//!
//! `cargo bench --bench real_load [-- --loads inflight,upload,download
//! --conns 1000,5000,10000 --latency-ms 200 --spread-ms 20 --rounds 3
//! --seconds 10 --threads 2 --transfers 50 --upload-mb 25 --download-mb 10]`
//!
//! Three processes besides this one, on loopback: an upstream that answers
//! like a DocuSign REST host under load (this binary in `--upstream` mode:
//! every answer after `--latency-ms` +- `--spread-ms`, reported in
//! `X-Upstream-Delay-Us`; it checks `Host` and the bearer token like the
//! perf harness's nginx; account JSON, `POST .../envelopes` read and
//! counted as it streams in, `GET .../documents/combined` a PDF of
//! `--download-mb`), and one proxy at a time: bare pingora (this binary in
//! `--bare-pingora` mode, `benches/support/bare.rs`) or the gateway (release
//! binary, a gateway token, access log on, to a file). Each proxy is a fresh
//! process for each measurement, so its resident memory before the load is
//! its idle memory and its peak (`VmHWM`) is this load's; the two targets
//! alternate within each round. Both get `--threads` worker threads and an
//! upstream keep-alive pool as large as the load's connections.
//!
//! Loads: `inflight`: `--conns` keep-alive connections, each with one
//! request in flight at a time, for `--seconds` after a warm-up of 2 s:
//! requests per second, the latency the proxy adds to the upstream's own
//! (p50, p99), resident memory per connection in flight (median of samples
//! during the load, less the idle memory) and CPU per request. `upload`:
//! `--transfers` connections each POST two envelopes of `--upload-mb`, as
//! base64 JSON and as `multipart/form-data`; `download`: as many GET two
//! PDFs each; MB/s and peak memory growth per concurrent transfer. This
//! process raises its open-file limit (and so its children's) to what the
//! load needs. Under `cargo test` it runs a smoke load of each kind with
//! its checks only.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use fake_docusign::{FakeConfig, FakeDocuSign};
use support::median;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UPSTREAM_TOKEN: &str = "real-load-upstream-token";
const WARMUP: Duration = Duration::from_secs(2);
/// Connections opened at once while a load ramps up (the listen backlog).
const CONNECT_BATCH: usize = 500;

fn main() {
    let all: Vec<String> = std::env::args().collect();
    match all.get(1).map(String::as_str) {
        Some("--bare-pingora") => return support::bare::run(&all[2..]),
        Some("--upstream") => return upstream::run(&all[2..]),
        _ => {}
    }
    let args = Args::parse(&all);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    if args.bench {
        let most = args
            .conns
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(args.transfers);
        raise_open_files(2 * most as u64 + 1024);
        runtime.block_on(measure(&args));
    } else {
        runtime.block_on(smoke());
    }
}

struct Args {
    bench: bool,
    loads: Vec<String>,
    conns: Vec<usize>,
    latency_ms: u64,
    spread_ms: u64,
    rounds: usize,
    seconds: u64,
    threads: usize,
    transfers: usize,
    upload_mb: usize,
    download_mb: usize,
}

impl Args {
    fn parse(all: &[String]) -> Args {
        let value = |name: &str, default: &str| -> String {
            all.iter()
                .position(|a| a == name)
                .and_then(|i| all.get(i + 1))
                .map_or(default, String::as_str)
                .to_string()
        };
        let number = |name: &str, default: &str| -> u64 {
            value(name, default)
                .parse()
                .unwrap_or_else(|_| panic!("{name}: a number"))
        };
        Args {
            bench: all.iter().any(|a| a == "--bench"),
            loads: value("--loads", "inflight,upload,download")
                .split(',')
                .map(str::to_string)
                .collect(),
            conns: value("--conns", "1000,5000,10000")
                .split(',')
                .map(|c| c.parse().expect("--conns: numbers"))
                .collect(),
            latency_ms: number("--latency-ms", "200"),
            spread_ms: number("--spread-ms", "20"),
            rounds: number("--rounds", "3") as usize,
            seconds: number("--seconds", "10"),
            threads: number("--threads", "2") as usize,
            transfers: number("--transfers", "50") as usize,
            upload_mb: number("--upload-mb", "25") as usize,
            download_mb: number("--download-mb", "10") as usize,
        }
    }
}

/// Raises this process's open-file limit to `want` (children inherit it):
/// the soft limit up to the hard one, the hard one too when allowed
/// (`CAP_SYS_RESOURCE`). Returns the limit now in force.
fn raise_open_files(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max.max(want),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    if lim.rlim_cur < want {
        eprintln!(
            "real_load: open files limited to {} (wanted {want}: the hard limit, and no CAP_SYS_RESOURCE to raise it)",
            lim.rlim_cur
        );
    }
    lim.rlim_cur
}

/// A proxy holds two descriptors per request in flight (the client's
/// connection and its own to the upstream): the most connections a load
/// can have under the open-file limit, with room for the rest.
fn fitting(conns: usize) -> usize {
    let limit = raise_open_files(0) as usize;
    conns.min(limit.saturating_sub(200) / 2)
}

// ------------------------------------------------------------ the upstream

mod upstream {
    //! A DocuSign REST host under load: every answer after a latency, the
    //! bearer token and `Host` checked, uploads read as they stream in.

    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::http::{header, HeaderValue, Method, StatusCode};
    use axum::response::{IntoResponse, Response};
    use futures_util::StreamExt;
    use rand::Rng;

    struct Upstream {
        host: String,
        authorization: String,
        latency: Duration,
        spread: Duration,
        pdf: bytes::Bytes,
        account: bytes::Bytes,
    }

    impl Upstream {
        /// This answer's latency: `latency` +- up to `spread`.
        fn delay(&self) -> Duration {
            let spread = self.spread.as_micros() as i64;
            let jitter = if spread > 0 {
                rand::thread_rng().gen_range(-spread..=spread)
            } else {
                0
            };
            Duration::from_micros((self.latency.as_micros() as i64 + jitter).max(0) as u64)
        }
    }

    /// `LISTEN TOKEN LATENCY_MS SPREAD_MS DOWNLOAD_BYTES`. Never returns.
    pub fn run(args: &[String]) {
        let usage = "--upstream LISTEN TOKEN LATENCY_MS SPREAD_MS DOWNLOAD_BYTES";
        assert!(args.len() == 5, "usage: {usage}");
        let ms = |i: usize| Duration::from_millis(args[i].parse().expect("milliseconds"));
        let state = Arc::new(Upstream {
            host: args[0].clone(),
            authorization: format!("Bearer {}", args[1]),
            latency: ms(2),
            spread: ms(3),
            pdf: pdf(args[4].parse().expect("DOWNLOAD_BYTES")),
            account: account_json(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(&state.host)
                .await
                .expect("bind the upstream");
            let app = axum::Router::new().fallback(answer).with_state(state);
            axum::serve(listener, app).await.expect("serve");
        });
    }

    /// A PDF-looking body of `bytes`.
    fn pdf(bytes: usize) -> bytes::Bytes {
        let mut body = b"%PDF-1.7\n".to_vec();
        body.resize(bytes.max(16), b'x');
        body.extend_from_slice(b"\n%%EOF\n");
        body.into()
    }

    /// About the size of DocuSign's account answer (594 bytes in the perf
    /// harness).
    fn account_json() -> bytes::Bytes {
        let mut s = String::from(
            "{\"currentPlanId\":\"b9ffc69e-3d5a-4b8c-9ef4-5e9c0a6d7f10\",\"planName\":\"DEV\",\
             \"accountName\":\"Bench\",\"accountIdGuid\":\"a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f\",\
             \"billingPeriodStartDate\":\"2026-12-01T00:00:00.0000000Z\",\"note\":\"",
        );
        while s.len() < 575 {
            s.push('x');
        }
        s.push_str("\"}");
        s.into()
    }

    async fn answer(State(up): State<Arc<Upstream>>, req: Request) -> Response {
        let authorized = {
            let has = |name: header::HeaderName, want: &str| {
                req.headers().get(name).and_then(|v| v.to_str().ok()) == Some(want)
            };
            has(header::HOST, &up.host) && has(header::AUTHORIZATION, &up.authorization)
        };
        if !authorized {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"errorCode\":\"AUTHORIZATION_INVALID_TOKEN\"}",
            )
                .into_response();
        }
        let delay = up.delay();
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let mut response = if method == Method::POST && path.ends_with("/envelopes") {
            // Read the document as it arrives, keeping none of it.
            let mut bytes = 0u64;
            let mut body = req.into_body().into_data_stream();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => bytes += c.len() as u64,
                    Err(_) => return StatusCode::BAD_REQUEST.into_response(),
                }
            }
            tokio::time::sleep(delay).await;
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                format!("{{\"envelopeId\":\"e1\",\"status\":\"created\",\"bytes\":{bytes}}}"),
            )
                .into_response()
        } else if method == Method::GET && path.ends_with("/documents/combined") {
            tokio::time::sleep(delay).await;
            (
                [(header::CONTENT_TYPE, "application/pdf")],
                Body::from(up.pdf.clone()),
            )
                .into_response()
        } else {
            tokio::time::sleep(delay).await;
            (
                [(header::CONTENT_TYPE, "application/json")],
                Body::from(up.account.clone()),
            )
                .into_response()
        };
        if let Ok(v) = HeaderValue::from_str(&delay.as_micros().to_string()) {
            response.headers_mut().insert("x-upstream-delay-us", v);
        }
        response
    }
}

/// The upstream process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn spawn(args: &[String]) -> Proc {
        let exe = std::env::current_exe().expect("bench binary");
        Proc(
            Command::new(exe)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn"),
        )
    }
}

async fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------ the proxies

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Pingora,
    Gateway,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pingora => "pingora",
            Kind::Gateway => "gateway",
        }
    }
}

/// One proxy process in front of the upstream.
enum Running {
    Pingora(Proc),
    /// The gateway, and the fake DocuSign it logged in at (kept running).
    Gateway {
        process: support::GatewayProcess,
        _fake: FakeDocuSign,
    },
}

struct Target {
    running: Running,
    addr: SocketAddr,
    /// The request's `Authorization` value (a gateway token; the bare
    /// proxy replaces it as the gateway does).
    authorization: String,
}

impl Target {
    fn pid(&self) -> u32 {
        match &self.running {
            Running::Pingora(p) => p.0.id(),
            Running::Gateway { process, .. } => process.pid(),
        }
    }
}

/// What every proxy of a run shares: the upstream.
struct Bed {
    upstream: SocketAddr,
    _upstream: Proc,
    /// The fake's first account, whose `base_uri` is the upstream.
    account: String,
    threads: usize,
    log_dir: std::path::PathBuf,
}

impl Bed {
    async fn start(latency_ms: u64, spread_ms: u64, download_bytes: usize, threads: usize) -> Bed {
        let upstream: SocketAddr = format!("127.0.0.1:{}", support::free_port())
            .parse()
            .expect("address");
        let proc = Proc::spawn(&[
            "--upstream".into(),
            upstream.to_string(),
            UPSTREAM_TOKEN.into(),
            latency_ms.to_string(),
            spread_ms.to_string(),
            download_bytes.to_string(),
        ]);
        wait_for_port(upstream).await;
        let account = FakeConfig::demo_defaults().users[0].accounts[0]
            .account_id
            .clone();
        let log_dir = std::env::temp_dir().join(format!("dsgw-real-load-{}", std::process::id()));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        Bed {
            upstream,
            _upstream: proc,
            account,
            threads,
            log_dir,
        }
    }

    /// A fresh proxy of `kind` sized for `conns` connections.
    async fn target(&self, kind: Kind, conns: usize) -> Target {
        let port = support::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let pool = conns.max(128);
        match kind {
            Kind::Pingora => {
                let proc = Proc::spawn(&[
                    "--bare-pingora".into(),
                    addr.to_string(),
                    self.upstream.to_string(),
                    self.upstream.to_string(),
                    UPSTREAM_TOKEN.into(),
                    self.threads.to_string(),
                    pool.to_string(),
                ]);
                wait_for_port(addr).await;
                Target {
                    running: Running::Pingora(proc),
                    addr,
                    authorization: format!("Bearer {}", "x".repeat(300)),
                }
            }
            Kind::Gateway => {
                let public = format!("http://{addr}");
                // A fake DocuSign that issues the upstream's token and names
                // the upstream as the account's `base_uri`.
                let mut cfg = FakeConfig::demo_defaults();
                cfg.redirect_uris = vec![format!("{public}/auth/docusign/callback")];
                let fake = FakeDocuSign::start(cfg).await.expect("fake DocuSign");
                support::without_rate_limits(&fake);
                fake.set_fixed_access_token(Some(UPSTREAM_TOKEN));
                fake.set_base_uri_override(&self.account, &format!("http://{}", self.upstream));
                let config = format!(
                    "[server]\nlisten = \"{addr}\"\npublic_url = \"{public}\"\n\
                     threads = {}\nmax_connections = {}\nupstream_keepalive_pool = {pool}\n\
                     [docusign]\nauth_server = \"{}\"\nclient_id = \"demo-integration-key\"\n\
                     allowed_api_hosts = [\"{}\"]\nallow_plain_http = true\n\
                     [session]\nsecure_cookie = false\n[log]\nlevel = \"info\"\n",
                    self.threads,
                    (2 * conns).max(10_000),
                    fake.account_server_url(),
                    self.upstream,
                );
                let log = self.log_dir.join("gateway.log");
                let gateway =
                    support::GatewayProcess::start("real-load", port, &config, &[], Some(&log))
                        .await;
                let client = support::client();
                let cookie = support::login(&client, &public).await;
                let token = support::gateway_token(&client, &public, &cookie).await;
                Target {
                    running: Running::Gateway {
                        process: gateway,
                        _fake: fake,
                    },
                    addr,
                    authorization: format!("Bearer {token}"),
                }
            }
        }
    }
}

// ------------------------------------------------------------ the client

/// One answer as the client read it.
struct Answer {
    status: u16,
    /// The upstream's own delay, from `X-Upstream-Delay-Us`.
    upstream_us: Option<u64>,
    body_bytes: u64,
}

/// Sends `head` (and `body`) on `stream` and reads the answer whole,
/// keeping at most `keep` body bytes in `scratch`.
async fn exchange(
    stream: &mut TcpStream,
    scratch: &mut Vec<u8>,
    head: &[u8],
    body: Option<&[u8]>,
) -> std::io::Result<Answer> {
    stream.write_all(head).await?;
    if let Some(body) = body {
        stream.write_all(body).await?;
    }
    scratch.clear();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = scratch.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if scratch.len() > 64 * 1024 {
            return Err(std::io::Error::other("answer head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the answer"));
        }
        scratch.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&scratch[..head_end]).to_ascii_lowercase();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let header = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    let length =
        header("content-length:").ok_or_else(|| std::io::Error::other("no content-length"))?;
    let upstream_us = header("x-upstream-delay-us:");
    let mut got = (scratch.len() - head_end) as u64;
    while got < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed inside the body"));
        }
        got += n as u64;
    }
    Ok(Answer {
        status,
        upstream_us,
        body_bytes: got,
    })
}

/// Opens `n` connections to `addr`, `CONNECT_BATCH` at a time.
async fn connect_all(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = CONNECT_BATCH.min(n - out.len());
        let tasks: Vec<_> = (0..batch)
            .map(|_| {
                tokio::spawn(async move {
                    for attempt in 0..50 {
                        match TcpStream::connect(addr).await {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                return s;
                            }
                            Err(e) if attempt == 49 => panic!("connect {addr}: {e}"),
                            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                    unreachable!()
                })
            })
            .collect();
        for t in tasks {
            out.push(t.await.expect("connect task"));
        }
    }
    out
}

fn get_head(target: &Target, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nAccept: application/json\r\n\r\n",
        target.addr, target.authorization
    )
    .into_bytes()
}

// ------------------------------------------------------------ process figures

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of a process so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64
}

// ------------------------------------------------------------ the loads

/// What one in-flight run measured.
#[derive(Default, Clone)]
struct Inflight {
    rps: f64,
    p50_added_ms: f64,
    p99_added_ms: f64,
    p99_ms: f64,
    rss_per_conn_kib: f64,
    idle_rss_mib: f64,
    cpu_us_per_req: f64,
    errors: u64,
}

async fn inflight(target: &Target, account: &str, conns: usize, seconds: u64) -> Inflight {
    let pid = target.pid();
    let head: Arc<[u8]> = get_head(target, &format!("/restapi/v2.1/accounts/{account}")).into();
    let idle_rss = proc_status_kib(pid, "VmRSS:");
    let streams = connect_all(target.addr, conns).await;
    let start = Instant::now() + Duration::from_millis(100);
    let (from, until) = (
        start + WARMUP,
        start + WARMUP + Duration::from_secs(seconds),
    );
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(conns);
    let addr = target.addr;
    for mut stream in streams {
        let (head, errors) = (head.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut scratch = Vec::with_capacity(4096);
            let (mut total, mut added) = (Vec::new(), Vec::new());
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                match exchange(&mut stream, &mut scratch, &head, None).await {
                    Ok(a) if a.status == 200 => {
                        let done = Instant::now();
                        // Answers completed inside the window, so that
                        // their count over its length is the throughput.
                        if done >= from && done <= until {
                            let us = done.duration_since(sent).as_micros() as u64;
                            total.push(us);
                            added.push(us.saturating_sub(a.upstream_us.unwrap_or(0)));
                        }
                    }
                    Ok(_) | Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if let Ok(s) = TcpStream::connect(addr).await {
                            stream = s;
                        }
                    }
                }
            }
            (total, added)
        }));
    }
    // Memory and CPU while the load runs.
    tokio::time::sleep_until(from.into()).await;
    let cpu_from = cpu_time(pid);
    let mut samples = Vec::new();
    while Instant::now() + Duration::from_millis(250) < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        samples.push(proc_status_kib(pid, "VmRSS:") as f64);
    }
    tokio::time::sleep_until(until.into()).await;
    let cpu = cpu_time(pid).saturating_sub(cpu_from);
    let (mut total, mut added) = (Vec::new(), Vec::new());
    for t in tasks {
        let (a, b) = t.await.expect("client task");
        total.extend(a);
        added.extend(b);
    }
    total.sort_unstable();
    added.sort_unstable();
    let n = total.len().max(1) as f64;
    Inflight {
        rps: total.len() as f64 / seconds as f64,
        p50_added_ms: percentile(&added, 0.50) / 1000.0,
        p99_added_ms: percentile(&added, 0.99) / 1000.0,
        p99_ms: percentile(&total, 0.99) / 1000.0,
        rss_per_conn_kib: (median(&samples) - idle_rss as f64) / conns as f64,
        idle_rss_mib: idle_rss as f64 / 1024.0,
        cpu_us_per_req: cpu.as_micros() as f64 / n,
        errors: errors.load(Ordering::Relaxed),
    }
}

/// What one transfer run measured.
#[derive(Default, Clone)]
struct Transfer {
    mb_per_s: f64,
    peak_growth_per_transfer_mib: f64,
    errors: u64,
}

#[derive(Clone, Copy)]
enum Body {
    Json,
    Multipart,
    Download,
}

impl Body {
    fn name(self) -> &'static str {
        match self {
            Body::Json => "upload, base64 JSON",
            Body::Multipart => "upload, multipart",
            Body::Download => "download, PDF",
        }
    }
}

/// An envelope of about `bytes` with one document: the request head and
/// body for `kind`.
fn upload(kind: Body, target: &Target, account: &str, bytes: usize) -> (Vec<u8>, Bytes) {
    let document_bytes = match kind {
        Body::Json => bytes / 4 * 3,
        _ => bytes,
    };
    let document: Vec<u8> = (0..document_bytes).map(|i| (i * 31 % 251) as u8).collect();
    let meta = "{\"emailSubject\":\"Please sign\",\"status\":\"sent\",\"documents\":[{\"documentId\":\"1\",\"name\":\"big.pdf\",\"fileExtension\":\"pdf\"";
    let (content_type, body) = match kind {
        Body::Json => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&document);
            (
                "application/json".to_string(),
                format!("{meta},\"documentBase64\":\"{b64}\"}}]}}").into_bytes(),
            )
        }
        _ => {
            let boundary = "dsgw-bench-boundary-7f3a";
            let mut body = format!(
                "--{boundary}\r\nContent-Type: application/json\r\nContent-Disposition: form-data\r\n\r\n{meta}}}]}}\r\n\
                 --{boundary}\r\nContent-Type: application/pdf\r\nContent-Disposition: file; filename=\"big.pdf\";documentid=1\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&document);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            (format!("multipart/form-data; boundary={boundary}"), body)
        }
    };
    let head = format!(
        "POST /restapi/v2.1/accounts/{account}/envelopes HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nAccept: application/json\r\n\r\n",
        target.addr,
        target.authorization,
        body.len()
    );
    (head.into_bytes(), body.into())
}

/// `transfers` connections, each moving `each` bodies of `kind`.
async fn transfer(
    target: &Target,
    account: &str,
    kind: Body,
    transfers: usize,
    each: usize,
    bytes: usize,
) -> Transfer {
    let pid = target.pid();
    let (head, body): (Arc<[u8]>, Option<Bytes>) = match kind {
        Body::Download => (
            get_head(
                target,
                &format!("/restapi/v2.1/accounts/{account}/envelopes/e1/documents/combined"),
            )
            .into(),
            None,
        ),
        _ => {
            let (h, b) = upload(kind, target, account, bytes);
            (h.into(), Some(b))
        }
    };
    let idle_rss = proc_status_kib(pid, "VmRSS:");
    let streams = connect_all(target.addr, transfers).await;
    let started = Instant::now();
    let moved = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let (head, body, moved, errors) =
                (head.clone(), body.clone(), moved.clone(), errors.clone());
            tokio::spawn(async move {
                let mut scratch = Vec::new();
                for _ in 0..each {
                    match exchange(&mut stream, &mut scratch, &head, body.as_deref()).await {
                        Ok(a) if a.status / 100 == 2 => {
                            let n = body.as_ref().map_or(a.body_bytes, |b| b.len() as u64);
                            moved.fetch_add(n, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("transfer task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = proc_status_kib(pid, "VmHWM:");
    Transfer {
        mb_per_s: moved.load(Ordering::Relaxed) as f64 / 1e6 / elapsed,
        peak_growth_per_transfer_mib: peak.saturating_sub(idle_rss) as f64
            / 1024.0
            / transfers as f64,
        errors: errors.load(Ordering::Relaxed),
    }
}

// ------------------------------------------------------------ the run

async fn measure(args: &Args) {
    let bed = Bed::start(
        args.latency_ms,
        args.spread_ms,
        args.download_mb * 1_000_000,
        args.threads,
    )
    .await;
    println!(
        "real_load: upstream latency {} ms +- {} ms, {} worker thread(s) per proxy, {} round(s)",
        args.latency_ms, args.spread_ms, args.threads, args.rounds
    );
    if args.loads.iter().any(|l| l == "inflight") {
        for &asked in &args.conns {
            let conns = fitting(asked);
            if conns < asked {
                println!(
                    "  {asked} connections do not fit the open-file limit ({}: two per request in a proxy): measuring {conns}",
                    raise_open_files(0)
                );
            }
            let mut runs: Vec<[Inflight; 2]> = Vec::new();
            for round in 1..=args.rounds {
                let mut pair: [Inflight; 2] = Default::default();
                for (slot, kind) in [Kind::Pingora, Kind::Gateway].into_iter().enumerate() {
                    let target = bed.target(kind, conns).await;
                    let r = inflight(&target, &bed.account, conns, args.seconds).await;
                    println!(
                        "  {conns} in flight, round {round}, {:<8} {:>8.0} req/s  added p50 {:>6.2} ms p99 {:>7.2} ms  p99 {:>7.1} ms  {:>6.1} KiB/conn (idle {:.1} MiB)  {:>6.1} us CPU/req  errors {}",
                        kind.name(), r.rps, r.p50_added_ms, r.p99_added_ms, r.p99_ms,
                        r.rss_per_conn_kib, r.idle_rss_mib, r.cpu_us_per_req, r.errors
                    );
                    pair[slot] = r;
                    drop(target);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                runs.push(pair);
            }
            print_inflight(conns, args.latency_ms, &runs);
        }
    }
    for (load, kinds) in [
        ("upload", &[Body::Json, Body::Multipart][..]),
        ("download", &[Body::Download][..]),
    ] {
        if !args.loads.iter().any(|l| l == load) {
            continue;
        }
        for &kind in kinds {
            let bytes = match kind {
                Body::Download => args.download_mb * 1_000_000,
                _ => args.upload_mb * 1_000_000,
            };
            let mut runs: Vec<[Transfer; 2]> = Vec::new();
            for round in 1..=args.rounds {
                let mut pair: [Transfer; 2] = Default::default();
                for (slot, k) in [Kind::Pingora, Kind::Gateway].into_iter().enumerate() {
                    let target = bed.target(k, args.transfers).await;
                    let r = transfer(&target, &bed.account, kind, args.transfers, 2, bytes).await;
                    println!(
                        "  {}, {} concurrent, round {round}, {:<8} {:>8.1} MB/s  peak growth {:>6.2} MiB/transfer  errors {}",
                        kind.name(), args.transfers, k.name(), r.mb_per_s,
                        r.peak_growth_per_transfer_mib, r.errors
                    );
                    pair[slot] = r;
                    drop(target);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                runs.push(pair);
            }
            print_transfer(kind, args.transfers, &runs);
        }
    }
    let _ = std::fs::remove_dir_all(&bed.log_dir);
}

/// A printed row: its name and how to read it from one run.
type Row<T> = (&'static str, fn(&T) -> f64);

fn medians<T>(runs: &[[T; 2]], f: impl Fn(&T) -> f64) -> (f64, f64, f64) {
    let a: Vec<f64> = runs.iter().map(|r| f(&r[0])).collect();
    let b: Vec<f64> = runs.iter().map(|r| f(&r[1])).collect();
    let ratio: Vec<f64> = runs
        .iter()
        .map(|r| f(&r[1]) / f(&r[0]))
        .filter(|q| q.is_finite())
        .collect();
    (median(&a), median(&b), median(&ratio))
}

fn print_inflight(conns: usize, latency_ms: u64, runs: &[[Inflight; 2]]) {
    println!(
        "\n{conns} connections in flight, {latency_ms} ms upstream (ideal {:.0} req/s), medians of {} rounds: pingora | gateway | median of per-round gateway/pingora",
        conns as f64 * 1000.0 / latency_ms.max(1) as f64,
        runs.len()
    );
    let rows: [Row<Inflight>; 6] = [
        ("req/s", |r| r.rps),
        ("added latency p50, ms", |r| r.p50_added_ms),
        ("added latency p99, ms", |r| r.p99_added_ms),
        ("RSS per connection, KiB", |r| r.rss_per_conn_kib),
        ("CPU per request, us", |r| r.cpu_us_per_req),
        ("errors", |r| r.errors as f64),
    ];
    for (name, f) in rows {
        let (a, b, q) = medians(runs, f);
        println!("  {name:<26} {a:>10.2} | {b:>10.2} | {q:>6.3}");
    }
    println!();
}

fn print_transfer(kind: Body, transfers: usize, runs: &[[Transfer; 2]]) {
    println!(
        "\n{}, {transfers} concurrent, medians of {} rounds: pingora | gateway | median of per-round gateway/pingora",
        kind.name(),
        runs.len()
    );
    let rows: [Row<Transfer>; 3] = [
        ("MB/s", |r| r.mb_per_s),
        ("peak RSS growth per transfer, MiB", |r| {
            r.peak_growth_per_transfer_mib
        }),
        ("errors", |r| r.errors as f64),
    ];
    for (name, f) in rows {
        let (a, b, q) = medians(runs, f);
        println!("  {name:<34} {a:>10.2} | {b:>10.2} | {q:>6.3}");
    }
    println!();
}

// ------------------------------------------------------------ smoke

/// Under `cargo test`: each load, tiny, through both proxies, with its
/// checks (every answer 2xx, every byte moved).
async fn smoke() {
    let bed = Bed::start(20, 5, 2_000_000, 1).await;
    for kind in [Kind::Pingora, Kind::Gateway] {
        let target = bed.target(kind, 20).await;
        let r = inflight(&target, &bed.account, 20, 1).await;
        assert_eq!(r.errors, 0, "{}: in flight", kind.name());
        assert!(r.rps > 0.0, "{}: answers", kind.name());
        assert!(r.p50_added_ms >= 0.0);
        for body in [Body::Json, Body::Multipart, Body::Download] {
            let r = transfer(&target, &bed.account, body, 3, 2, 2_000_000).await;
            assert_eq!(r.errors, 0, "{}: {}", kind.name(), body.name());
            assert!(r.mb_per_s > 0.0);
        }
    }
    // The upstream checks the token: a wrong one is its 401.
    let target = bed.target(Kind::Pingora, 1).await;
    let mut stream = TcpStream::connect(bed.upstream).await.expect("upstream");
    let head = format!(
        "GET /restapi/v2.1/accounts/x HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer wrong\r\n\r\n",
        bed.upstream
    );
    let a = exchange(&mut stream, &mut Vec::new(), head.as_bytes(), None)
        .await
        .expect("answer");
    assert_eq!(a.status, 401);
    drop(target);
    let _ = std::fs::remove_dir_all(&bed.log_dir);
}
