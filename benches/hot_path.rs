//! Micro-benchmarks of what every forwarded request pays for: reading the
//! session cookie, verifying a gateway token (each the first time, and
//! again: both are remembered once they check out), routing, and the
//! return_to check. `cargo bench --bench hot_path` prints nanoseconds per operation;
//! under `cargo test` each runs a few iterations as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use docusign_gateway::auth::return_to;
use docusign_gateway::config::LogFormat;
use docusign_gateway::config::{Api, ApiSet, Config};
use docusign_gateway::crypto::api_token::{ApiTokens, VERIFIED_TOKENS_CACHED};
use docusign_gateway::crypto::cookies::{CookieCodec, OPENED_SESSION_COOKIES};
use docusign_gateway::ops::access_log::{self, AccessLine};
use docusign_gateway::ops::log_queue::{LogQueue, LOG_BUFFER_BYTES};
use docusign_gateway::ops::logging;
use docusign_gateway::proxy::router;
use docusign_gateway::util::ids::log_id;

const CONFIG: &str = r#"
[docusign]
client_id = "ik"
client_secret = "cs"
[session]
secret = "bench-secret-0123456789abcdef0123456789abcdef"
"#;

fn measure(name: &str, bench: bool, mut f: impl FnMut()) {
    let iterations: u32 = if bench { 200_000 } else { 10 };
    for _ in 0..iterations.min(1_000) {
        f();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per_op = started.elapsed() / iterations;
    if bench {
        println!("{name:<40} {:>8} ns/op", per_op.as_nanos());
    } else {
        assert!(per_op < Duration::from_secs(1), "{name} ran");
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let cfg = Config::from_toml_str(CONFIG, Vec::new()).expect("bench config");
    let cookies = CookieCodec::new(&cfg.session);
    let set = cookies.set_session(
        "0123456789abcdef0123456789abcdef0123456789a",
        cfg.session.ttl,
    );
    let header = format!("app=1; {}; other=2", set.split(';').next().unwrap_or(""));
    let tokens = ApiTokens::new(cfg.session.secret.expose().as_bytes(), "http://gw", 3600);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (jwt, _) = tokens.mint("user", "sid", now, now + 3600);
    // Twice as many distinct values as are remembered, used in turn: every
    // use is a first sight (the oldest is forgotten first).
    let distinct = if bench {
        2 * VERIFIED_TOKENS_CACHED.max(OPENED_SESSION_COOKIES)
    } else {
        4
    };
    let jwts: Vec<String> = (0..distinct)
        .map(|i| tokens.mint("user", &format!("sid-{i}"), now, now + 3600).0)
        .collect();
    let headers: Vec<String> = (0..distinct)
        .map(|i| {
            let set = cookies.set_session(&format!("session-{i:039}"), cfg.session.ttl);
            format!("app=1; {}; other=2", set.split(';').next().unwrap_or(""))
        })
        .collect();
    let path = "/restapi/v2.1/accounts/a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f/envelopes";

    let mut n = 0;
    measure("session cookie: first sight (decrypt)", bench, || {
        n += 1;
        black_box(cookies.session_from(Some(black_box(&headers[n % distinct]))));
    });
    measure("session cookie: seen before", bench, || {
        black_box(cookies.session_from(Some(black_box(&header))));
    });
    measure("session cookie: strip before forwarding", bench, || {
        black_box(cookies.strip_own(black_box(&header)));
    });
    measure("gateway token: first sight (verify)", bench, || {
        n += 1;
        black_box(tokens.verify(black_box(&jwts[n % distinct])));
    });
    measure("gateway token: seen before", bench, || {
        black_box(tokens.verify(black_box(&jwt)));
    });
    measure("route + path grammar", bench, || {
        black_box(router::route(
            black_box(path),
            "/auth/docusign/callback",
            ApiSet::default(),
        ));
        black_box(router::parse_api_path(Api::Esignature, black_box(path)).ok());
    });
    measure("return_to: sanitize", bench, || {
        black_box(return_to::sanitize(Some(black_box(
            "/restapi/v2.1/accounts?x=%2F",
        ))));
    });
    access_lines(bench);
}

/// The access line into the log queue (written out to nowhere), as a
/// generic `tracing` event and through `access_log::write`, with the
/// gateway's own subscriber (text lines, level `info`).
fn access_lines(bench: bool) {
    let (_queue, writer) = LogQueue::start(std::io::sink(), LOG_BUFFER_BYTES);
    logging::install(writer, LogFormat::Text, "info", false);
    let session = log_id("0123456789abcdef0123456789abcdef0123456789a");
    let path = "/restapi/v2.1/accounts/a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f";
    measure("access line: generic tracing event", bench, || {
        tracing::info!(
            target: access_log::TARGET,
            method = %black_box("GET"),
            path = %black_box(path),
            status = 200u16,
            class = "proxied",
            upstream = "demo.docusign.net",
            session = %session,
            duration_ms = 3u64,
            error = "",
            "request"
        );
    });
    measure("access line: access_log::write", bench, || {
        access_log::write(&AccessLine {
            method: black_box("GET"),
            path: black_box(path),
            status: 200,
            class: "proxied",
            upstream: "demo.docusign.net",
            session,
            duration_ms: 3,
            error: "",
        });
    });
}
