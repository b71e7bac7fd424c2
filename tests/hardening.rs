//! What an adversary tried against the running gateway (issue 13), each
//! attempt kept here so it stays refused: odd path spellings, methods
//! outside DocuSign's REST set, absolute-form targets, cookies planted by a
//! REST host, ports of allowed hosts, several `Cookie` headers, oversized
//! answers of the account server, and what anonymous callers and HTML pages
//! are told.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A well-formed account id that is none of the fake user's accounts.
const FOREIGN: &str = "0badc0de-0000-4000-8000-000000000000";

/// One request over raw TCP with the browser's cookie; status and text.
async fn raw_with_cookie(env: &Env, b: &Browser, method: &str, target: &str) -> (u16, String) {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        env.gw.addr,
        b.cookie_header()
    );
    raw_request(env.gw.addr, &head).await
}

fn error_code(text: &str) -> String {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Issue 13, item 3: every non-canonical spelling is either 400
/// `invalid_path` or names its account (check and host); none reaches the
/// default account's host with a foreign account id.
#[tokio::test]
async fn odd_path_spellings_never_slip_to_the_default_account() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    // Account 0 (default) lives on REST host 0, account 1 on REST host 1.
    let (second, second_host) = env.accounts()[1].clone();
    assert_eq!(second_host, 1);
    let encoded_second = format!("%{:02X}{}", second.as_bytes()[0], &second[1..]);
    let invalid = [
        format!("/restapi/v2.1/accounts//{FOREIGN}"),
        format!("/restapi//v2.1/accounts/{FOREIGN}"),
        format!("/restapi/v2.1//accounts/{FOREIGN}"),
        format!("/restapi/v2.1/%61ccounts/{FOREIGN}"),
        format!("/restapi/v2.1/%61ccounts/{second}"),
        format!("/restapi/v2.1/accounts;x=1/{FOREIGN}"),
        format!("/restapi/v2.1/accounts%20/{FOREIGN}"),
        format!("/restapi/accounts/{FOREIGN}"),
        format!("/restapi/accounts/{second}"),
        format!("/restapi/V2.1/accounts/{FOREIGN}"),
        format!("/restapi/v2.1;a=b/accounts/{FOREIGN}"),
        format!("/restapi/v2.1/accounts/{encoded_second}"),
        format!("/restapi/v2.1/accounts/{FOREIGN};x=1"),
        format!("/restapi/v2.1/accounts/{second}/../{FOREIGN}"),
        format!("/restapi/v2.1/accounts/{second}%2F..%2F{FOREIGN}"),
    ];
    for path in &invalid {
        let (status, text) = raw_with_cookie(&env, &b, "GET", path).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert_eq!(error_code(&text), "invalid_path", "{path}");
    }
    for path in [
        format!("/restapi/v2.1/Accounts/{FOREIGN}"),
        format!("/restapi/v2.1/ACCOUNTS/{FOREIGN}/envelopes"),
    ] {
        let (status, text) = raw_with_cookie(&env, &b, "GET", &path).await;
        assert_eq!(status, 403, "{path}: {text}");
        assert_eq!(error_code(&text), "account_not_permitted", "{path}");
    }
    assert!(env.fake.rest_requests().is_empty(), "nothing was forwarded");
    // A spelling that names one of the user's accounts goes to its host.
    for path in [
        format!("/restapi/v2.1/Accounts/{second}"),
        format!("/restapi/v2.1/ACCOUNTS/{}/envelopes", second.to_uppercase()),
    ] {
        let (status, text) = raw_with_cookie(&env, &b, "GET", &path).await;
        assert!(status != 400 && status != 403, "{path}: {text}");
    }
    let seen = env.fake.rest_requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.host_index == 1), "{seen:?}");
}

/// Issue 13, item 5: only DocuSign's REST methods are forwarded.
#[tokio::test]
async fn methods_outside_the_rest_set_get_405_and_nothing_is_forwarded() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (account, _) = env.accounts()[0].clone();
    let path = format!("/restapi/v2.1/accounts/{account}");
    for method in ["TRACE", "PROPFIND", "OPTIONS", "BREW"] {
        let (status, text) = raw_with_cookie(&env, &b, method, &path).await;
        assert_eq!(status, 405, "{method}: {text}");
        assert_eq!(error_code(&text), "method_not_allowed", "{method}");
        assert!(
            text.to_ascii_lowercase()
                .contains("\r\nallow: get, head, post, put, patch, delete\r\n"),
            "{method}: {text}"
        );
    }
    // With a gateway token too.
    let (token, _) = env.mint_token(&b).await;
    let head = format!(
        "TRACE {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        env.gw.addr
    );
    assert_eq!(raw_request(env.gw.addr, &head).await.0, 405);
    assert!(env.fake.rest_requests().is_empty());
    // The allowed ones still pass.
    let (status, _) = raw_with_cookie(&env, &b, "GET", &path).await;
    assert_eq!(status, 200);
}

/// A REST host on 127.0.0.4 that records each request head and answers
/// every request with `response`, closing the connection.
struct RawUpstream {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawUpstream {
    async fn start(response: &'static str) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.4:0")
            .await
            .expect("bind 127.0.0.4");
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let _ = conn.write_all(response.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        RawUpstream { addr, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

const PLANTING: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
    Set-Cookie: app=1; Path=/\r\n\
    Set-Cookie: dsgw_session=planted; Path=/; HttpOnly\r\n\
    Set-Cookie: DSGW_SESSION_LOGIN=planted\r\n\
    Set-Cookie: __Host-dsgw_session=planted; Secure; Path=/\r\n\
    Set-Cookie: other=2\r\n\
    Content-Length: 2\r\nConnection: close\r\n\r\n{}";

/// An environment whose default account lives on a [`RawUpstream`].
async fn env_with_raw_upstream(pattern_has_port: bool) -> (Env, RawUpstream, Browser) {
    let upstream = RawUpstream::start(PLANTING).await;
    let pattern = if pattern_has_port {
        upstream.addr.to_string()
    } else {
        upstream.addr.ip().to_string()
    };
    let env = Env::start_with(Options {
        allowed_api_hosts: format!("[\"{{rest0}}\", \"{{rest1}}\", \"{pattern}\"]"),
        ..Options::default()
    })
    .await;
    let (account, _) = env.accounts()[0].clone();
    env.fake
        .set_base_uri_override(&account, &format!("http://{}", upstream.addr));
    let b = env.logged_in().await;
    (env, upstream, b)
}

/// Issue 13, item 11: a `Set-Cookie` for the gateway's own names from a
/// REST host never reaches the browser; other cookies pass.
#[tokio::test]
async fn a_rest_host_cannot_set_the_gateways_cookies() {
    let (env, upstream, b) = env_with_raw_upstream(true).await;
    let (account, _) = env.accounts()[0].clone();
    let r = env
        .get_as(&b, &format!("/restapi/v2.1/accounts/{account}"))
        .await;
    assert_eq!(r.status(), 200);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(set, ["app=1; Path=/", "other=2"]);
    assert_eq!(upstream.heads().len(), 1);
}

/// Issue 13, item 11: an absolute-form target reaches the REST host in
/// origin-form, with the REST host's `Host`; one whose authority is not the
/// `Host` header is refused before anything routes on it.
#[tokio::test]
async fn absolute_form_targets_are_sent_in_origin_form() {
    let (env, upstream, b) = env_with_raw_upstream(true).await;
    let (account, _) = env.accounts()[0].clone();
    let path = format!("/restapi/v2.1/accounts/{account}/envelopes?a=1");
    for target in [
        format!("http://evil.example{path}"),
        format!("https://evil.example:8443{path}"),
    ] {
        let (status, text) = raw_with_cookie(&env, &b, "GET", &target).await;
        assert_eq!(status, 400, "{target}: {text}");
    }
    assert!(upstream.heads().is_empty());
    for target in [
        format!("http://{}{path}", env.gw.addr),
        format!("https://{}{path}", env.gw.addr),
    ] {
        let (status, text) = raw_with_cookie(&env, &b, "GET", &target).await;
        assert_eq!(status, 200, "{target}: {text}");
    }
    let heads = upstream.heads();
    assert_eq!(heads.len(), 2);
    for head in heads {
        let first = head.lines().next().unwrap();
        assert_eq!(first, format!("GET {path} HTTP/1.1"));
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("\r\nhost: {}\r\n", upstream.addr)),
            "{head}"
        );
    }
}

/// Issue 13, item 11: `allowed_api_hosts` checks the port; a pattern
/// without one admits 443 only.
#[tokio::test]
async fn an_allowed_host_on_another_port_gets_no_token() {
    let (env, upstream, b) = env_with_raw_upstream(false).await;
    let (account, _) = env.accounts()[0].clone();
    let r = env
        .get_as(&b, &format!("/restapi/v2.1/accounts/{account}"))
        .await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "api_host_not_allowed");
    assert!(upstream.heads().is_empty());
}

/// Issue 13, item 11: the session cookie is found in any `Cookie` header.
#[tokio::test]
async fn the_session_cookie_is_read_from_any_cookie_header() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let head = format!(
        "GET /auth/session HTTP/1.1\r\nHost: {}\r\nCookie: app=1\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        env.gw.addr,
        b.cookie_header()
    );
    let (status, text) = raw_request(env.gw.addr, &head).await;
    assert_eq!(status, 200, "{text}");
    // And the gateway's cookie is still taken out before forwarding.
    let (account, _) = env.accounts()[0].clone();
    let head = format!(
        "GET /restapi/v2.1/accounts/{account} HTTP/1.1\r\nHost: {}\r\nCookie: app=1\r\nCookie: {}\r\nCookie: b=2\r\nConnection: close\r\n\r\n",
        env.gw.addr,
        b.cookie_header()
    );
    assert_eq!(raw_request(env.gw.addr, &head).await.0, 200);
    let rec = env.fake.rest_requests().pop().unwrap();
    assert_eq!(rec.cookie.as_deref(), Some("app=1; b=2"));
}

/// Issue 13, item 11: `/readyz` tells nobody how many sessions exist.
#[tokio::test]
async fn readiness_does_not_count_sessions() {
    let env = Env::start().await;
    let _b = env.logged_in().await;
    let r = env.client.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({ "status": "ready", "store": "memory" })
    );
}

/// Issue 13, item 11: HTML pages cannot be framed and run no foreign script.
#[tokio::test]
async fn html_pages_carry_frame_and_content_policies() {
    let env = Env::start().await;
    let mut b = env.logged_in().await;
    // A plain page (a callback with a forged state) and the session page.
    let r = b.get(&format!("{CALLBACK}?code=x&state=forged")).await;
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let r = b.get("/auth/session").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp: Vec<_> = r
        .headers()
        .get_all("content-security-policy")
        .iter()
        .collect();
    assert_eq!(csp.len(), 1);
    assert!(csp[0].to_str().unwrap().contains("'nonce-"));
}

/// Issue 13, item 7: an account server whose token or userinfo answer is
/// 5 MiB (streamed, no length announced) fails the login with 502.
#[tokio::test]
async fn an_oversized_account_server_answer_fails_the_login_with_502() {
    // "none": the same server with small answers logs in (the control).
    for (huge, want) in [("none", 302), ("token", 502), ("userinfo", 502)] {
        let account_server = oversized_account_server(huge).await;
        let port = free_port();
        let public_url = format!("http://127.0.0.1:{port}");
        // A directory of its own, which the gateway creates 0700.
        let sock_dir = unique_temp_path("sockdir");
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "{public_url}"
threads = 2
upgrade_sock = "{sock}"

[docusign]
auth_server = "http://{account_server}"
client_id = "ik"
callback_path = "{CALLBACK}"
allowed_api_hosts = ["127.0.0.2:443"]
allow_plain_http = true

[session]
cookie_name = "{COOKIE_NAME}"
secure_cookie = false
"#,
            sock = sock_dir.join("upgrade.sock").display(),
        );
        let (child, logs, config_path) = spawn_gateway(
            &toml,
            &[
                ("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"),
                ("DSGW_SESSION_SECRET", SECRET),
                ("RUST_LOG", "info"),
            ],
        );
        let gw =
            GatewayProcess::adopt(child, &public_url, logs, config_path).with_sock_dir(sock_dir);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        wait_healthy(&client, &gw).await;
        let mut b = Browser {
            client,
            cookies: Vec::new(),
            base: public_url.clone(),
        };
        let r = b.get("/auth/login").await;
        assert_eq!(r.status(), 302);
        let state = param(&location(&r), "state").expect("state in the consent URL");
        let r = b.get(&format!("{CALLBACK}?code=c&state={state}")).await;
        assert_eq!(r.status(), want, "{huge}: {}", gw.logs());
        assert_eq!(b.cookie(COOKIE_NAME).is_some(), want == 302, "{huge}");
    }
}

/// An account server on loopback whose `/oauth/token` and `/oauth/userinfo`
/// answers are valid JSON that would log the user in; the one named by
/// `huge` is padded to 5 MiB. Bodies end by closing the connection, so no
/// length is announced.
async fn oversized_account_server(huge: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, and the form body of a token request.
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let announced = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + announced {
                            break;
                        }
                    }
                }
                let first = String::from_utf8_lossy(&request)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let (name, json) = if first.contains("/oauth/token") {
                    (
                        "token",
                        r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1""#,
                    )
                } else {
                    (
                        "userinfo",
                        r#"{"sub":"u-1","name":"N","email":"n@example.com","accounts":[{"account_id":"a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f","account_name":"A","is_default":true,"base_uri":"http://127.0.0.2:443"}]"#,
                    )
                };
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(json.as_bytes()).await;
                if name == huge {
                    let _ = conn.write_all(br#","pad":""#).await;
                    let chunk = vec![b'a'; 64 * 1024];
                    for _ in 0..80 {
                        if conn.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = conn.write_all(b"\"").await;
                }
                let _ = conn.write_all(b"}").await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

/// Issue 13, item 2: a flood of anonymous logins cannot make a legitimate
/// login fail, and costs the server no memory that grows with it (the
/// login travels in the browser's cookie; the gauge map is bounded).
#[tokio::test]
async fn a_login_flood_cannot_evict_a_login_in_progress() {
    let env = Env::start_with(Options {
        session_extra: "max_pending_logins = 10".into(),
        ..Options::default()
    })
    .await;
    let mut victim = env.browser();
    let callback = victim.start_login("/auth/session").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url) = (env.client.clone(), env.url("/auth/login"));
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 302);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = victim.get(&callback).await;
    assert_eq!(
        r.status(),
        302,
        "the victim's login completes after 2,000 others"
    );
    assert_eq!(location(&r), "/auth/session");
    assert!(victim.cookie(COOKIE_NAME).is_some());
    let m = env
        .client
        .get(env.url("/auth/session"))
        .header("Cookie", victim.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
}

/// Issue 13, item 2: the state stays single-use even with a copy of the
/// login cookie (replayed callback).
#[tokio::test]
async fn a_replayed_callback_with_an_old_login_cookie_is_refused() {
    let env = Env::start().await;
    let mut b = env.browser();
    let callback = b.start_login("/auth/session").await;
    let saved = b.cookie_header();
    assert_eq!(b.get(&callback).await.status(), 302);
    let exchanges = env.fake.token_requests().len();
    let r = env
        .client
        .get(&callback)
        .header("Cookie", saved)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        env.fake.token_requests().len(),
        exchanges,
        "no second code exchange"
    );
}

/// Issue 13, item 9: the session cookie does not ride on cross-site
/// requests that change something; curl, SDKs and gateway tokens are
/// unaffected.
#[tokio::test]
async fn cross_site_requests_do_not_ride_on_the_cookie() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let path = format!("/restapi/v2.1/accounts/{}/envelopes", env.accounts()[0].0);
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut r = env
            .client
            .post(env.url(&path))
            .header("Cookie", b.cookie_header())
            .header("Content-Type", "text/plain")
            .body("{\"emailSubject\":\"x\",\"status\":\"created\"}");
        if let Some(o) = origin {
            r = r.header("Origin", o.to_string());
        }
        if let Some(s) = site {
            r = r.header("Sec-Fetch-Site", s.to_string());
        }
        r.send()
    };
    let before = env.fake.rest_requests().len();
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
    ] {
        let r = post(origin, site).await.unwrap();
        assert_eq!(r.status(), 403, "{origin:?} {site:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "cross_site_request");
    }
    assert_eq!(env.fake.rest_requests().len(), before, "nothing forwarded");
    // Same origin, and no header at all (curl): forwarded.
    assert_ne!(post(Some(&env.gw.url), None).await.unwrap().status(), 403);
    assert_ne!(post(None, None).await.unwrap().status(), 403);
    assert_eq!(env.fake.rest_requests().len(), before + 2);
    // A gateway token from anywhere is fine; minting one cross-site is not.
    let (token, _) = env.mint_token(&b).await;
    let r = env
        .client
        .post(env.url(&path))
        .header("Authorization", format!("Bearer {token}"))
        .header("Origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 403);
    let r = env
        .client
        .post(env.url("/auth/token"))
        .header("Cookie", b.cookie_header())
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = env
        .client
        .post(env.url("/auth/logout"))
        .header("Cookie", b.cookie_header())
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(env.get_as(&b, "/auth/session").await.status(), 200);
}
