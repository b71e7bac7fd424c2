//! Micro-benchmarks of what every forwarded request pays for: reading the
//! session cookie, verifying a gateway token, routing, and the return_to
//! check. `cargo bench --bench hot_path` prints nanoseconds per operation;
//! under `cargo test` each runs a few iterations as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use docusign_gateway::auth::return_to;
use docusign_gateway::config::Config;
use docusign_gateway::crypto::api_token::ApiTokens;
use docusign_gateway::crypto::cookies::CookieCodec;
use docusign_gateway::proxy::router;

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
    let path = "/restapi/v2.1/accounts/a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f/envelopes";

    measure("session cookie: decrypt", bench, || {
        black_box(cookies.session_from(Some(black_box(&header))));
    });
    measure("session cookie: strip before forwarding", bench, || {
        black_box(cookies.strip_own(black_box(&header)));
    });
    measure("gateway token: verify", bench, || {
        black_box(tokens.verify(black_box(&jwt)));
    });
    measure("route + path grammar", bench, || {
        black_box(router::route(black_box(path), "/auth/docusign/callback"));
        black_box(router::parse_api_path(black_box(path)).ok());
    });
    measure("return_to: sanitize", bench, || {
        black_box(return_to::sanitize(Some(black_box(
            "/restapi/v2.1/accounts?x=%2F",
        ))));
    });
}
