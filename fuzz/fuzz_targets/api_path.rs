//! The path router: `route` with every API enabled and the strict path
//! grammar of each API, on raw text and on what `http::Uri` makes of it. A
//! path that parses has no empty or dot segment after its API's prefix, and
//! names its account (or organization) whenever `accounts` (or
//! `organizations`, any case) is the segment after the version.
#![no_main]

use docusign_gateway::config::{Api, ApiSet};
use docusign_gateway::proxy::router::{parse_api_path, route, upstream_target};
use libfuzzer_sys::fuzz_target;

fn check(path: &str) {
    let _ = route(path, "/auth/docusign/callback", ApiSet::of(&Api::ALL));
    let Some(api) = Api::of_path(path) else {
        return;
    };
    let Ok(parsed) = parse_api_path(api, path) else {
        return;
    };
    let rest = api.strip_prefix(path).expect("parsed under its prefix");
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
    if segments.len() > 2 && segments[1].eq_ignore_ascii_case("organizations") {
        assert_eq!(parsed.organization, Some(segments[2]), "{path}");
    }
    for id in [parsed.account, parsed.organization].into_iter().flatten() {
        assert!(!id.contains(['%', ';', '/']), "{path}");
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
