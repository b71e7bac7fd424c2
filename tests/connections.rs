//! Client connections against the real gateway over raw TCP (issue 13 item
//! 1): idle keep-alive connections are closed, a slow request head gets 408,
//! the connection cap closes idle connections for a new client; a client
//! read buffer smaller than a request head serves every request; and SIGTERM
//! exits once nothing is in flight (item 11). Waits are bounded; no test
//! asserts speed, only that a limit acted and no earlier than it should.

mod common;

use std::time::{Duration, Instant};

use common::{read_response, Env, Options};
use fake_docusign::TokenEndpointMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n";

async fn env(server_extra: &str) -> Env {
    Env::start_with(Options {
        server_extra: server_extra.into(),
        ..Options::default()
    })
    .await
}

/// Waits (at most `bound`) for the gateway to close `s`; what it sent first.
async fn closed_within(s: &mut TcpStream, bound: Duration) -> String {
    let mut buf = Vec::new();
    match tokio::time::timeout(bound, s.read_to_end(&mut buf)).await {
        Ok(_) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => panic!("connection still open after {bound:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let env = env("idle_timeout_secs = 2").await;
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    s.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Still usable well inside the limit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    let rest = closed_within(&mut s, Duration::from_secs(20)).await;
    assert!(rest.is_empty(), "closed quietly: {rest:?}");
    assert!(
        idle_since.elapsed() >= Duration::from_millis(1500),
        "closed by the idle limit, not at once ({:?})",
        idle_since.elapsed()
    );
    // A connection that never sends anything is idle too.
    let mut silent = TcpStream::connect(env.gw.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(20))
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_in_use_is_timed_from_its_last_request_not_its_first() {
    let env = env("idle_timeout_secs = 2").await;
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    // Requests 1.2 s apart for 4.8 s: past the idle limit counted from the
    // first one, inside it counted from each.
    for _ in 0..5 {
        s.write_all(HEALTHZ).await.unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    s.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(20))
        .await
        .is_empty());
    assert!(
        idle_since.elapsed() >= Duration::from_millis(1500),
        "closed {:?} after the last request",
        idle_since.elapsed()
    );
}

/// `server.client_read_buffer_bytes` smaller than a request head: heads
/// larger than the buffer are answered, one after the other on one
/// kept-alive connection. (pingora leaves HTTP/1.1 pipelining off: a second
/// request sent before the first answer closes the connection after it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_buffer_smaller_than_a_head_serves_every_request() {
    let env = env("client_read_buffer_bytes = 16").await;
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    let padded = format!(
        "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(3000)
    );
    for n in 1..=3 {
        s.write_all(padded.as_bytes()).await.unwrap();
        let status = read_response(&mut s).await;
        assert!(status.starts_with("HTTP/1.1 200"), "request {n}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_gets_408_and_is_closed() {
    let env = env("header_timeout_secs = 2\nidle_timeout_secs = 30").await;
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = s.into_split();
    // Slowloris: one header line a second, never the blank line.
    let drip = tokio::spawn(async move {
        for i in 0..30 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer
                .write_all(format!("X-Drip-{i}: x\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut buf))
        .await
        .expect("the gateway cuts the head off")
        .ok();
    drip.abort();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the limit ({:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_idle_connections_make_room_for_a_new_client() {
    let env = env("max_connections = 3\nidle_timeout_secs = 300").await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
        s.write_all(HEALTHZ).await.unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
        idle.push(s);
    }
    let mut new = TcpStream::connect(env.gw.addr).await.unwrap();
    new.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut new).await.starts_with("HTTP/1.1 200"));
    // The oldest idle one was closed for it.
    let rest = closed_within(&mut idle[0], Duration::from_secs(10)).await;
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_with_none_idle_a_new_client_gets_503() {
    let env = env("max_connections = 1\nheader_timeout_secs = 60").await;
    // One connection in the middle of a head: not idle.
    let mut busy = TcpStream::connect(env.gw.addr).await.unwrap();
    busy.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut new = TcpStream::connect(env.gw.addr).await.unwrap();
    new.write_all(HEALTHZ).await.unwrap();
    let text = closed_within(&mut new, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    // The busy one is unharmed and finishes its request.
    busy.write_all(b"Host: gw\r\n\r\n").await.unwrap();
    assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_nothing_in_flight_exits_without_waiting_the_grace_period() {
    let mut env = env("grace_period_secs = 120").await;
    // An idle keep-alive connection does not hold the exit up.
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    s.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    env.gw.signal("TERM");
    let status = tokio::task::block_in_place(|| env.gw.wait_exit(Duration::from_secs(30)))
        .expect("exits long before the 120 s grace period");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_request_finish_then_exits_before_the_grace_period() {
    let mut env = env("grace_period_secs = 120").await;
    let b = env.logged_in().await;
    env.fake
        .set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(2000)));
    env.fake.revoke_access_tokens();
    let client = env.client.clone();
    let url = env.url(&format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0));
    let cookie = b.cookie_header();
    let in_flight = tokio::spawn(async move {
        client
            .get(url)
            .header("Cookie", cookie)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.gw.signal("TERM");
    assert_eq!(in_flight.await.unwrap().unwrap(), 200, "finished");
    let status = tokio::task::block_in_place(|| env.gw.wait_exit(Duration::from_secs(30)))
        .expect("exits once the request is done, long before 120 s");
    assert_eq!(status.code(), Some(0));
}
