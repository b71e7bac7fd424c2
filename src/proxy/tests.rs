//! The request decision as a table, in-process: the account server, the
//! session store and the clock are injected; no binary, no network, no sleep.

mod doubles;
mod expect;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingora::http::RequestHeader;

use super::router::{self, Route};
use super::{Decision, Gateway, Parts};
use crate::config::{Api, Config};
use crate::crypto::api_token::Grant;
use crate::crypto::scope::Scope;
use crate::docusign::OAuthError;
use crate::session::model::test_support::session_at;
use crate::session::ratelimit::{CallCounter, MemoryCallCounter, RateHeaders};
use crate::session::{MemoryStore, Session, SessionStore, TokenRecord};
use crate::util::time::{now_unix, Clock, ManualClock};
use doubles::{Scripted, Unreachable};
use expect::{answer, check, forward, limited, status, Expect};

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

/// Who calls.
#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Browser,
    Cookie,
    Token,
    ForgedToken,
    TokenOfEndedSession,
    /// Scoped to account A1, GET, `/restapi/v2.1/accounts/*/envelopes`.
    GetEnvelopesOfA1,
    /// The same scope with HEAD as its only method.
    HeadEnvelopesOfA1,
    /// A token of the session, revoked.
    RevokedToken,
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
    /// DocuSign's last answer for account A1 had `X-RateLimit-Remaining: 0`
    /// and a reset ahead.
    HourlyUsedUp,
    /// ... `X-BurstLimit-Remaining: 0`.
    BurstUsedUp,
    /// `limits.session_hourly = 1` and the session made its one call.
    SessionLimitReached,
    /// The session's REST host passed the policy of the instance that made
    /// it (as read from a shared store), not this one's.
    PolicyNarrowed,
    /// `[access] allowed_accounts = ["A2"]`: the session's A1 is refused.
    AccountRefused,
    /// `[access] allowed_users` names someone else: the session's user,
    /// admitted by the instance that made it, is refused here.
    UserRefused,
    /// Every API enabled (Admin on 127.0.0.4, platform on 127.0.0.5),
    /// `[access] allowed_organizations = ["org-1"]`.
    AllApis,
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
    let limits = match world {
        World::SessionLimitReached => "[limits]\nsession_hourly = 1\n",
        _ => "",
    };
    let access = match world {
        World::AccountRefused => "[access]\nallowed_accounts = [\"a2\"]\n",
        World::UserRefused => "[access]\nallowed_users = [\"someone-else\"]\n",
        World::AllApis => "[access]\nallowed_organizations = [\"ORG-1\"]\n",
        _ => "",
    };
    let mut config = format!("{CONFIG}{limits}{access}");
    if let World::PolicyNarrowed = world {
        config = config.replace(r#"["127.0.0.2"]"#, r#"["*.docusign.net"]"#);
    }
    if let World::AllApis = world {
        config = config.replace(
            "allowed_api_hosts",
            "apis = [\"esignature\", \"click\", \"admin\", \"platform\"]\n\
             admin_api_url = \"https://127.0.0.4/management\"\n\
             platform_api_url = \"https://127.0.0.5\"\n\
             allowed_api_hosts",
        );
    }
    let cfg = Config::from_toml_str(&config, Vec::new()).unwrap();
    let calls = Arc::new(MemoryCallCounter::new(100, clock.clone()));
    if let World::SessionLimitReached = world {
        calls.count(&session.id, 1).await.unwrap();
    }
    let parts = Parts {
        sessions,
        account_server: Arc::new(Scripted(Mutex::new(refresh))),
        clock: clock.clone(),
        calls,
        webhooks: Arc::new(crate::webhook::Webhooks::new(&cfg, None)),
    };
    let gw = Gateway::from_parts(cfg, parts);
    let now = clock.now_unix();
    let seen = |remaining, burst_remaining| RateHeaders {
        limit: Some(1000),
        remaining: Some(remaining),
        reset_at: Some(now + 300),
        burst_limit: Some(500),
        burst_remaining: Some(burst_remaining),
    };
    match world {
        World::HourlyUsedUp => gw.auth.rates.observe("A1", &seen(0, 400), 200),
        World::BurstUsedUp => gw.auth.rates.observe("a1", &seen(900, 0), 200),
        _ => {}
    }
    (gw, session, clock)
}

/// A token of `sid` with `scope`, registered in the session's registry.
async fn registered_token(gw: &Gateway, sid: &str, scope: Option<Scope>) -> (String, String) {
    let now = gw.auth.clock.now_unix();
    let grant = Grant {
        scope,
        ..Grant::default()
    };
    let minted = gw
        .auth
        .api_tokens
        .mint_grant("user-1", sid, now, now + 600, &grant);
    let c = &minted.claims;
    let record = TokenRecord {
        id: c.jti.clone().unwrap(),
        name: None,
        scope: c.scope.clone(),
        issued_at: c.iat,
        expires_at: c.exp,
    };
    // A store that does not answer registers nothing (its rows expect 503).
    let _ = gw.auth.sessions.add_token(sid, record, 10).await;
    (format!("Bearer {}", minted.token), c.jti.clone().unwrap())
}

fn envelopes_of_a1(method: &str) -> Scope {
    Scope {
        accounts: Some(vec!["a1".into()]),
        methods: Some(vec![method.into()]),
        paths: Some(vec!["/restapi/v2.1/accounts/*/envelopes".into()]),
    }
}

async fn request(gw: &Gateway, who: Who, session: &Session, path: &str) -> RequestHeader {
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
    let sealed = |id: &str| {
        let set = gw.auth.cookies.set_session(id, Duration::from_secs(600));
        set.split(';').next().unwrap().to_string()
    };
    let bearer = match who {
        Who::Token => Some(registered_token(gw, &session.id, None).await.0),
        Who::TokenOfEndedSession => Some(registered_token(gw, "ended", None).await.0),
        Who::GetEnvelopesOfA1 => {
            let scope = Some(envelopes_of_a1("GET"));
            Some(registered_token(gw, &session.id, scope).await.0)
        }
        Who::HeadEnvelopesOfA1 => {
            let scope = Some(envelopes_of_a1("HEAD"));
            Some(registered_token(gw, &session.id, scope).await.0)
        }
        Who::RevokedToken => {
            let (token, id) = registered_token(gw, &session.id, None).await;
            assert!(gw
                .auth
                .sessions
                .revoke_token(&session.id, &id)
                .await
                .unwrap());
            Some(token)
        }
        Who::ForgedToken => Some("Bearer eyJ.forged.x".to_string()),
        Who::Nobody | Who::Browser | Who::Cookie => None,
    };
    match who {
        Who::Browser => req.insert_header("Accept", "text/html").unwrap(),
        Who::Cookie => req.insert_header("Cookie", sealed(&session.id)).unwrap(),
        _ => {}
    }
    if let Some(bearer) = bearer {
        req.insert_header("Authorization", bearer).unwrap();
    }
    req
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
            world: PolicyNarrowed,
            path: OWN,
            expect: answer(502, "api_host_not_allowed"),
        },
        Case {
            who: Who::Token,
            world: PolicyNarrowed,
            path: OWN_LOWER,
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
            who: Who::Token,
            world: HourlyUsedUp,
            path: OWN,
            expect: limited("docusign_hourly"),
        },
        Case {
            who: Who::Cookie,
            world: BurstUsedUp,
            path: OWN_LOWER,
            expect: limited("docusign_burst"),
        },
        Case {
            who: Who::Cookie,
            world: SessionLimitReached,
            path: OWN,
            expect: limited("session_hourly"),
        },
        Case {
            who: Who::Nobody,
            world: HourlyUsedUp,
            path: OWN,
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::Cookie,
            world: HourlyUsedUp,
            path: FOREIGN,
            expect: answer(403, "account_not_permitted"),
        },
        Case {
            who: Who::GetEnvelopesOfA1,
            world: Normal,
            path: OWN,
            expect: forward("127.0.0.2:443"),
        },
        Case {
            who: Who::GetEnvelopesOfA1,
            world: Normal,
            path: "/restapi/v2.1/accounts/A2/envelopes",
            expect: answer(403, "token_scope"),
        },
        Case {
            who: Who::HeadEnvelopesOfA1,
            world: Normal,
            path: OWN,
            expect: answer(403, "token_scope"),
        },
        Case {
            who: Who::GetEnvelopesOfA1,
            world: Normal,
            path: OWN_LOWER,
            expect: answer(403, "token_scope"),
        },
        Case {
            who: Who::RevokedToken,
            world: Normal,
            path: OWN,
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::Cookie,
            world: AccountRefused,
            path: OWN,
            expect: answer(403, "account_not_permitted"),
        },
        Case {
            who: Who::Token,
            world: AccountRefused,
            path: OWN_LOWER,
            expect: answer(403, "account_not_permitted"),
        },
        Case {
            who: Who::Token,
            world: AccountRefused,
            // Past the policy: A2's REST host is what refuses it.
            path: "/restapi/v2.1/accounts/A2/envelopes",
            expect: answer(502, "api_host_not_allowed"),
        },
        Case {
            who: Who::Cookie,
            world: UserRefused,
            path: OWN,
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::Token,
            world: UserRefused,
            path: OWN,
            expect: answer(401, "login_required"),
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
        // The other APIs: disabled by default, routed when enabled.
        Case {
            who: Who::Cookie,
            world: Normal,
            path: "/clickapi/v1/accounts/A1/clickwraps",
            expect: answer(404, "not_found"),
        },
        Case {
            who: Who::Cookie,
            world: Normal,
            path: "/management/v2/organizations",
            expect: answer(404, "not_found"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/clickapi/v1/accounts/A1/clickwraps",
            expect: forward("127.0.0.2:443"),
        },
        Case {
            who: Who::Token,
            world: AllApis,
            path: "/clickapi/v1/accounts/a1",
            expect: forward("127.0.0.2:443"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/clickapi/v1/accounts/ZZZ/clickwraps",
            expect: answer(403, "account_not_permitted"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            // A2, the default account, lives on a host the policy refuses.
            path: "/clickapi/v1/accounts/A2/clickwraps",
            expect: answer(502, "api_host_not_allowed"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/management/v2/organizations",
            expect: forward("127.0.0.4:443"),
        },
        Case {
            who: Who::Token,
            world: AllApis,
            path: "/Management/v2/organizations/org-1/users",
            expect: forward("127.0.0.4:443"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/management/v2/organizations/org-2/users",
            expect: answer(403, "organization_not_permitted"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/management/v2/%6Frganizations/org-2/users",
            expect: answer(400, "invalid_path"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/v1/organizations/org-2/stream",
            expect: answer(403, "organization_not_permitted"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/v1/organizations/org-1/stream",
            expect: forward("127.0.0.5:443"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/v1/accounts/A1/agreements",
            expect: forward("127.0.0.5:443"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/v1/accounts/ZZZ/agreements",
            expect: answer(403, "account_not_permitted"),
        },
        Case {
            who: Who::Nobody,
            world: AllApis,
            path: "/v1/accounts/A1/agreements",
            expect: answer(401, "login_required"),
        },
        Case {
            who: Who::Cookie,
            world: AllApis,
            path: "/v1/other/x",
            expect: answer(404, "not_found"),
        },
        // A token scoped to account A1 names no organization's calls.
        Case {
            who: Who::GetEnvelopesOfA1,
            world: AllApis,
            path: "/management/v2/organizations",
            expect: answer(403, "token_scope"),
        },
        Case {
            who: Who::GetEnvelopesOfA1,
            world: AllApis,
            path: "/clickapi/v1/accounts/A1/clickwraps",
            expect: answer(403, "token_scope"),
        },
    ];
    for case in &cases {
        let (gw, session, _) = gateway(case.world).await;
        let req = request(&gw, case.who, &session, case.path).await;
        let docusign = &gw.auth.cfg.docusign;
        let route = router::route(
            req.uri.path(),
            &docusign.callback_path,
            docusign.apis.enabled,
        );
        check(case, gw.decide(route, &req, &[]).await);
    }
}

#[tokio::test]
async fn a_user_the_policy_now_refuses_loses_the_session() {
    let (gw, session, _) = gateway(World::UserRefused).await;
    assert!(gw.auth.sessions.get(&session.id).await.unwrap().is_some());
    let req = request(&gw, Who::Token, &session, "/restapi/v2.1/accounts/A1").await;
    assert!(
        matches!(gw.decide(Route::Api(Api::Esignature), &req, &[]).await, Decision::Answer(r) if r.status == 401)
    );
    assert!(gw.auth.sessions.get(&session.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_refused_refresh_ends_the_session_and_an_outage_keeps_it() {
    let (gw, session, _) = gateway(World::RefreshRefused).await;
    let req = request(&gw, Who::Cookie, &session, "/restapi/v2.1/accounts/A1").await;
    assert!(
        matches!(gw.decide(Route::Api(Api::Esignature), &req, &[]).await, Decision::Answer(r) if r.status == 401)
    );
    assert!(gw.auth.sessions.get(&session.id).await.unwrap().is_none());

    let (gw, session, _) = gateway(World::TokenEndpointDown).await;
    let req = request(&gw, Who::Cookie, &session, "/restapi/v2.1/accounts/A1").await;
    assert!(
        matches!(gw.decide(Route::Api(Api::Esignature), &req, &[]).await, Decision::Answer(r) if r.status == 503)
    );
    assert!(gw.auth.sessions.get(&session.id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_token_inside_the_refresh_window_is_refreshed_before_forwarding() {
    let (gw, session, clock) = gateway(World::Normal).await;
    clock.advance_secs(3_600 - 60);
    let req = request(&gw, Who::Cookie, &session, "/restapi/v2.1/accounts/A1").await;
    match gw.decide(Route::Api(Api::Esignature), &req, &[]).await {
        Decision::Forward(f) => {
            assert_eq!(f.session.tokens.expose_access_token(), "at-new");
            assert_eq!(f.session.tokens.generation, 1);
        }
        Decision::Answer(r) => panic!("answered {}", r.status),
    }
}

#[tokio::test]
async fn a_used_up_account_is_forwarded_again_from_its_reset_on() {
    let (gw, session, clock) = gateway(World::HourlyUsedUp).await;
    let req = request(&gw, Who::Cookie, &session, "/restapi/v2.1/accounts/A1").await;
    clock.advance_secs(299);
    assert!(
        matches!(gw.decide(Route::Api(Api::Esignature), &req, &[]).await, Decision::Answer(r) if r.status == 429)
    );
    clock.advance_secs(1);
    assert!(matches!(
        gw.decide(Route::Api(Api::Esignature), &req, &[]).await,
        Decision::Forward(_)
    ));
}
