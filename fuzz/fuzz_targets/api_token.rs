//! Gateway tokens: any bearer text, and real tokens with bytes flipped.
//! A tampered token never verifies to other claims.
#![no_main]

use docusign_gateway_fuzz::{tamper, tokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tokens = tokens();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tokens.verify(text);
    }
    let Some((&mode, edits)) = data.split_first() else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let sid = format!("sid-{mode}");
    let (token, _) = tokens.mint("user", &sid, now, now + 7200);
    if let Some(edited) = tamper(&token, edits) {
        if let Some(claims) = tokens.verify(&edited) {
            assert_eq!(
                (claims.sub.as_str(), claims.sid.as_str()),
                ("user", sid.as_str())
            );
        }
    }
});
