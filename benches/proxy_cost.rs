//! The gateway's cost per proxied request next to a bare pingora proxy doing
//! only the header injection (and nginx), in one run, interleaved.
//!
//! `cargo bench --bench proxy_cost [-- --threads 1,2 --paths cookie,token]`
//!
//! It drives the perf harness's `run.sh` (`PERF_DIR`, default
//! `../shared/perf` next to this repository; it needs nginx and wrk, which
//! its `setup.sh` installs): the harness starts the nginx upstream (594-byte
//! account JSON, checks `Host` and the bearer token), the nginx proxy and the
//! bare pingora proxy (this bench binary in `--bare-pingora` mode, built from
//! this project's pingora), and measures each target in turn, rounds
//! interleaved. This bench provides the gateway: the fake DocuSign issues the
//! harness's fixed token as every access token and names the upstream as
//! the account's `base_uri`; one session logs in; for each `--threads` value
//! the gateway runs with `server.threads` (and the baselines with as many
//! workers) and for each `--paths` entry the harness runs once: `cookie`
//! (the session cookie) and `token` (a gateway token, `Authorization:
//! Bearer`). The access log is on, to a file. `EXTRA_HEADERS` adds request
//! header lines for every target (`Connection: close`: a connection per
//! request). `run.sh`'s knobs (`ROUNDS`,
//! `DURATION`, `CONNECTIONS`, ...) pass through; with `PROXY_CPUS` (and
//! `LOADGEN_CPUS`, `UPSTREAM_CPUS`) the gateway is pinned as the harness pins
//! nginx and the bare proxy.
//!
//! Under `cargo test` it is a smoke test of its own pieces, with no harness:
//! the bare proxy and the gateway each forward a request to the fake's REST
//! host, which accepts the fixed token.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fake_docusign::{FakeConfig, FakeDocuSign};

fn main() {
    let all: Vec<String> = std::env::args().collect();
    if all.get(1).map(String::as_str) == Some("--bare-pingora") {
        support::bare::run(&all[2..]);
        return;
    }
    let bench = all.iter().any(|a| a == "--bench");
    let list = |name: &str, default: &str| -> Vec<String> {
        let value = all
            .iter()
            .position(|a| a == name)
            .and_then(|i| all.get(i + 1))
            .map_or(default, String::as_str);
        value.split(',').map(str::to_string).collect()
    };
    let threads: Vec<usize> = list("--threads", "1,2")
        .iter()
        .map(|t| t.parse().expect("--threads: numbers"))
        .collect();
    let paths = list("--paths", "cookie,token");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    if bench {
        runtime.block_on(measure(&threads, &paths));
    } else {
        runtime.block_on(smoke());
    }
}

// ------------------------------------------------------------ bare pingora

/// A child process running [`support::bare::run`], killed on drop.
struct BareProcess(std::process::Child);

impl Drop for BareProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ------------------------------------------------------------ the gateway

/// The fake DocuSign of a run: every access token is `token`; `base_uri`,
/// when given, is where the account's REST calls go.
async fn fake(public: &str, token: &str, base_uri: Option<&str>) -> (FakeDocuSign, String) {
    let mut cfg = FakeConfig::demo_defaults();
    cfg.redirect_uris = vec![format!("{public}/auth/docusign/callback")];
    let fake = FakeDocuSign::start(cfg).await.expect("fake DocuSign");
    support::without_rate_limits(&fake);
    fake.set_fixed_access_token(Some(token));
    let account = fake.config().users[0].accounts[0].account_id.clone();
    if let Some(base_uri) = base_uri {
        fake.set_base_uri_override(&account, base_uri);
    }
    (fake, account)
}

fn gateway_config(port: u16, fake: &FakeDocuSign, rest_host: &str, threads: usize) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
         threads = {threads}\n\
         [docusign]\nauth_server = \"{}\"\nclient_id = \"demo-integration-key\"\n\
         allowed_api_hosts = [\"{rest_host}\"]\nallow_plain_http = true\n\
         [session]\nsecure_cookie = false\n[log]\nlevel = \"info\"\n",
        fake.account_server_url(),
    )
}

/// The headers a client of each path sends: the session cookie, or a
/// gateway token.
async fn path_header(path: &str, public: &str, cookie: &str) -> String {
    match path {
        "cookie" => format!("Cookie: {cookie}"),
        "token" => {
            let token = support::gateway_token(&support::client(), public, cookie).await;
            format!("Authorization: Bearer {token}")
        }
        other => panic!("--paths: cookie or token, not {other:?}"),
    }
}

async fn measure(threads: &[usize], paths: &[String]) {
    let perf_dir = std::env::var_os("PERF_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/perf"),
        PathBuf::from,
    );
    let run_sh = perf_dir.join("run.sh");
    assert!(
        run_sh.exists(),
        "no perf harness at {} (set PERF_DIR to the folder of run.sh)",
        perf_dir.display()
    );
    let token = Command::new(perf_dir.join("default-token.sh"))
        .output()
        .expect("default-token.sh");
    let token = String::from_utf8(token.stdout)
        .expect("token")
        .trim()
        .to_string();
    let upstream_port = support::free_port();
    let rest_host = format!("127.0.0.1:{upstream_port}");
    let tmp = std::env::temp_dir().join(format!("dsgw-proxy-cost-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let wrapper = tmp.join("bare-pingora");
    let exe = std::env::current_exe().expect("bench binary");
    // `BARE_PINGORA_TOOL`: a command the bare proxy runs under (a profiler,
    // say `valgrind --tool=callgrind`); the gateway's is `GATEWAY_TEST_BIN`.
    let tool = std::env::var("BARE_PINGORA_TOOL").unwrap_or_default();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {tool} '{}' --bare-pingora \"$@\"\n",
            exe.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    for &n in threads {
        let port = support::free_port();
        let public = format!("http://127.0.0.1:{port}");
        let (fake, account) = fake(&public, &token, Some(&format!("http://{rest_host}"))).await;
        let log = tmp.join(format!("gateway-{n}.log"));
        let config = gateway_config(port, &fake, &rest_host, n);
        let gateway =
            support::GatewayProcess::start("proxy-cost", port, &config, &[], Some(&log)).await;
        pin_like_the_proxies(gateway.pid());
        let cookie = support::login(&support::client(), &public).await;
        for path in paths {
            let mut header = path_header(path, &public, &cookie).await;
            // `EXTRA_HEADERS`: more request header lines (newline-separated),
            // sent to every target alike; `Connection: close` makes each
            // request a new connection.
            if let Ok(extra) = std::env::var("EXTRA_HEADERS") {
                for line in extra.lines().filter(|l| !l.trim().is_empty()) {
                    header = format!("{header}\n{line}");
                }
            }
            println!("\n== gateway server.threads = {n}, {path} path; pingora and nginx with {n} worker(s) ==");
            let rows = tmp.join(format!("runs-{n}-{path}.tsv"));
            let status = Command::new("bash")
                .arg(&run_sh)
                .arg(&public)
                .env("UPSTREAM_PORT", upstream_port.to_string())
                .env("UPSTREAM_TOKEN", &token)
                .env("ACCOUNT_ID", &account)
                .env("GATEWAY_PID", gateway.pid().to_string())
                .env("GATEWAY_HEADER", &header)
                .env("PINGORA_MIN_BIN", &wrapper)
                .env("PINGORA_THREADS", n.to_string())
                .env("PROXY_WORKERS", n.to_string())
                .env("RESULTS_TSV", &rows)
                .status()
                .expect("run.sh");
            assert!(status.success(), "run.sh failed");
            let table = std::fs::read_to_string(&rows).unwrap_or_default();
            print!("{}", paired_rounds(&table));
        }
        let lines = std::fs::read_to_string(&log).map_or(0, |l| l.lines().count());
        println!("(gateway log: {lines} lines in {})", log.display());
        drop(gateway);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The gateway next to the bare proxy round by round, from the harness's
/// per-run table (`RESULTS_TSV`): each round's gateway/pingora throughput
/// and CPU per request and its p99 difference, and the median of each. The
/// two ran minutes apart at most, where the harness's medians over rounds
/// may come from different rounds, so these paired figures move less with
/// the machine's drift.
fn paired_rounds(table: &str) -> String {
    struct Run {
        rps: f64,
        p99_us: f64,
        cpu_us: f64,
    }
    let mut runs: std::collections::BTreeMap<u32, [Option<Run>; 2]> = Default::default();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (Some(round), Some(target), Some(rps), Some(p99), Some(cpu)) = (
        column("round"),
        column("target"),
        column("rps"),
        column("p99_us"),
        column("cpu_us_per_req"),
    ) else {
        return "(no per-run table from the harness)\n".to_string();
    };
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let slot = match f.get(target) {
            Some(&"pingora") => 0,
            Some(&"gateway") => 1,
            _ => continue,
        };
        let number = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        let (Some(r), Some(rps), Some(p99_us), Some(cpu_us)) = (
            f.get(round).and_then(|v| v.parse().ok()),
            number(rps),
            number(p99),
            number(cpu),
        ) else {
            continue;
        };
        runs.entry(r).or_default()[slot] = Some(Run {
            rps,
            p99_us,
            cpu_us,
        });
    }
    let mut out = String::from("\ngateway/pingora per round   req/s    cpu/req   p99 diff ms\n");
    let (mut rps, mut cpu, mut p99) = (Vec::new(), Vec::new(), Vec::new());
    for (r, pair) in &runs {
        let [Some(bare), Some(gw)] = pair else {
            continue;
        };
        if bare.rps <= 0.0 || bare.cpu_us <= 0.0 {
            continue;
        }
        let (q, c, d) = (
            gw.rps / bare.rps,
            gw.cpu_us / bare.cpu_us,
            (gw.p99_us - bare.p99_us) / 1000.0,
        );
        out += &format!("round {r:<21} {q:>6.3} {c:>9.3} {d:>+12.2}\n");
        rps.push(q);
        cpu.push(c);
        p99.push(d);
    }
    if rps.is_empty() {
        return "(no round measured both pingora and the gateway)\n".to_string();
    }
    out += &format!(
        "median of {} rounds          {:>6.3} {:>9.3} {:>+12.2}\n",
        rps.len(),
        support::median(&rps),
        support::median(&cpu),
        support::median(&p99)
    );
    out
}

/// The harness runs nginx and the bare proxy on the cores of `PROXY_CPUS`
/// when it is set (with wrk on `LOADGEN_CPUS`, the upstream on
/// `UPSTREAM_CPUS`): the gateway, every thread of it, goes there too.
fn pin_like_the_proxies(pid: u32) {
    let Some(cpus) = std::env::var("PROXY_CPUS").ok().filter(|c| !c.is_empty()) else {
        return;
    };
    let status = Command::new("taskset")
        .args(["-a", "-c", "-p", &cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset");
    assert!(status.success(), "taskset -a -c -p {cpus} {pid} failed");
}

// ------------------------------------------------------------ smoke

async fn smoke() {
    paired_rounds_pair_each_round();
    let token = "smoke-fixed-access-token";
    let port = support::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let (fake, account) = fake(&public, token, None).await;
    let rest = fake.rest_host_url(0);
    let rest_host = rest.trim_start_matches("http://").to_string();
    let client = support::client();
    let url_path = format!("/restapi/v2.1/accounts/{account}");

    // The gateway, on both paths, sends the fixed token the fake issued.
    let config = gateway_config(port, &fake, &rest_host, 1);
    let gateway =
        support::GatewayProcess::start("proxy-cost-smoke", port, &config, &[], None).await;
    let cookie = support::login(&client, &gateway.public).await;
    for path in ["cookie", "token"] {
        let header = path_header(path, &gateway.public, &cookie).await;
        let (name, value) = header.split_once(": ").expect("header");
        let r = client
            .get(format!("{}{url_path}", gateway.public))
            .header(name, value)
            .send()
            .await
            .expect("gateway");
        assert_eq!(r.status(), 200, "{path} path");
    }
    // The bare proxy, with the fixed token (now issued), reaches the fake's
    // REST host.
    let bare_port = support::free_port();
    let exe = std::env::current_exe().expect("bench binary");
    let child = Command::new(exe)
        .args([
            "--bare-pingora",
            &format!("127.0.0.1:{bare_port}"),
            &rest_host,
            &rest_host,
            token,
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("bare pingora");
    let _bare = BareProcess(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        match client
            .get(format!("http://127.0.0.1:{bare_port}{url_path}"))
            .header("Cookie", "dsgw_session=dropped")
            .send()
            .await
        {
            Ok(r) => break r.status(),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("bare pingora did not answer: {e}"),
        }
    };
    assert_eq!(status, 200, "bare pingora forwards with the fixed token");

    let seen = fake.rest_requests();
    assert_eq!(seen.len(), 3, "the fake's REST host saw the three requests");
    for r in seen {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer smoke-fixed-access-token")
        );
        assert_eq!(r.cookie, None, "cookies dropped");
    }
}

/// `paired_rounds` pairs the gateway with the bare proxy of the same round.
fn paired_rounds_pair_each_round() {
    let table = "round\ttarget\trps\tp50_us\tp99_us\tmean_us\trequests\terrors\tcpu_us_per_req\n\
                 1\tnginx\t40000\t1\t3000\t1\t1\t0\t20.0\n\
                 1\tpingora\t20000\t1\t5000\t1\t1\t0\t40.0\n\
                 1\tgateway\t18000\t1\t6000\t1\t1\t0\t48.0\n\
                 2\tgateway\t22000\t1\t4500\t1\t1\t0\t40.0\n\
                 2\tpingora\t20000\t1\t5000\t1\t1\t0\t40.0\n\
                 3\tpingora\t10000\t1\t5000\t1\t1\t0\t40.0\n";
    let out = paired_rounds(table);
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[1].ends_with("0.900     1.200        +1.00"), "{out}");
    assert!(lines[2].ends_with("1.100     1.000        -0.50"), "{out}");
    assert!(lines[3].starts_with("median of 2 rounds"), "{out}");
    assert!(lines[3].ends_with("1.000     1.100        +0.25"), "{out}");
    assert!(paired_rounds("").starts_with("(no per-run table"));
}
