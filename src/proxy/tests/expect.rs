//! What a row of the decision table expects, and the check of a decision
//! against it.

use super::{Case, Decision};
use crate::util::time::now_unix;
use crate::web::reply::Reply;

pub(super) struct Expect {
    pub(super) status: u16,
    pub(super) error: Option<&'static str>,
    pub(super) forwarded_to: Option<&'static str>,
    /// `reason` of a 429 `rate_limited`.
    pub(super) reason: Option<&'static str>,
}

pub(super) fn limited(reason: &'static str) -> Expect {
    Expect {
        reason: Some(reason),
        ..answer(429, "rate_limited")
    }
}

pub(super) fn answer(status: u16, error: &'static str) -> Expect {
    Expect {
        status,
        error: Some(error),
        forwarded_to: None,
        reason: None,
    }
}

pub(super) fn status(status: u16) -> Expect {
    Expect {
        status,
        error: None,
        forwarded_to: None,
        reason: None,
    }
}

pub(super) fn forward(to: &'static str) -> Expect {
    Expect {
        status: 0,
        error: None,
        forwarded_to: Some(to),
        reason: None,
    }
}

pub(super) fn check(case: &Case, decision: Decision) {
    let what = format!("{:?} {:?} {}", case.who, case.world, case.path);
    match (decision, &case.expect.forwarded_to) {
        (Decision::Forward(f), Some(to)) => {
            assert_eq!(f.upstream.addr.to_string(), *to, "{what}");
            assert!(f.session.tokens.expires_at > now_unix(), "{what}");
            // TLS with the upstream's own name as SNI, the same in `Host`.
            let host = &f.upstream.host;
            let peer = crate::proxy::upstream::peer(&f);
            assert_eq!(peer.sni, host.host, "{what}: SNI");
            assert!(!peer.sni.is_empty(), "{what}: SNI");
            assert_eq!(peer.scheme.to_string() == "HTTPS", host.tls, "{what}: TLS");
            assert!(host.authority.starts_with(&peer.sni), "{what}: Host");
        }
        (Decision::Forward(f), None) => {
            panic!("{what}: forwarded to {} but should not be", f.upstream.addr)
        }
        (Decision::Answer(reply), Some(_)) => {
            panic!("{what}: answered {} instead of forwarding", reply.status)
        }
        (Decision::Answer(reply), None) => check_reply(&what, &case.expect, &reply),
    }
}

fn check_reply(what: &str, expect: &Expect, reply: &Reply) {
    assert_eq!(reply.status, expect.status, "{what}");
    let header = |name: &str| {
        reply
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if let Some(code) = expect.error {
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"], code, "{what}");
    }
    if reply.status == 503 || reply.status == 429 {
        assert!(header("Retry-After").is_some(), "{what}: no Retry-After");
    }
    if let Some(reason) = expect.reason {
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["reason"], reason, "{what}");
        let retry: u64 = header("Retry-After").unwrap().parse().unwrap();
        let reset_at = body["reset_at"].as_u64().unwrap();
        assert!(retry >= 1 && reset_at >= now_unix() + retry - 2, "{what}");
    }
    if reply.status == 302 {
        assert!(header("Location")
            .unwrap()
            .starts_with("http://gw.example/auth/login?return_to="));
    }
}
