//! `return_to`: whatever the text, the gateway redirects to a path on its
//! own origin (resolved as a browser would, by the WHATWG URL parser).
#![no_main]

use docusign_gateway::auth::return_to::sanitize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let target = sanitize(Some(text));
    assert!(target.starts_with('/'), "{target:?}");
    let base = url::Url::parse("https://gw.example/auth/login").expect("base");
    let resolved = base.join(&target).expect("a local path resolves");
    assert_eq!(
        resolved.origin(),
        base.origin(),
        "open redirect: {text:?} -> {resolved}"
    );
});
