use super::*;
use crate::config::Config;
use crate::util::time::ManualClock;

fn codec() -> CookieCodec {
    let cfg = Config::from_toml_str(
        r#"
[server]
public_url = "http://gw.example"
[docusign]
client_id = "ik"
client_secret = "cs"
[session]
secure_cookie = false
secret = "0123456789abcdef0123456789abcdef0123456789"
"#,
        Vec::new(),
    )
    .unwrap();
    CookieCodec::new(&cfg.session)
}

fn login(state: &str, expires_at: u64) -> PendingLogin {
    PendingLogin {
        state: Secret::new(state),
        pkce_verifier: Secret::new(format!("verifier.of.{state}")),
        return_to: "/auth/session".into(),
        expires_at,
    }
}

/// The `Cookie` header a browser sends back for a `Set-Cookie` value.
fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn a_login_travels_in_the_cookie_and_is_taken_once() {
    let c = codec();
    let mut logins = BrowserLogins::default();
    logins.push(login("st.1", 2000), 1000);
    let header = cookie_of(&logins.set_cookie(&c, Duration::from_secs(600)));
    // '.' never occurs in the sealed (base64) value: these find plaintext only.
    assert!(
        !header.contains("st.1") && !header.contains("verifier.of"),
        "sealed"
    );
    let mut back = BrowserLogins::from_cookie(&c, Some(&header)).unwrap();
    assert_eq!(
        back.take("st.1", 1500).unwrap().pkce_verifier.expose(),
        "verifier.of.st.1"
    );
    assert_eq!(back.take("st.1", 1500).unwrap_err(), StateError::Unknown);
    assert!(back.is_empty());
    assert!(back
        .set_cookie(&c, Duration::from_secs(600))
        .contains("Max-Age=0"));
}

#[test]
fn forged_unknown_and_expired_states_are_refused() {
    let c = codec();
    let mut logins = BrowserLogins::default();
    logins.push(login("s1", 2000), 1000);
    assert_eq!(
        logins.take("forged", 1500).unwrap_err(),
        StateError::Unknown
    );
    assert_eq!(logins.take("s1", 2000).unwrap_err(), StateError::Expired);
    // A tampered or foreign cookie is no login at all.
    assert!(BrowserLogins::from_cookie(&c, Some("dsgw_session_login=garbage")).is_none());
    let other = {
        let mut l = BrowserLogins::default();
        l.push(login("s2", 2000), 1000);
        cookie_of(&l.set_cookie(&c, Duration::from_secs(600)))
    };
    let tampered = other.replacen('=', "=A", 1);
    assert!(BrowserLogins::from_cookie(&c, Some(&tampered)).is_none());
}

#[test]
fn a_browser_keeps_its_newest_logins_and_no_flood_reaches_them() {
    let c = codec();
    let mut logins = BrowserLogins::default();
    for i in 0..10 {
        logins.push(login(&format!("s{i}"), 2000), 1000);
    }
    let header = cookie_of(&logins.set_cookie(&c, Duration::from_secs(600)));
    let mut back = BrowserLogins::from_cookie(&c, Some(&header)).unwrap();
    assert!(back.take("s9", 1500).is_ok());
    assert!(back.take("s7", 1500).is_ok());
    assert_eq!(back.take("s6", 1500).unwrap_err(), StateError::Unknown);
    // The longest cookie this can make still opens (3 logins, long return_to).
    let mut full = BrowserLogins::default();
    for i in 0..MAX_LOGINS_PER_BROWSER {
        let mut l = login(&format!("{i}").repeat(22), 2000);
        l.pkce_verifier = Secret::new("v".repeat(128));
        l.return_to = "/".repeat(MAX_RETURN_TO_LEN);
        full.push(l, 1000);
    }
    let header = cookie_of(&full.set_cookie(&c, Duration::from_secs(600)));
    assert!(BrowserLogins::from_cookie(&c, Some(&header)).is_some());
}

#[test]
fn the_gauge_map_is_bounded_and_forgets_completed_logins() {
    let clock = ManualClock::at_unix(1000);
    let p = PendingLogins::new(Duration::from_secs(60), 3, clock.clone());
    for i in 0..10 {
        p.started(&format!("s{i}"));
    }
    assert_eq!(p.len(), 3);
    p.finished("s9");
    assert_eq!(p.len(), 2);
    clock.advance_secs(61);
    assert_eq!(p.len(), 0);
    assert_ne!(state_key("s1"), "s1");
}
