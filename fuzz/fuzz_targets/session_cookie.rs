//! The session cookie: any `Cookie` header text, and real sealed cookies
//! with bytes flipped. A tampered cookie never opens to another session id.
#![no_main]

use docusign_gateway_fuzz::{codec, cookie_pair, tamper, MAX_AGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = codec();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = codec.session_from(Some(text));
        let _ = codec.strip_own(text);
    }
    let Some((&mode, edits)) = data.split_first() else {
        return;
    };
    let id = format!("session-{mode}");
    let sealed = codec.set_session(&id, MAX_AGE);
    let pair = cookie_pair(&sealed);
    if let Some(edited) = tamper(pair, edits) {
        let header = format!("a=b; {edited}; c=d");
        match codec.session_from(Some(&header)) {
            None => {}
            Some(opened) => assert_eq!(*opened, *id, "a tampered cookie opened to another id"),
        }
    }
    assert_eq!(codec.session_from(Some(pair)).as_deref(), Some(id.as_str()));
});
