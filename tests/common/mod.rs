//! Test harness: the real gateway binary and the project's fake DocuSign,
//! over loopback, on ephemeral ports, with bounded waits.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use docusign_gateway::ops::log_queue::FLUSH_EVERY;
use fake_docusign::{FakeConfig, FakeDocuSign};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response};

pub mod multi;
pub mod redis;
pub mod webhook;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const COOKIE_NAME: &str = "dsgw_session";
pub const LOGIN_COOKIE_NAME: &str = "dsgw_session_login";
pub const CALLBACK: &str = "/auth/docusign/callback";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Ports `free_ports_at` has handed out in this process: a test's server
/// may bind its port seconds after the check (a Redis outage test starts its
/// server late), and tests run in parallel, so a port is handed out once.
static HANDED_OUT: Mutex<std::collections::BTreeSet<u16>> =
    Mutex::new(std::collections::BTreeSet::new());

/// A free port on 127.0.0.1 for a server a test starts.
pub fn free_port() -> u16 {
    free_ports_at(&[0])
}

/// A port P such that P + each of `offsets` (0 among them) is free on
/// 127.0.0.1 and was not handed out before in this process; all of them are
/// handed out now (a Redis cluster node listens on P and P + 10000). Picked
/// at random below the kernel's ephemeral range (32768 and up), so that no
/// outgoing connection of a concurrent test can take one between this check
/// and the server's bind.
pub fn free_ports_at(offsets: &[u16]) -> u16 {
    use rand::Rng;
    let top = 32_000 - offsets.iter().max().copied().unwrap_or(0);
    let mut rng = rand::thread_rng();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = rng.gen_range(10_000..top);
        let free = |p: u16| !handed_out.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok();
        if offsets.iter().all(|&o| free(port + o)) {
            handed_out.extend(offsets.iter().map(|&o| port + o));
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// The gateway binary running as a child process; killed on drop.
pub struct GatewayProcess {
    child: Child,
    pub url: String,
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
    pub config_path: std::path::PathBuf,
    env: Vec<(String, String)>,
    /// The config file belongs to this process (removed on drop).
    owns_config: bool,
    /// The upgrade socket's directory, shared with the processes that
    /// upgrade this one; removed when the last of them is dropped.
    sock_dir: Option<Arc<SockDir>>,
}

impl GatewayProcess {
    /// Sets an environment variable for this gateway's next start (a
    /// restart or an upgrade), replacing an earlier value.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// What the process wrote to stderr so far. Its log lines reach stderr
    /// up to `FLUSH_EVERY` after they are logged: see [`Self::logs_with`].
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// The logs once what was logged before this call is written out (the
    /// gateway's log queue writes every `FLUSH_EVERY`) and `needle` is in
    /// them; after 5 s, whatever is there.
    pub async fn logs_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            tokio::time::sleep(FLUSH_EVERY * 5).await;
            let logs = self.logs();
            if logs.contains(needle) || Instant::now() >= deadline {
                return logs;
            }
        }
    }

    /// Sends a signal (TERM, QUIT, INT) to the process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits (bounded) for the process to exit; its exit code, None on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Wraps a gateway started with [`spawn_gateway`] (killed on drop, its
    /// config file removed).
    pub fn adopt(
        child: Child,
        url: &str,
        logs: Arc<Mutex<String>>,
        config_path: std::path::PathBuf,
    ) -> GatewayProcess {
        let addr = url
            .trim_start_matches("http://")
            .parse()
            .expect("url is http://ip:port");
        GatewayProcess {
            child,
            url: url.to_string(),
            addr,
            logs,
            config_path,
            env: Vec::new(),
            owns_config: true,
            sock_dir: None,
        }
    }

    /// Removes `dir` (the upgrade socket's) once this process is dropped.
    pub fn with_sock_dir(mut self, dir: std::path::PathBuf) -> GatewayProcess {
        self.sock_dir = Some(Arc::new(SockDir(dir)));
        self
    }

    /// Starts a second gateway with the same configuration and `--upgrade`:
    /// it takes the listening sockets over once this one gets SIGQUIT.
    pub fn spawn_upgrade(&self) -> GatewayProcess {
        let (child, logs) = spawn_binary(&self.config_path, &["--upgrade"], &self.env);
        GatewayProcess {
            child,
            url: self.url.clone(),
            addr: self.addr,
            logs,
            config_path: self.config_path.clone(),
            env: self.env.clone(),
            owns_config: false,
            sock_dir: self.sock_dir.clone(),
        }
    }
}

/// A directory removed (with what is in it) when dropped.
pub struct SockDir(pub std::path::PathBuf);

impl Drop for SockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_config {
            let _ = std::fs::remove_file(&self.config_path);
        }
    }
}

/// The gateway binary under test: cargo's, or `GATEWAY_TEST_BIN` when set.
/// Worktrees that share one `CARGO_TARGET_DIR` also share cargo's copy at
/// `target/debug/docusign-gateway`, which a concurrent build in another
/// worktree replaces mid-run; a private copy named here is immune to that.
pub fn gateway_bin() -> std::path::PathBuf {
    std::env::var_os("GATEWAY_TEST_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_docusign-gateway").into())
}

/// Runs the gateway binary with `config_toml` and extra environment, and
/// collects its output.
pub fn spawn_gateway(
    config_toml: &str,
    env: &[(&str, &str)],
) -> (Child, Arc<Mutex<String>>, std::path::PathBuf) {
    let path = unique_temp_path("toml");
    std::fs::write(&path, config_toml).expect("write config");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (child, logs) = spawn_binary(&path, &[], &env);
    (child, logs, path)
}

/// A path in the temp dir unique to this test process and call.
pub fn unique_temp_path(ext: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "dsgw-test-{}-{}.{ext}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ))
}

fn spawn_binary(
    config: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
) -> (Child, Arc<Mutex<String>>) {
    let mut cmd = Command::new(gateway_bin());
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("DSGW_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn gateway");
    let logs = Arc::new(Mutex::new(String::new()));
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut l = logs.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    (child, logs)
}

/// Options of a test environment.
pub struct Options {
    pub fake: FakeConfig,
    /// Extra TOML lines appended to the [session] section.
    pub session_extra: String,
    /// Extra TOML lines appended to the [docusign] section;
    /// `{admin_api_url}` and `{platform_api_url}` stand for the fake's
    /// Admin and api.docusign.com hosts.
    pub docusign_extra: String,
    pub rust_log: String,
    /// Override allowed_api_hosts (TOML array text); `{rest0}`, `{rest1}`
    /// stand for the fake's REST hosts (`127.0.0.2:PORT`). Patterns name
    /// the port: without one only 443 would be allowed.
    pub allowed_api_hosts: String,
    /// Extra TOML lines appended to the [server] section.
    pub server_extra: String,
    /// Extra TOML appended at the end (whole sections, e.g. `[log]`).
    pub extra_toml: String,
    /// HTTPS on the gateway's listener with this certificate.
    pub tls: Option<TestTls>,
}

/// A certificate for 127.0.0.1 made by the test, signed by its own CA.
pub struct TestTls {
    pub dir: std::path::PathBuf,
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    /// The CA's certificate (PEM), for clients.
    pub ca_pem: String,
}

impl TestTls {
    pub fn new() -> TestTls {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names, or OpenSSL takes the leaf for a self-signed one.
        ca.distinguished_name
            .push(DnType::CommonName, "docusign-gateway test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("params");
        leaf.distinguished_name
            .push(DnType::CommonName, "docusign-gateway test");
        let leaf = leaf.signed_by(&key, &issuer).expect("certificate");
        let dir = unique_temp_path("tls");
        std::fs::create_dir_all(&dir).expect("tls dir");
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, leaf.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write CA");
        TestTls {
            dir,
            cert_file,
            key_file,
            ca_pem: ca_cert.pem(),
        }
    }
}

impl Drop for TestTls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Default for Options {
    fn default() -> Self {
        let mut fake = FakeConfig::demo_defaults();
        fake.account_server = "127.0.0.1:0".parse().unwrap();
        fake.rest_hosts = vec![
            "127.0.0.2:0".parse().unwrap(),
            "127.0.0.3:0".parse().unwrap(),
        ];
        Options {
            fake,
            session_extra: String::new(),
            docusign_extra: String::new(),
            rust_log: "info".into(),
            allowed_api_hosts: "[\"{rest0}\", \"{rest1}\"]".into(),
            server_extra: String::new(),
            extra_toml: String::new(),
            tls: None,
        }
    }
}

/// A fake DocuSign and a gateway configured against it.
pub struct Env {
    pub fake: FakeDocuSign,
    pub gw: GatewayProcess,
    pub client: Client,
    /// The gateway's certificate when it speaks HTTPS.
    pub tls: Option<TestTls>,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(mut opts: Options) -> Env {
        let port = free_port();
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let public_url = format!("{scheme}://127.0.0.1:{port}");
        if let Some(tls) = &opts.tls {
            opts.server_extra += &format!(
                "\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
                tls.cert_file.display(),
                tls.key_file.display()
            );
        }
        opts.fake.redirect_uris = vec![format!("{public_url}{CALLBACK}")];
        let fake = FakeDocuSign::start(opts.fake)
            .await
            .expect("fake DocuSign starts");
        // A directory of its own: the gateway creates it 0700 (it refuses a
        // directory that others can write, such as the temp dir).
        let sock_dir = unique_temp_path("sockdir");
        let mut allowed = opts.allowed_api_hosts.clone();
        for i in 0..fake.rest_host_count() {
            let url = fake.rest_host_url(i);
            let authority = url.trim_start_matches("http://").trim_end_matches('/');
            allowed = allowed.replace(&format!("{{rest{i}}}"), authority);
        }
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "{public_url}"
threads = 2
upgrade_sock = "{upgrade_sock}"
{server_extra}

[docusign]
auth_server = "{auth}"
client_id = "{client_id}"
scopes = ["signature"]
callback_path = "{CALLBACK}"
allowed_api_hosts = {allowed}
allow_plain_http = true
{docusign_extra}

[session]
cookie_name = "{COOKIE_NAME}"
secure_cookie = false
{session_extra}

{extra_toml}
"#,
            auth = fake.account_server_url(),
            client_id = fake.config().client_id,
            allowed = allowed,
            docusign_extra = opts
                .docusign_extra
                .replace("{admin_api_url}", &fake.admin_api_url())
                .replace("{platform_api_url}", &fake.platform_api_url()),
            // Most tests revoke tokens right after login and expect the
            // refresh + replay; the minimum interval has tests of its own.
            session_extra = if opts.session_extra.contains("min_refresh_interval_secs") {
                opts.session_extra.clone()
            } else {
                format!("min_refresh_interval_secs = 0\n{}", opts.session_extra)
            },
            server_extra = opts.server_extra,
            extra_toml = opts.extra_toml,
            upgrade_sock = sock_dir.join("upgrade.sock").display(),
        );
        let secret = fake.config().client_secret.clone();
        let (child, logs, config_path) = spawn_gateway(
            &toml,
            &[
                ("DSGW_DOCUSIGN_CLIENT_SECRET", &secret),
                ("DSGW_SESSION_SECRET", SECRET),
                ("RUST_LOG", &opts.rust_log),
            ],
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let gw = GatewayProcess {
            child,
            url: public_url,
            addr,
            logs,
            config_path,
            env: vec![
                ("DSGW_DOCUSIGN_CLIENT_SECRET".into(), secret.clone()),
                ("DSGW_SESSION_SECRET".into(), SECRET.into()),
                ("RUST_LOG".into(), opts.rust_log.clone()),
            ],
            owns_config: true,
            sock_dir: Some(Arc::new(SockDir(sock_dir))),
        };
        let mut client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30));
        if let Some(tls) = &opts.tls {
            let ca = reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).expect("CA");
            // HTTP/1.1 like most clients; tests/tls.rs checks HTTP/2 itself.
            client = client.add_root_certificate(ca).http1_only();
        }
        let client = client.build().unwrap();
        wait_healthy(&client, &gw).await;
        Env {
            fake,
            gw,
            client,
            tls: opts.tls,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gw.url)
    }

    /// A fresh browser (its own cookies).
    pub fn browser(&self) -> Browser {
        Browser {
            client: self.client.clone(),
            cookies: Vec::new(),
            base: self.gw.url.clone(),
        }
    }

    /// A browser that went through the whole login.
    pub async fn logged_in(&self) -> Browser {
        let mut b = self.browser();
        let resp = b.login("/auth/session").await;
        assert_eq!(resp.status(), 302, "callback redirects");
        b
    }

    /// GET a gateway path with this browser's cookies (no Accept header).
    pub async fn get_as(&self, b: &Browser, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header(COOKIE, b.cookie_header())
            .send()
            .await
            .expect("request")
    }

    /// GET a gateway path with a gateway token (or a service token).
    pub async fn get_with_token(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("request")
    }

    /// POST a JSON body to a gateway path with this browser's cookies.
    pub async fn post_json_as(&self, b: &Browser, path: &str, body: &str) -> Response {
        self.client
            .post(self.url(path))
            .header(COOKIE, b.cookie_header())
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    /// Mints a gateway token with this browser's session: (token, expires_at).
    pub async fn mint_token(&self, b: &Browser) -> (String, u64) {
        let r = self
            .client
            .post(self.url("/auth/token"))
            .header(COOKIE, b.cookie_header())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: serde_json::Value = r.json().await.expect("JSON");
        assert_eq!(v["token_type"], "Bearer");
        (
            v["token"].as_str().expect("token").to_string(),
            v["expires_at"].as_u64().expect("expires_at"),
        )
    }

    /// The account ids of the fake's first user with their REST host index.
    pub fn accounts(&self) -> Vec<(String, usize)> {
        self.fake.config().users[0]
            .accounts
            .iter()
            .map(|a| (a.account_id.clone(), a.rest_host))
            .collect()
    }
}

pub async fn wait_healthy(client: &Client, gw: &GatewayProcess) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{}/healthz", gw.url)).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not become healthy; output:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cookie jar and a client that does not follow redirects.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    pub cookies: Vec<(String, String)>,
    pub base: String,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Stores the response's Set-Cookie headers (Max-Age=0 deletes).
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for sc in headers.get_all(SET_COOKIE) {
            let Ok(sc) = sc.to_str() else { continue };
            let first = sc.split(';').next().unwrap_or("");
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(k, _)| k != name);
            if !sc.contains("Max-Age=0") && !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    /// GET an absolute URL or a gateway path, with this browser's cookies
    /// when the URL is the gateway's.
    pub async fn get(&mut self, url: &str) -> Response {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut req = self
            .client
            .get(&url)
            .header("Accept", "text/html,application/xhtml+xml");
        if url.starts_with(&self.base) && !self.cookies.is_empty() {
            req = req.header(COOKIE, self.cookie_header());
        }
        let resp = req.send().await.expect("request");
        if url.starts_with(&self.base) {
            self.absorb(resp.headers());
        }
        resp
    }

    /// /auth/login -> DocuSign consent -> callback; returns the callback's response.
    pub async fn login(&mut self, return_to: &str) -> Response {
        let callback_url = self.start_login(return_to).await;
        self.get(&callback_url).await
    }

    /// /auth/login and the consent page; returns the callback URL DocuSign sent.
    pub async fn start_login(&mut self, return_to: &str) -> String {
        let q: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let r = self.get(&format!("/auth/login?return_to={q}")).await;
        assert_eq!(r.status(), 302);
        let consent = location(&r);
        let r = self.get(&consent).await;
        assert_eq!(r.status(), 302, "fake consent redirects");
        location(&r)
    }
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get(LOCATION)
        .expect("Location header")
        .to_str()
        .unwrap()
        .to_string()
}

/// Query parameters of a URL.
pub fn query(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A steady stream of independent clients (a fresh connection per request)
/// for `secs` seconds: (requests answered 200, what went wrong otherwise).
pub fn steady_stream(
    client: Client,
    url: String,
    secs: u64,
) -> tokio::task::JoinHandle<(u32, Vec<String>)> {
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0u32, Vec::new());
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => ok += 1,
                Ok(r) => failed.push(format!("status {}", r.status())),
                Err(e) => failed.push(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (ok, failed)
    })
}

/// Polls `f` until it returns true or the bound passes.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text of the metrics listener on 127.0.0.1:`port`.
pub async fn scrape(client: &Client, port: u16) -> String {
    client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Reads one response (head and Content-Length body) from `s`; its status
/// line.
pub async fn read_response(s: &mut tokio::net::TcpStream) -> String {
    let (status, _) = read_whole_response(s).await;
    status
}

/// Reads one response (head and Content-Length body) from `s`: its status
/// line and its whole text.
pub async fn read_whole_response(s: &mut tokio::net::TcpStream) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before a whole response: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return (text.lines().next().unwrap().to_string(), text);
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

/// Sends one HTTP/1.1 request as written (no URL normalisation) and returns
/// the status code and the whole response text.
pub async fn raw_request(addr: SocketAddr, request_head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request_head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// An RSA key pair made by openssl: (private key file, public key PEM).
pub fn rsa_key(dir: &std::path::Path, pkcs1: bool) -> (std::path::PathBuf, String) {
    let key = dir.join(if pkcs1 { "pkcs1.pem" } else { "pkcs8.pem" });
    let mut genrsa = std::process::Command::new("openssl");
    genrsa.arg("genrsa");
    if pkcs1 {
        genrsa.arg("-traditional");
    }
    let ok = genrsa
        .arg("-out")
        .arg(&key)
        .arg("2048")
        .output()
        .expect("openssl");
    assert!(ok.status.success(), "openssl genrsa failed");
    let public = std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .output()
        .expect("openssl rsa");
    assert!(public.status.success());
    (key, String::from_utf8(public.stdout).unwrap())
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
