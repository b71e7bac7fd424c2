//! The login cookie (binds a login to its browser): any `Cookie` header,
//! and real sealed login cookies with bytes flipped. It never opens to
//! another binding, and a session cookie never opens as a login cookie.
#![no_main]

use docusign_gateway_fuzz::{codec, cookie_pair, tamper, MAX_AGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = codec();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = codec.login_from(Some(text));
    }
    let Some((&mode, edits)) = data.split_first() else {
        return;
    };
    let binding = format!("binding-{mode}");
    let sealed = codec.set_login(&binding, MAX_AGE);
    let pair = cookie_pair(&sealed);
    if let Some(edited) = tamper(pair, edits) {
        if let Some(opened) = codec.login_from(Some(&edited)) {
            assert_eq!(
                opened, binding,
                "a tampered login cookie opened to another binding"
            );
        }
    }
    // The session cookie's value under the login cookie's name is refused.
    let session = codec.set_session(&binding, MAX_AGE);
    let value = cookie_pair(&session)
        .split_once('=')
        .map(|(_, v)| v)
        .unwrap_or("");
    let login_name = pair.split_once('=').map(|(n, _)| n).unwrap_or("");
    let swapped = format!("{login_name}={value}");
    assert_eq!(codec.login_from(Some(&swapped)), None, "purpose confusion");
});
