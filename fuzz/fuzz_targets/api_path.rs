//! The path router: `route` and the strict `/restapi` grammar, on raw text
//! and on what `http::Uri` makes of it. A path that parses has no empty or
//! dot segment, and names its account whenever `accounts` (any case) is its
//! second segment.
#![no_main]

use docusign_gateway::proxy::router::{parse_api_path, route, upstream_target};
use libfuzzer_sys::fuzz_target;

fn check(path: &str) {
    let _ = route(path, "/auth/docusign/callback");
    let Ok(parsed) = parse_api_path(path) else {
        return;
    };
    let rest = path
        .strip_prefix("/restapi/")
        .expect("parsed under /restapi/");
    let segments: Vec<&str> = rest.split('/').collect();
    assert!(
        segments
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != ".."),
        "{path}"
    );
    if segments.len() > 2 && segments[1].eq_ignore_ascii_case("accounts") {
        assert_eq!(parsed.account, Some(segments[2]), "{path}");
    }
    if let Some(account) = parsed.account {
        assert!(!account.contains(['%', ';', '/']), "{path}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    if let Ok(uri) = text.parse::<http::Uri>() {
        check(uri.path());
        if let Some(target) = upstream_target("/prefix", &uri) {
            assert!(target.path().starts_with("/prefix"), "{target}");
            assert!(target.authority().is_none(), "origin-form: {target}");
        }
    }
});
