//! `docusign-gateway demo` end to end: the binary on a free loopback port.
//! An envelope created through the gateway makes the fake send its Connect
//! event to the gateway's `/webhooks/connect`, and the demo's receiver
//! prints a line for it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, gateway_bin, unique_temp_path, Browser, TempDir};
use fake_docusign::FakeConfig;
use reqwest::Client;

/// A child process, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo process and everything it printed.
struct Demo {
    _process: Running,
    output: Arc<Mutex<String>>,
    url: String,
    _sock_dir: TempDir,
}

impl Demo {
    fn start() -> Demo {
        let port = free_port();
        // The gateway creates the socket's directory itself (0700).
        let sock_dir = TempDir(unique_temp_path("demo-sock"));
        let mut cmd = Command::new(gateway_bin());
        cmd.args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .env("DSGW_SERVER_UPGRADE_SOCK", sock_dir.0.join("upgrade.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("DSGW_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("spawn the demo");
        let output = collect_output(&mut child);
        Demo {
            _process: Running(child),
            output,
            url: format!("http://127.0.0.1:{port}"),
            _sock_dir: sock_dir,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The first line of the output holding every one of `needles`, once
    /// there is one or `within` has passed.
    async fn line_with(&self, needles: &[&str], within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .output()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_owned);
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn an_envelope_event_reaches_the_demo_receiver_through_the_webhook() {
    let demo = Demo::start();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = client.get(format!("{}/healthz", demo.url)).send().await;
        if up.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not start; output:\n{}",
            demo.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hint = demo
        .line_with(
            &["curl", "emailSubject", "/envelopes"],
            Duration::from_secs(5),
        )
        .await;
    assert!(
        hint.is_some(),
        "the hints show how to create an envelope; output:\n{}",
        demo.output()
    );
    assert!(demo.output().contains("/webhooks/connect"));

    let mut browser = Browser {
        client: client.clone(),
        cookies: Vec::new(),
        base: demo.url.clone(),
    };
    assert_eq!(browser.login("/auth/session").await.status(), 302);
    let r = client
        .post(format!("{}/auth/token", demo.url))
        .header("Cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: serde_json::Value = r.json().await.unwrap();
    let token = token["token"]
        .as_str()
        .expect("a gateway token")
        .to_string();

    let account = FakeConfig::demo_defaults().users[0].accounts[0]
        .account_id
        .clone();
    let r = client
        .post(format!(
            "{}/restapi/v2.1/accounts/{account}/envelopes",
            demo.url
        ))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(r#"{"emailSubject":"Hello","status":"sent"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let envelope = created["envelopeId"].as_str().expect("envelopeId");

    let envelope_needle = format!("envelopeId={envelope}");
    let line = demo
        .line_with(&["receiver: ", &envelope_needle], Duration::from_secs(15))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no receiver line for envelope {envelope}; output:\n{}",
                demo.output()
            )
        });
    for part in [
        "receiver: webhook=connect id=",
        " attempt=1 event=envelope-sent ",
        " status=sent (",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    assert!(!line.contains("id=- "), "an event id: {line}");
    assert!(line.chars().count() <= 200, "{line}");
    // Delivered once.
    let lines = demo.output();
    let count = lines
        .lines()
        .filter(|l| l.starts_with("receiver: ") && l.contains(&envelope_needle))
        .count();
    assert_eq!(count, 1, "{lines}");
}

/// Starts `docusign-gateway fake-docusign <args>` with `env`: the process
/// and what it prints.
fn fake_command(args: &[&str], env: &[(&str, &str)]) -> (Running, Arc<Mutex<String>>) {
    let mut child = Command::new(gateway_bin())
        .arg("fake-docusign")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fake-docusign");
    let output = collect_output(&mut child);
    (Running(child), output)
}

#[tokio::test]
async fn the_fake_docusign_command_signs_connect_messages_with_keys_from_a_variable() {
    use fake_docusign::receiver::Receiver;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), move |a| {
        let _ = tx.send(a);
    })
    .await
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = receiver.url();
    let args = [
        "--listen",
        &listen,
        "--rest-host",
        "127.0.0.2:0",
        "--rest-host",
        "127.0.0.3:0",
        "--admin-host",
        "127.0.0.4:0",
        "--platform-host",
        "127.0.0.5:0",
        "--connect-url",
        &url,
        "--connect-hmac-keys-env",
        "TEST_FAKE_CONNECT_KEYS",
    ];
    let (mut child, output) = fake_command(&args, &[("TEST_FAKE_CONNECT_KEYS", "k-one, k-two")]);
    let client = Client::new();
    let send = format!("http://{listen}/_fake/connect/send");
    let deadline = Instant::now() + Duration::from_secs(20);
    let sent = loop {
        if let Ok(r) = client.post(&send).send().await {
            break r;
        }
        let exited = child.0.try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "fake-docusign did not start ({exited:?}): {}",
            output.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sent.status(), 200);
    let arrival = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a Connect message in time")
        .expect("receiver running");
    drop(child);
    let signature = |n: u8| arrival.headers[format!("x-docusign-signature-{n}").as_str()].clone();
    assert_eq!(
        signature(1),
        fake_docusign::sign("k-one", &arrival.body).as_str()
    );
    assert_eq!(
        signature(2),
        fake_docusign::sign("k-two", &arrival.body).as_str()
    );
    assert!(
        output
            .lock()
            .unwrap()
            .contains(&format!("Connect: envelope events to {url}, 2 HMAC key(s)")),
        "{}",
        output.lock().unwrap()
    );
    // No key on the command line: a variable that is not set is an error,
    // and keys without a listener are refused.
    let (mut unset, output) = fake_command(
        &[
            "--listen",
            "127.0.0.1:0",
            "--connect-url",
            &url,
            "--connect-hmac-keys-env",
            "TEST_FAKE_CONNECT_KEYS_UNSET",
        ],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = unset.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "fake-docusign kept running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !output
        .lock()
        .unwrap()
        .contains("TEST_FAKE_CONNECT_KEYS_UNSET is not set")
    {
        assert!(Instant::now() < deadline, "{}", output.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alone = Command::new(gateway_bin())
        .args(["fake-docusign", "--connect-hmac-keys-env", "X"])
        .output()
        .expect("run");
    assert!(!alone.status.success());
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--connect-url"));
}

/// Everything `child` prints on stdout and stderr, line by line, as it
/// comes (read by a thread per stream).
fn collect_output(child: &mut std::process::Child) -> Arc<Mutex<String>> {
    let output = Arc::new(Mutex::new(String::new()));
    let streams: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for stream in streams {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut o = output.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    output
}
