//! The login cookie, which carries a browser's logins in progress (state,
//! PKCE verifier, return_to): any `Cookie` header, and real sealed login
//! cookies with bytes flipped. A tampered cookie never opens to another
//! value or to other logins, and a session cookie never opens as a login
//! cookie.
#![no_main]

use docusign_gateway::auth::pending::{BrowserLogins, PendingLogin};
use docusign_gateway::util::secret::Secret;
use docusign_gateway_fuzz::{codec, cookie_pair, tamper, MAX_AGE};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;

fn sealed_logins(state: &str) -> String {
    let mut logins = BrowserLogins::default();
    let login = PendingLogin {
        state: Secret::new(state),
        pkce_verifier: Secret::new(format!("verifier-{state}")),
        return_to: "/restapi/v2.1/accounts".into(),
        expires_at: NOW + 600,
        consent_for: None,
    };
    logins.push(login, NOW);
    logins.set_cookie(codec(), MAX_AGE)
}

fuzz_target!(|data: &[u8]| {
    let codec = codec();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = codec.login_from(Some(text));
        let _ = BrowserLogins::from_cookie(codec, Some(text));
    }
    let Some((&mode, edits)) = data.split_first() else {
        return;
    };
    let state = format!("state-{mode}");
    let sealed = sealed_logins(&state);
    let pair = cookie_pair(&sealed);
    if let Some(edited) = tamper(pair, edits) {
        if let Some(mut logins) = BrowserLogins::from_cookie(codec, Some(&edited)) {
            let login = logins
                .take(&state, NOW)
                .expect("only the sealed login opens");
            assert_eq!(login.pkce_verifier.expose(), format!("verifier-{state}"));
            assert!(logins.is_empty(), "no other login appeared");
        }
    }
    // The session cookie's value under the login cookie's name is refused.
    let session = codec.set_session(&state, MAX_AGE);
    let value = cookie_pair(&session)
        .split_once('=')
        .map(|(_, v)| v)
        .unwrap_or("");
    let login_name = pair.split_once('=').map(|(n, _)| n).unwrap_or("");
    let swapped = format!("{login_name}={value}");
    assert_eq!(codec.login_from(Some(&swapped)), None, "purpose confusion");
});
