//! Several gateway instances sharing one Redis (`session.store = "redis"`),
//! as behind a load balancer without sticky sessions: a session and its
//! gateway tokens work on every instance, survive restarts and Redis
//! restarts, are refreshed once for all instances, and a logout on one
//! instance is refused on the others within a second. Each test starts its
//! own redis-server, fake DocuSign and gateways.

mod common;

use std::time::{Duration, Instant};

use common::multi::Instances;
use common::*;
use fake_docusign::TokenEndpointMode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_and_its_token_work_on_every_instance() {
    let env = Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    for i in 0..6 {
        let r = env.get_as(i % 2, &b, &path).await;
        assert_eq!(r.status(), 200, "call {i} on instance {}", i % 2);
    }
    // A gateway token minted on A works on B.
    let r = env
        .client
        .post(env.url(0, "/auth/token"))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = env
        .client
        .get(env.url(1, &path))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "token minted on A, used on B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_instances_keeps_sessions_and_tokens() {
    let mut env = Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    let r = env
        .client
        .post(env.url(1, "/auth/token"))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    env.restart(0).await;
    env.restart(1).await;
    for i in 0..2 {
        assert_eq!(
            env.get_as(i, &b, &path).await.status(),
            200,
            "cookie on {i}"
        );
        let r = env
            .client
            .get(env.url(i, &path))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "token on {i}");
    }
}

/// A zero-downtime upgrade (SIGQUIT, `--upgrade`) of an instance: the new
/// process serves the sessions the old one had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_instance_keeps_every_session() {
    let mut env = Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    assert_eq!(env.get_as(0, &b, &path).await.status(), 200);
    let new = env.gws[0].spawn_upgrade();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.gws[0].signal("QUIT");
    let old = &mut env.gws[0];
    let exited = tokio::task::block_in_place(|| old.wait_exit(Duration::from_secs(20)));
    assert!(exited.is_some(), "the old process exited");
    assert_eq!(
        env.get_as(0, &b, &path).await.status(),
        200,
        "{}",
        new.logs()
    );
    assert!(new.logs().contains("redis Standalone"), "{}", new.logs());
    assert_eq!(env.get_as(1, &b, &path).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_over_two_instances_cause_one_refresh() {
    let env = Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    // Warm both caches with the current pair.
    for i in 0..2 {
        assert_eq!(env.get_as(i, &b, &path).await.status(), 200);
    }
    let before = env.fake.stats().token_refresh;
    env.fake
        .set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(200)));
    env.fake.revoke_access_tokens();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let request = env
            .client
            .get(env.url(i % 2, &path))
            .header("Cookie", b.cookie_header())
            .header("Accept", "application/json");
        tasks.push(tokio::spawn(async move {
            let r = request.send().await.expect("an answer");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(
            status,
            200,
            "{body}\nA:\n{}\nB:\n{}",
            env.gws[0].logs(),
            env.gws[1].logs()
        );
    }
    assert_eq!(
        env.fake.stats().token_refresh - before,
        1,
        "one refresh grant for both instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_is_refused_on_the_other_within_a_second() {
    let env = Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    // B has the session cached.
    for _ in 0..2 {
        assert_eq!(env.get_as(1, &b, &path).await.status(), 200);
    }
    let r = env
        .client
        .post(env.url(0, "/auth/logout"))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let logged_out = Instant::now();
    loop {
        let status = env.get_as(1, &b, &path).await.status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            logged_out.elapsed() < Duration::from_secs(1),
            "B still served the session a second after A's logout"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The answer while Redis is down, and the session after it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_503_and_its_return_needs_no_new_login() {
    let mut env = Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    assert_eq!(env.get_as(1, &b, &path).await.status(), 200);
    env.redis.stop();
    for i in 0..2 {
        let r = eventually_status(&env, i, &b, &path, 503).await;
        assert!(r.headers().contains_key("retry-after"), "Retry-After");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "session_store_unavailable");
        let ready = env.client.get(env.url(i, "/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        assert!(ready.text().await.unwrap().contains("redis"));
    }
    env.redis.start_again();
    for i in 0..2 {
        eventually_status(&env, i, &b, &path, 200).await;
        let ready = env.client.get(env.url(i, "/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
    }
}

/// An instance started while Redis is down runs (healthy, not ready) and
/// becomes ready by itself when Redis comes up; logins then work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_starts_while_redis_is_down_and_recovers_by_itself() {
    let mut env = Instances::start(1, "").await;
    env.redis.stop();
    env.restart(0).await;
    let ready = env.client.get(env.url(0, "/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("redis"));
    env.redis.start_again();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = env.client.get(env.url(0, "/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = env.logged_in().await;
    assert_eq!(env.get_as(0, &b, &env.account_path()).await.status(), 200);
}

/// Polls (bounded) until instance `i` answers `status` for `path`.
async fn eventually_status(
    env: &Instances,
    i: usize,
    b: &Browser,
    path: &str,
    status: u16,
) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = env.get_as(i, b, path).await;
        if r.status() == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "instance {i} never answered {status} (last {})",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The instance holding the refresh lease dies in the middle of the token
/// call: the lease expires and another instance proceeds; whatever DocuSign
/// then says, the answer is clean (the new pair, or login_required if the
/// dead instance's call had rotated the refresh token), never a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_lease_holder_mid_refresh_costs_at_most_that_refresh() {
    // Token calls time out after 2 s, so a lease lives 7 s unrenewed.
    let mut env = Instances::start(2, "request_timeout_secs = 2").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    let before = env.fake.stats().token_refresh;
    env.fake
        .set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(1500)));
    env.fake.revoke_access_tokens();
    let doomed = env
        .client
        .get(env.url(0, &path))
        .header("Cookie", b.cookie_header())
        .send();
    let doomed = tokio::spawn(doomed);
    // A holds the lease: its token call is under way (1.5 s).
    let redis = &env.redis;
    common::eventually("A's refresh lease", || {
        redis.keys().iter().any(|k| k.ends_with(":lk"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.fake.stats().token_refresh, before, "still in the call");
    env.gws[0].signal("KILL");
    let _ = doomed.await;
    env.fake.set_token_endpoint(TokenEndpointMode::Normal);
    let started = Instant::now();
    let (status, body) = loop {
        let r = env.get_as(1, &b, &path).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        if status != 503 || started.elapsed() > Duration::from_secs(12) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        status == 200 || (status == 401 && body.contains("login_required")),
        "{status} {body}"
    );
    let grants = env.fake.stats().token_refresh - before;
    assert!(grants <= 2, "{grants} refresh grants");
    env.restart(0).await;
    let again = env.get_as(0, &b, &path).await.status().as_u16();
    assert_eq!(again, status, "the restarted instance agrees");
}

/// A login started on A completes when DocuSign's callback lands on B; the
/// same callback replayed on A is refused (its state is used up everywhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_instance_completes_on_another() {
    let env = Instances::start(2, "").await;
    let mut b = env.browser(0);
    let callback = b.start_login("/auth/session").await;
    let replay = b.clone();
    let on_b = callback.replacen(&env.gws[0].url, &env.gws[1].url, 1);
    assert_ne!(on_b, callback);
    b.base = env.gws[1].url.clone();
    let r = b.get(&on_b).await;
    assert_eq!(r.status(), 302, "the callback on B completes the login");
    assert_eq!(env.get_as(0, &b, &env.account_path()).await.status(), 200);
    let before = env.fake.stats().token_authorization_code;
    let mut replay = replay;
    let r = replay.get(&callback).await;
    assert_eq!(r.status(), 400, "the state was used on B");
    assert_eq!(
        env.fake.stats().token_authorization_code,
        before,
        "no exchange"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_with_a_narrower_host_list_sends_no_token_where_it_forbids() {
    let mut env = Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    assert_eq!(env.get_as(1, &b, &path).await.status(), 200);
    // Instance 1 comes back allowing DocuSign's own hosts only; the session
    // in Redis still says its REST host passed the login's policy.
    env.gws[1].set_env("DSGW_DOCUSIGN_ALLOWED_API_HOSTS", "*.docusign.net");
    env.restart(1).await;
    let forwarded = env.fake.rest_requests().len();
    let r = env.get_as(1, &b, &path).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "api_host_not_allowed", "{v}");
    assert_eq!(
        env.fake.rest_requests().len(),
        forwarded,
        "nothing reached the REST host"
    );
    assert_eq!(
        env.get_as(0, &b, &path).await.status(),
        200,
        "the instance that allows the host still forwards"
    );
}
