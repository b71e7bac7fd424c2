//! Redis servers for tests: each test starts its own `redis-server`
//! processes on free loopback ports, in their own temp dirs, with AOF on so a
//! restart keeps the data; killed and removed on drop. `scripts/dev test`
//! installs redis-server when it is missing; a test never skips without it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, free_ports_at, unique_temp_path};

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// One `redis-server` process.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    /// Arguments redis-cli needs to reach it (TLS).
    cli_args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A standalone server on a free port, answering PING.
    pub fn start() -> RedisServer {
        Self::start_with(free_port(), &[])
    }

    /// A server on `port` with extra arguments, answering PING (or its
    /// startup log in the panic message).
    pub fn start_with(port: u16, extra_args: &[&str]) -> RedisServer {
        let extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        Self::launch(port, new_dir(), extra_args, Vec::new())
    }

    /// A server that only speaks TLS, with a fresh self-signed certificate
    /// for 127.0.0.1 (see `cert_path`).
    pub fn start_tls() -> RedisServer {
        let dir = new_dir();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("generate a test certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).expect("write cert");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
        let port = free_port();
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let extra_args = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &path(&cert),
            "--tls-key-file",
            &path(&key),
            "--tls-ca-cert-file",
            &path(&cert),
            "--tls-auth-clients",
            "no",
        ];
        let cli_args = ["--tls", "--cacert", &path(&cert)];
        let owned = |args: &[&str]| args.iter().map(|a| a.to_string()).collect();
        Self::launch(port, dir, owned(&extra_args), owned(&cli_args))
    }

    fn launch(port: u16, dir: PathBuf, extra_args: Vec<String>, cli_args: Vec<String>) -> Self {
        let mut server = RedisServer {
            port,
            dir,
            extra_args,
            cli_args,
            child: None,
        };
        server.spawn();
        server
    }

    /// The self-signed certificate of a `start_tls` server.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// `redis://127.0.0.1:P`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.log_path())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): the Redis tests need it on PATH; \
                     `scripts/dev test` installs it (apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits (bounded) until PING answers PONG (not LOADING, not refused),
    /// from this process (not another test's server on a reused port).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let pid = self.child.as_ref().map(Child::id).unwrap_or_default();
        let ours = format!("process_id:{pid}\r\n");
        loop {
            if self.cli_text(&["PING"]).trim() == "PONG"
                && self.cli_text(&["INFO", "server"]).contains(&ours)
            {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                panic!(
                    "redis-server on port {} did not answer PING (exited: {exited:?}); log:\n{log}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits (bounded) for the exit; the data stays in its dir.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on port {} ignored SIGTERM", self.port);
    }

    /// Starts the server again on the same port with the same dir (its data
    /// comes back from the AOF).
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Runs `redis-cli -p P <args>` and returns its raw output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_args)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli (installed with redis-server)")
    }

    /// `cli` as text (stdout).
    pub fn cli_text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.cli(args).stdout).into_owned()
    }

    /// Every key this server holds (`redis-cli --scan`).
    pub fn keys(&self) -> Vec<String> {
        self.cli_text(&["--scan"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The raw bytes of every value, as `redis-cli` prints them: GET for
    /// strings, HGETALL for hashes (field names included), XRANGE for
    /// streams, ZRANGE for sorted sets (members and scores).
    pub fn dump_values(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for key in self.keys() {
            let kind = self.cli_text(&["TYPE", &key]);
            let args: Vec<&str> = match kind.trim() {
                "string" => vec!["GET", &key],
                "hash" => vec!["HGETALL", &key],
                "stream" => vec!["XRANGE", &key, "-", "+"],
                "zset" => vec!["ZRANGE", &key, "0", "-1", "WITHSCORES"],
                // Expired (a lease's short TTL) since it was listed.
                "none" => continue,
                other => panic!("unexpected Redis type {other} of key {key}"),
            };
            out.extend_from_slice(&self.cli(&args).stdout);
        }
        out
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of masters only, on loopback.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// `masters` nodes, joined with `redis-cli --cluster create`, all
    /// reporting `cluster_state:ok`.
    pub fn start(masters: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                let port = cluster_port();
                let config_file = format!("nodes-{port}.conf");
                RedisServer::start_with(
                    port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &config_file,
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let cluster = RedisCluster { nodes };
        cluster.create();
        cluster.wait_ok();
        cluster
    }

    fn create(&self) {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = self.nodes[0].cli(&args);
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits (bounded) until every node reports `cluster_state:ok`.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        for node in &self.nodes {
            loop {
                let info = node.cli_text(&["CLUSTER", "INFO"]);
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster node {} not ok:\n{info}",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The raw values of every key on every node.
    pub fn dump_values(&self) -> Vec<u8> {
        self.nodes.iter().flat_map(|n| n.dump_values()).collect()
    }

    /// Every key on every node.
    pub fn keys(&self) -> Vec<String> {
        self.nodes.iter().flat_map(|n| n.keys()).collect()
    }
}

/// A fresh temp dir for one server.
fn new_dir() -> PathBuf {
    let dir = unique_temp_path("redis");
    std::fs::create_dir_all(&dir).expect("create the redis test dir");
    dir
}

/// A free port P whose cluster bus port P + 10000 is free too, both below
/// the kernel's ephemeral range and handed out to no other test.
fn cluster_port() -> u16 {
    free_ports_at(&[0, 10_000])
}
