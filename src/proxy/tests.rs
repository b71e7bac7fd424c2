//! The request decision as a table, in-process: the account server, the
//! session store and the clock are injected; no binary, no network, no sleep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use url::Url;

use super::router::{self, Route};
use super::{Decision, Gateway, Parts};
use crate::config::Config;
use crate::docusign::{AccountServer, OAuthError, TokenSet, UserInfo};
use crate::session::model::test_support::session_at;
use crate::session::{MemoryStore, Session, SessionStore, StoreError, TokenSwap};
use crate::util::secret::Secret;
use crate::util::time::{now_unix, Clock, ManualClock};
use crate::web::reply::Reply;

const CONFIG: &str = r#"
[server]
public_url = "http://gw.example"
[docusign]
auth_server = "https://account-d.docusign.com"
client_id = "ik"
client_secret = "cs"
allowed_api_hosts = ["127.0.0.2"]
[session]
secure_cookie = false
secret = "0123456789abcdef0123456789abcdef0123456789"
"#;

/// An account server whose refresh grant answers as scripted.
struct Scripted(Mutex<Result<(), OAuthError>>);

#[async_trait]
impl AccountServer for Scripted {
    fn authorize_url(&self) -> (Url, String, Secret) {
        let url = Url::parse("http://127.0.0.1:9/oauth/auth?state=s").unwrap();
        (url, "s".into(), Secret::new("verifier"))
    }

    async fn exchange_code(&self, _: &str, _: &Secret) -> Result<TokenSet, OAuthError> {
        Err(OAuthError::Unavailable("not scripted".into()))
    }

    async fn userinfo(&self, _: &Secret) -> Result<UserInfo, OAuthError> {
        Err(OAuthError::Unavailable("not scripted".into()))
    }

    async fn refresh(&self, _: &Secret) -> Result<TokenSet, OAuthError> {
        self.0.lock().unwrap().clone().map(|()| TokenSet {
            access_token: Secret::new("at-new"),
            refresh_token: Some(Secret::new("rt-new")),
            expires_at: now_unix() + 3600,
        })
    }
}

/// A store that never answers.
struct Unreachable;

#[async_trait]
impl SessionStore for Unreachable {
    fn name(&self) -> &'static str {
        "unreachable"
    }
    async fn insert(&self, _: Session) -> Result<Arc<Session>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn get(&self, _: &str) -> Result<Option<Arc<Session>>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn remove(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn swap_tokens(&self, _: &str, _: u64, _: TokenSet) -> Result<TokenSwap, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn count(&self) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn claim_state(&self, _: &str, _: Duration) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

/// Who calls.
#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Browser,
    Cookie,
    Token,
    ForgedToken,
    TokenOfEndedSession,
}

/// What the account server and the clock do.
#[derive(Clone, Copy, Debug)]
enum World {
    Normal,
    /// The access token has expired and DocuSign refuses the refresh token.
    RefreshRefused,
    /// The access token has expired and the token endpoint is down.
    TokenEndpointDown,
    /// The session store does not answer.
    StoreDown,
}

struct Expect {
    status: u16,
    error: Option<&'static str>,
    forwarded_to: Option<&'static str>,
}

fn answer(status: u16, error: &'static str) -> Expect {
    Expect {
        status,
        error: Some(error),
        forwarded_to: None,
    }
}

fn status(status: u16) -> Expect {
    Expect {
        status,
        error: None,
        forwarded_to: None,
    }
}

fn forward(to: &'static str) -> Expect {
    Expect {
        status: 0,
        error: None,
        forwarded_to: Some(to),
    }
}

struct Case {
    who: Who,
    world: World,
    path: &'static str,
    expect: Expect,
}

async fn gateway(world: World) -> (Gateway, Arc<Session>, Arc<ManualClock>) {
    let clock = ManualClock::at_unix(now_unix());
    let memory = Arc::new(MemoryStore::new(100, 10, clock.clone()));
    let session = memory
        .insert(session_at(clock.now_unix(), 86_400))
        .await
        .unwrap();
    let refresh = match world {
        World::RefreshRefused => Err(OAuthError::InvalidGrant(None)),
        World::TokenEndpointDown => Err(OAuthError::Unavailable("down".into())),
        _ => Ok(()),
    };
    if matches!(world, World::RefreshRefused | World::TokenEndpointDown) {
        clock.advance_secs(3_600);
    }
    let sessions: Arc<dyn SessionStore> = match world {
        World::StoreDown => Arc::new(Unreachable),
        _ => memory,
    };
    let cfg = Config::from_toml_str(CONFIG, Vec::new()).unwrap();
    let parts = Parts {
        sessions,
        account_server: Arc::new(Scripted(Mutex::new(refresh))),
        clock: clock.clone(),
    };
    (Gateway::from_parts(cfg, parts), session, clock)
}

fn request(gw: &Gateway, who: Who, session: &Session, path: &str) -> RequestHeader {
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
    let sealed = |id: &str| {
        let set = gw.auth.cookies.set_session(id, Duration::from_secs(600));
        set.split(';').next().unwrap().to_string()
    };
    let token = |sid: &str| {
        let (t, _) = gw
            .auth
            .api_tokens
            .mint("user-1", sid, now_unix(), now_unix() + 600);
        format!("Bearer {t}")
    };
    match who {
        Who::Nobody => {}
        Who::Browser => req.insert_header("Accept", "text/html").unwrap(),
        Who::Cookie => req.insert_header("Cookie", sealed(&session.id)).unwrap(),
        Who::Token => req
            .insert_header("Authorization", token(&session.id))
            .unwrap(),
        Who::ForgedToken => req
            .insert_header("Authorization", "Bearer eyJ.forged.x")
            .unwrap(),
        Who::TokenOfEndedSession => req.insert_header("Authorization", token("ended")).unwrap(),
    }
    req
}

fn check(case: &Case, decision: Decision) {
    let what = format!("{:?} {:?} {}", case.who, case.world, case.path);
    match (decision, &case.expect.forwarded_to) {
        (Decision::Forward(f), Some(to)) => {
            assert_eq!(f.upstream.addr.to_string(), *to, "{what}");
            assert!(f.session.tokens.set.expires_at > now_unix(), "{what}");
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
    if reply.status == 503 {
        assert!(
            header("Retry-After").is_some(),
            "{what}: 503 without Retry-After"
        );
    }
    if reply.status == 302 {
        assert!(header("Location")
            .unwrap()
            .starts_with("http://gw.example/auth/login?return_to="));
    }
}

#[tokio::test]
async fn the_request_decision_table() {
    use World::*;
    const OWN: &str = "/restapi/v2.1/accounts/A1/envelopes";
    const OWN_LOWER: &str = "/restapi/v2.1/accounts/a1";
    const FOREIGN: &str = "/restapi/v2.1/accounts/ZZZ/envelopes";
    const DEFAULT: &str = "/restapi/v2.1/accounts";
    let cases = [
        Case {
            who: Who::Nobody,
            world: Normal,
            path: OWN,
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::Browser,
            world: Normal,
            path: OWN,
            expect: status(302),
        },
        Case {
            who: Who::ForgedToken,
            world: Normal,
            path: OWN,
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::TokenOfEndedSession,
            world: Normal,
            path: OWN,
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::Cookie,
            world: Normal,
            path: FOREIGN,
            expect: answer(403, "account_not_permitted"),
        },
        Case {
            who: Who::Token,
            world: Normal,
            path: FOREIGN,
            expect: answer(403, "account_not_permitted"),
        },
        Case {
            who: Who::Cookie,
            world: Normal,
            path: DEFAULT,
            expect: answer(502, "api_host_not_allowed"),
        },
        Case {
            who: Who::Cookie,
            world: Normal,
            path: "/restapi/v2.1/accounts/A1/../A2",
            expect: answer(400, "invalid_path"),
        },
        Case {
            who: Who::Cookie,
            world: Normal,
            path: OWN,
            expect: forward("127.0.0.2:443"),
        },
        Case {
            who: Who::Token,
            world: Normal,
            path: OWN_LOWER,
            expect: forward("127.0.0.2:443"),
        },
        Case {
            who: Who::Cookie,
            world: RefreshRefused,
            path: OWN,
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::Token,
            world: TokenEndpointDown,
            path: OWN,
            expect: answer(503, "docusign_unavailable"),
        },
        Case {
            who: Who::Cookie,
            world: StoreDown,
            path: OWN,
            expect: answer(503, "session_store_unavailable"),
        },
        Case {
            who: Who::Token,
            world: StoreDown,
            path: OWN,
            expect: answer(503, "session_store_unavailable"),
        },
        Case {
            who: Who::Nobody,
            world: StoreDown,
            path: "/readyz",
            expect: answer(503, "session_store_unavailable"),
        },
        Case {
            who: Who::Nobody,
            world: Normal,
            path: "/readyz",
            expect: status(200),
        },
        Case {
            who: Who::Nobody,
            world: Normal,
            path: "/healthz",
            expect: status(200),
        },
        Case {
            who: Who::Cookie,
            world: Normal,
            path: "/elsewhere",
            expect: answer(404, "not_found"),
        },
    ];
    for case in &cases {
        let (gw, session, _) = gateway(case.world).await;
        let req = request(&gw, case.who, &session, case.path);
        let route = router::route(req.uri.path(), &gw.auth.cfg.docusign.callback_path);
        check(case, gw.decide(route, &req).await);
    }
}

#[tokio::test]
async fn a_refused_refresh_ends_the_session_and_an_outage_keeps_it() {
    let (gw, session, _) = gateway(World::RefreshRefused).await;
    let req = request(&gw, Who::Cookie, &session, "/restapi/v2.1/accounts/A1");
    assert!(matches!(gw.decide(Route::Api, &req).await, Decision::Answer(r) if r.status == 401));
    assert!(gw.auth.sessions.get(&session.id).await.unwrap().is_none());

    let (gw, session, _) = gateway(World::TokenEndpointDown).await;
    let req = request(&gw, Who::Cookie, &session, "/restapi/v2.1/accounts/A1");
    assert!(matches!(gw.decide(Route::Api, &req).await, Decision::Answer(r) if r.status == 503));
    assert!(gw.auth.sessions.get(&session.id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_token_inside_the_refresh_window_is_refreshed_before_forwarding() {
    let (gw, session, clock) = gateway(World::Normal).await;
    clock.advance_secs(3_600 - 60);
    let req = request(&gw, Who::Cookie, &session, "/restapi/v2.1/accounts/A1");
    match gw.decide(Route::Api, &req).await {
        Decision::Forward(f) => {
            assert_eq!(f.session.tokens.set.access_token.expose(), "at-new");
            assert_eq!(f.session.tokens.generation, 1);
        }
        Decision::Answer(r) => panic!("answered {}", r.status),
    }
}
