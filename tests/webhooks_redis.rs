//! DocuSign Connect webhooks with the Redis store, standalone and cluster:
//! several instances deliver each message once; a message survives the
//! `kill -9` of the instance holding it; Redis stopped and started again;
//! dead messages listed and replayed by `docusign-gateway webhooks`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::free_port;
use common::redis::{RedisCluster, RedisServer};
use common::webhook::*;
use docusign_gateway::session::redis::{RedisBackend, Sealer, Target};

const WAIT: Duration = Duration::from_secs(20);

fn body(n: usize) -> Vec<u8> {
    format!("{{\"event\":\"envelope-sent\",\"data\":{{\"envelopeId\":\"env-{n}\",\"note\":\"ä\\r\\n\"}}}}\r\n").into_bytes()
}

/// Every event id the app got, with how many 2xx deliveries of it.
fn counts(got: &[Delivered]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in got {
        *out.entry(d.event_id()).or_insert(0) += 1;
    }
    out
}

async fn two_instances_deliver_each_message_once(store: Store) {
    let app = App::start(0, 0).await;
    let url = App::url(app.addr.port());
    let a = WebhookGateway::start(&store, &url, "").await;
    let b = WebhookGateway::start(&store, &url, "").await;
    let n = 20;
    for i in 0..n {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = gw.post_signed(&body(i)).await;
        assert_eq!(r.status(), 200, "logs:\n{}", gw.gw.logs());
    }
    // Connect's retry of one of them, to the other instance.
    let r = b.post_signed(&body(0)).await;
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "duplicate");
    app.wait_for(n, WAIT).await;
    // Time for a second delivery of any of them to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = app.received();
    assert_eq!(
        all.len(),
        n,
        "each message delivered once: {:?}",
        counts(&all)
    );
    assert_eq!(counts(&all).len(), n);
    let mut bodies: Vec<Vec<u8>> = all.iter().map(|d| d.body.to_vec()).collect();
    bodies.sort();
    let mut want: Vec<Vec<u8>> = (0..n).map(body).collect();
    want.sort();
    assert_eq!(bodies, want);
}

#[tokio::test]
async fn two_instances_on_standalone_redis_deliver_each_message_once() {
    let redis = RedisServer::start();
    two_instances_deliver_each_message_once(Store::Redis(redis.url())).await;
    drop(redis);
}

#[tokio::test]
async fn two_instances_on_a_redis_cluster_deliver_each_message_once() {
    let cluster = RedisCluster::start(3);
    two_instances_deliver_each_message_once(Store::Cluster(cluster.urls())).await;
}

#[tokio::test]
async fn a_message_held_by_a_killed_instance_is_delivered_by_another() {
    let redis = RedisServer::start();
    let store = Store::Redis(redis.url());
    let port = free_port();
    let mut a = WebhookGateway::start(&store, &App::url(port), "").await;
    assert_eq!(a.post_signed(&body(1)).await.status(), 200);
    // The app is down: instance A holds the message, in back-off.
    let logs = a.gw.logs_with("webhook delivery failed").await;
    assert!(logs.contains("webhook delivery failed"), "{logs}");
    a.gw.signal("KILL");
    assert!(a.gw.wait_exit(Duration::from_secs(10)).is_some());
    let app = App::start(port, 0).await;
    let started = Instant::now();
    let b = WebhookGateway::start(&store, &App::url(port), "").await;
    let got = app.wait_for(1, Duration::from_secs(45)).await;
    assert_eq!(
        got.len(),
        1,
        "delivered by the successor; logs:\n{}",
        b.gw.logs()
    );
    assert_eq!(got[0].body.as_ref(), body(1).as_slice());
    // The successor goes on counting A's attempt.
    assert_eq!(got[0].header("x-dsgw-delivery-attempt"), "2");
    assert!(started.elapsed() < Duration::from_secs(40));
}

#[tokio::test]
async fn redis_stopped_is_503_with_retry_after_and_then_recovers() {
    let mut redis = RedisServer::start();
    let app = App::start(0, 0).await;
    let gw =
        WebhookGateway::start(&Store::Redis(redis.url()), &App::url(app.addr.port()), "").await;
    assert_eq!(gw.post_signed(&body(1)).await.status(), 200);
    app.wait_for(1, WAIT).await;
    redis.stop();
    let r = gw.post_signed(&body(2)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "store_unavailable");
    redis.start_again();
    let deadline = Instant::now() + WAIT;
    loop {
        let status = gw.post_signed(&body(2)).await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "Redis back, still {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = app.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2, "logs:\n{}", gw.gw.logs());
    let m = gw.metrics().await;
    assert!(
        metric(
            &m,
            "dsgw_webhook_received_total{outcome=\"store_unavailable\",webhook=\"connect\"}"
        ) >= 1.0,
        "{m}"
    );
}

#[tokio::test]
async fn dead_messages_are_listed_and_replayed_by_the_command() {
    let redis = RedisServer::start();
    let store = Store::Redis(redis.url());
    let app = App::start(0, 1).await;
    let gw = WebhookGateway::start(&store, &App::url(app.addr.port()), "retry_for_secs = 1").await;
    let r = gw.post_signed(&body(7)).await;
    let v: serde_json::Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    // 500 at 0 s; the next attempt (1 s later) would be at the limit: dead.
    let logs = gw.gw.logs_with("webhook message dead").await;
    assert!(logs.contains("webhook message dead"), "{logs}");
    let (ok, out, err) = gw.webhooks_command(&["dead", "connect"]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["id"], id.as_str());
    assert_eq!(lines[0]["last_error"], "status 500");
    assert_eq!(lines[0]["bytes"], body(7).len());
    assert!(!out.contains("envelope"), "never the body: {out}");
    let (ok, _, err) = gw.webhooks_command(&["replay", "connect", "no-such-id"]);
    assert!(!ok, "{err}");
    let (ok, out, err) = gw.webhooks_command(&["replay", "connect", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("1 message"), "{out}");
    // Replayed: the app (up now) takes it.
    let got = app.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2, "logs:\n{}", gw.gw.logs());
    assert!(
        got.iter().all(|d| d.event_id() == id),
        "the event id is stable across a replay"
    );
    assert_eq!(got[1].body.as_ref(), body(7).as_slice());
    let (_, out, _) = gw.webhooks_command(&["dead", "connect"]);
    assert!(out.trim().is_empty(), "replayed: no longer dead: {out}");
}

#[tokio::test]
async fn nothing_of_a_message_is_readable_in_redis() {
    let redis = RedisServer::start();
    let store = Store::Redis(redis.url());
    // Nothing listens there: every message stays pending, then dies.
    let gw = WebhookGateway::start(&store, &App::url(free_port()), "retry_for_secs = 2").await;
    let secret_body = |n: usize| {
        format!(
            "{{\"event\":\"envelope-completed\",\"data\":{{\"envelopeId\":\"plain-marker-{n}\"}}}}"
        )
        .into_bytes()
    };
    for n in 0..3 {
        assert_eq!(gw.post_signed(&secret_body(n)).await.status(), 200);
    }
    // Pending in the stream, with attempts counted.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pending = redis.dump_values();
    assert!(
        pending.len() > 3 * secret_body(0).len(),
        "the dump holds the sealed bodies"
    );
    // Dead: kept in the dead hashes.
    let logs = gw.gw.logs_with("webhook message dead").await;
    assert!(logs.contains("webhook message dead"), "{logs}");
    let deadline = Instant::now() + WAIT;
    while gw.webhooks_command(&["dead", "connect"]).1.lines().count() < 3 {
        assert!(Instant::now() < deadline, "three dead messages");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead = redis.dump_values();
    for (what, dump) in [("pending", &pending), ("dead", &dead)] {
        let text = String::from_utf8_lossy(dump);
        for marker in ["plain-marker", "envelope-completed", "envelopeId"] {
            assert!(
                !text.contains(marker),
                "{what}: {marker} readable in Redis:\n{text}"
            );
        }
    }
    assert!(
        redis.keys().iter().any(|k| k.ends_with(":q")),
        "the stream exists: {:?}",
        redis.keys()
    );
}

/// Three instances' queues of one webhook: the one that delivered its
/// message and went silent leaves the group; the one still holding a
/// message stays, and so does the instance that prunes.
async fn departed_consumers_leave_the_group(target: Target) -> RedisBackend {
    use docusign_gateway::webhook::{Queue, RedisQueue};
    let backend = RedisBackend::connect(
        target,
        "dsgw",
        Duration::from_millis(1000),
        Duration::from_millis(500),
        Sealer::new(b"webhook-prune-secret-0123456789abcdef0123", None),
    )
    .expect("backend");
    let queue = || RedisQueue::new(backend.clone(), "connect", 100);
    let (departed, holding, pruning) = (queue(), queue(), queue());
    for n in 0..2 {
        departed.push(body(n).into(), None, 1).await.expect("push");
    }
    let got = departed.claim(1).await.expect("claim");
    departed.delivered(&got[0]).await.expect("delivered");
    assert_eq!(holding.claim(1).await.expect("claim").len(), 1);
    assert_eq!(pruning.claim(1).await.expect("claim").len(), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Idle 50 ms is "departed" for this test; the gateway waits PRUNE_IDLE.
    assert_eq!(
        pruning
            .prune_consumers(Duration::from_millis(20))
            .await
            .expect("prune"),
        1,
        "the departed consumer, holding nothing, only"
    );
    assert_eq!(
        pruning
            .prune_consumers(Duration::from_millis(20))
            .await
            .expect("prune"),
        0
    );
    assert_eq!(
        pruning
            .prune_consumers(Duration::from_secs(3600))
            .await
            .expect("prune"),
        0
    );
    backend
}

#[tokio::test]
async fn departed_consumers_holding_nothing_leave_the_group() {
    let redis = RedisServer::start();
    departed_consumers_leave_the_group(Target::Standalone(redis.url())).await;
    let consumers = redis.cli_text(&["XINFO", "CONSUMERS", "dsgw:{wh:connect}:q", "dsgw"]);
    // Left: the holder with its entry (the pruner read nothing, so Redis
    // never listed it).
    assert_eq!(
        consumers.matches("pending").count(),
        1,
        "one consumer left:\n{consumers}"
    );
    assert!(
        consumers.contains("pending\n1\n"),
        "the holder stays:\n{consumers}"
    );
    let cluster = RedisCluster::start(3);
    departed_consumers_leave_the_group(Target::Cluster(cluster.urls())).await;
}
