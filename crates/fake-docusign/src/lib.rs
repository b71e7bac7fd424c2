//! A faithful double of DocuSign's account server (OAuth) and REST hosts.
//!
//! It follows `docs/docusign.md` (DocuSign's documented OAuth and eSignature
//! REST behaviour), not any particular gateway. It runs inside the caller's
//! tokio runtime: [`FakeDocuSign::start`] binds every listener and spawns one
//! axum server per listener, plus the Connect sender that POSTs signed
//! webhook messages to configured listeners (see `connect.rs`). They all stop
//! when the last handle is dropped.
//!
//! Used by the integration tests in-process, by `docusign-gateway demo` and by
//! the `docusign-gateway fake-docusign` command. [`receiver`] is the other
//! end of Connect, not DocuSign: the app a gateway delivers webhooks to, for
//! the demo and the benches.

mod connect;
mod control;
mod envelopes;
mod jwt;
#[cfg(test)]
mod jwt_tests;
mod oauth;
mod org_hosts;
mod ratelimit;
pub mod receiver;
mod records;
mod reply;
mod rest;
mod state;
mod time;
mod tokens;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use connect::{
    sign, ConnectAttempt, ConnectListener, DEFAULT_CONNECT_FIRST_RETRY,
    DEFAULT_CONNECT_MAX_ATTEMPTS, DEFAULT_CONNECT_TIMEOUT, FAKE_CONNECT_CONFIGURATION_ID,
    MAX_CONNECT_RETRY_INTERVAL,
};
pub use envelopes::SAMPLE_ENVELOPE_ID;
pub use ratelimit::{
    AccountLimits, ResetFormat, BURST_WINDOW_SECS, DEFAULT_BURST_LIMIT, DEFAULT_HOURLY_LIMIT,
};
pub use records::{
    FakeStats, RecordedAuthorizeRequest, RecordedRequest, RecordedTokenRequest, TokenEndpointMode,
};
pub use state::AUTHORIZATION_CODE_TTL;

use state::Shared;

/// Everything the fake needs to know before it starts.
#[derive(Clone)]
pub struct FakeConfig {
    /// The integration key.
    pub client_id: String,
    pub client_secret: String,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Bind address of the account server; port 0 allowed.
    pub account_server: SocketAddr,
    /// One REST host per address (e.g. 127.0.0.2:0 and 127.0.0.3:0); port 0 allowed.
    /// Each serves the eSignature (`/restapi/...`) and Click
    /// (`/clickapi/...`) APIs of the accounts it hosts.
    pub rest_hosts: Vec<SocketAddr>,
    /// Bind address of the Admin API host (`/management/...`); port 0 allowed.
    pub admin_host: SocketAddr,
    /// Bind address of the api.docusign.com host (`/v1/...`); port 0 allowed.
    pub platform_host: SocketAddr,
    /// Organizations (Admin and platform APIs) and their members.
    pub organizations: Vec<FakeOrganization>,
    /// Known users; the first one consents at `/oauth/auth` by default.
    pub users: Vec<FakeUser>,
    /// Lifetime of access tokens (DocuSign: 8 hours).
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (DocuSign: about 30 days).
    pub refresh_token_ttl: Duration,
    /// Size in bytes of the PDF served by document downloads.
    pub document_size: usize,
    /// Connect listeners every message is delivered to (replaceable at run
    /// time with [`FakeDocuSign::set_connect_listeners`]).
    pub connect: Vec<ConnectListener>,
}

/// A DocuSign user, as `/oauth/userinfo` describes them.
#[derive(Clone, Debug)]
pub struct FakeUser {
    /// User GUID.
    pub sub: String,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub accounts: Vec<FakeAccount>,
}

/// A DocuSign organization: users and accounts an administrator manages.
#[derive(Clone, Debug)]
pub struct FakeOrganization {
    /// Organization GUID.
    pub id: String,
    pub name: String,
    /// `sub` of each member.
    pub members: Vec<String>,
    /// Account ids of the organization.
    pub accounts: Vec<String>,
}

/// The demo organization's id.
pub const DEMO_ORGANIZATION_ID: &str = "0b4e5a2c-1f3d-4e6a-9b8c-7d6e5f4a3b2c";

/// One eSignature account a user is a member of.
#[derive(Clone, Debug)]
pub struct FakeAccount {
    /// Account GUID.
    pub account_id: String,
    pub account_name: String,
    pub is_default: bool,
    /// Index into [`FakeConfig::rest_hosts`]: where this account lives.
    pub rest_host: usize,
}

/// Default access token lifetime: 8 hours, like DocuSign.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);
/// Default refresh token lifetime: 30 days, like DocuSign.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default size of downloaded documents: 3 MiB.
pub const DEFAULT_DOCUMENT_SIZE: usize = 3 * 1024 * 1024;

impl FakeConfig {
    /// The configuration of `docusign-gateway demo`: one user with two
    /// accounts, account 1 (default) on REST host 0 and account 2 on REST host
    /// 1. Redirect URIs are left empty for the caller to fill in.
    pub fn demo_defaults() -> Self {
        FakeConfig {
            client_id: "demo-integration-key".to_string(),
            client_secret: "demo-client-secret".to_string(),
            redirect_uris: Vec::new(),
            account_server: SocketAddr::from(([127, 0, 0, 1], 0)),
            rest_hosts: vec![
                SocketAddr::from(([127, 0, 0, 2], 0)),
                SocketAddr::from(([127, 0, 0, 3], 0)),
            ],
            admin_host: SocketAddr::from(([127, 0, 0, 4], 0)),
            platform_host: SocketAddr::from(([127, 0, 0, 5], 0)),
            organizations: vec![FakeOrganization {
                id: DEMO_ORGANIZATION_ID.to_string(),
                name: "Demo Organization".to_string(),
                members: vec!["4799e5e9-1559-4915-9862-cf4713bbcacc".to_string()],
                accounts: vec![
                    "a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f".to_string(),
                    "c2b7e8f1-5d6a-4b3c-8e9f-0a1b2c3d4e5f".to_string(),
                ],
            }],
            users: vec![FakeUser {
                sub: "4799e5e9-1559-4915-9862-cf4713bbcacc".to_string(),
                name: "Demo User".to_string(),
                given_name: "Demo".to_string(),
                family_name: "User".to_string(),
                email: "demo.user@example.com".to_string(),
                accounts: vec![
                    FakeAccount {
                        account_id: "a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f".to_string(),
                        account_name: "Demo Account One".to_string(),
                        is_default: true,
                        rest_host: 0,
                    },
                    FakeAccount {
                        account_id: "c2b7e8f1-5d6a-4b3c-8e9f-0a1b2c3d4e5f".to_string(),
                        account_name: "Demo Account Two".to_string(),
                        is_default: false,
                        rest_host: 1,
                    },
                ],
            }],
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            document_size: DEFAULT_DOCUMENT_SIZE,
            connect: Vec::new(),
        }
    }

    fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if self.users.is_empty() {
            return Err(invalid(
                "fake DocuSign: at least one user is required".into(),
            ));
        }
        for user in &self.users {
            for account in &user.accounts {
                if account.rest_host >= self.rest_hosts.len() {
                    return Err(invalid(format!(
                        "fake DocuSign: account {} of user {} names REST host {}, but only {} REST hosts are configured",
                        account.account_id,
                        user.sub,
                        account.rest_host,
                        self.rest_hosts.len()
                    )));
                }
            }
        }
        for listener in &self.connect {
            listener
                .validate()
                .map_err(|e| invalid(format!("fake DocuSign: {e}")))?;
        }
        Ok(())
    }
}

/// Debug output never shows the client secret.
impl fmt::Debug for FakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field("account_server", &self.account_server)
            .field("rest_hosts", &self.rest_hosts)
            .field("admin_host", &self.admin_host)
            .field("platform_host", &self.platform_host)
            .field("organizations", &self.organizations)
            .field("users", &self.users)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("document_size", &self.document_size)
            .field("connect", &self.connect)
            .finish()
    }
}

/// A running fake DocuSign. Cheap to clone; the servers stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct FakeDocuSign {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("fake DocuSign: cannot bind the {what} on {addr}: {e}"),
        )
    })
}

async fn serve(listener: TcpListener, router: axum::Router, what: String) {
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "fake DocuSign {what} stopped");
    }
}

impl FakeDocuSign {
    /// Binds every listener (failing fast with an error naming the address)
    /// and spawns the servers on the current tokio runtime.
    pub async fn start(config: FakeConfig) -> io::Result<FakeDocuSign> {
        config.validate()?;
        let account_listener = bind(config.account_server, "account server").await?;
        let mut rest_listeners = Vec::with_capacity(config.rest_hosts.len());
        for (i, addr) in config.rest_hosts.iter().enumerate() {
            rest_listeners.push(bind(*addr, &format!("REST host {i}")).await?);
        }
        let admin_listener = bind(config.admin_host, "Admin API host").await?;
        let platform_listener = bind(config.platform_host, "api.docusign.com host").await?;
        let account_addr = account_listener.local_addr()?;
        let mut authorities = Vec::with_capacity(rest_listeners.len());
        for listener in &rest_listeners {
            authorities.push(listener.local_addr()?.to_string());
        }
        let org_authorities = [
            admin_listener.local_addr()?.to_string(),
            platform_listener.local_addr()?.to_string(),
        ];
        let connect_client = connect::delivery::client()?;
        let (connect_queue, connect_receiver) = connect::delivery::ConnectQueue::channel();
        let shared = Arc::new(Shared::new(
            config,
            account_addr.to_string(),
            authorities,
            org_authorities,
            connect_queue,
        ));

        let mut tasks = Vec::with_capacity(rest_listeners.len() + 4);
        tasks.push(tokio::spawn(connect::delivery::run(
            shared.clone(),
            connect_receiver,
            connect_client,
        )));
        tasks.push(tokio::spawn(serve(
            account_listener,
            oauth::router(shared.clone()),
            format!("account server {account_addr}"),
        )));
        for (i, listener) in rest_listeners.into_iter().enumerate() {
            let what = format!("REST host {i} {}", shared.rest_authorities[i]);
            tasks.push(tokio::spawn(serve(
                listener,
                rest::router(shared.clone(), i),
                what,
            )));
        }
        for (listener, kind) in [
            (admin_listener, org_hosts::OrgHost::Admin),
            (platform_listener, org_hosts::OrgHost::Platform),
        ] {
            let what = format!("{kind:?} host");
            tasks.push(tokio::spawn(serve(
                listener,
                org_hosts::router(shared.clone(), kind),
                what,
            )));
        }
        tracing::info!(
            account_server = %shared.account_server_url(),
            rest_hosts = ?shared.rest_authorities,
            "fake DocuSign started"
        );
        Ok(FakeDocuSign {
            inner: Arc::new(Inner { shared, tasks }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// `http://127.0.0.1:PORT`, with the port actually bound.
    pub fn account_server_url(&self) -> String {
        self.shared().account_server_url()
    }

    /// `http://127.0.0.2:PORT`: the `base_uri` of accounts on REST host `i`.
    ///
    /// # Panics
    /// If `i` is not the index of a configured REST host.
    pub fn rest_host_url(&self, i: usize) -> String {
        self.shared().rest_host_url(i)
    }

    /// `http://127.0.0.4:PORT/management`: the Admin API's base (the Admin
    /// SDK's `host`; a gateway's `docusign.admin_api_url`).
    pub fn admin_api_url(&self) -> String {
        format!("http://{}/management", self.shared().admin_authority)
    }

    /// `http://127.0.0.5:PORT`: the api.docusign.com family's host (a
    /// gateway's `docusign.platform_api_url`).
    pub fn platform_api_url(&self) -> String {
        format!("http://{}", self.shared().platform_authority)
    }

    /// Every request the Admin API host received, in arrival order.
    pub fn admin_requests(&self) -> Vec<RecordedRequest> {
        self.shared().lock().admin_requests.clone()
    }

    /// Every request the api.docusign.com host received, in arrival order.
    pub fn platform_requests(&self) -> Vec<RecordedRequest> {
        self.shared().lock().platform_requests.clone()
    }

    /// Number of REST hosts.
    pub fn rest_host_count(&self) -> usize {
        self.shared().rest_authorities.len()
    }

    /// The configuration the fake was started with.
    pub fn config(&self) -> &FakeConfig {
        &self.shared().config
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared().lock().access_token_ttl = ttl;
    }

    /// Lifetime of refresh tokens issued from now on.
    pub fn set_refresh_token_ttl(&self, ttl: Duration) {
        self.shared().lock().refresh_token_ttl = ttl;
    }

    /// Which configured user `/oauth/auth` consents as. An unknown `sub`
    /// makes `/oauth/auth` answer 500 until a known one is set.
    pub fn set_consenting_user(&self, sub: &str) {
        let mut state = self.shared().lock();
        state.consenting_user = sub.to_string();
        state.consenting_in_turn = None;
    }

    /// `true`: the configured users consent at `/oauth/auth` in turn (the
    /// first, the second, ..., then the first again), as when many people
    /// log in; `false`: the consenting user again.
    pub fn set_users_consent_in_turn(&self, in_turn: bool) {
        self.shared().lock().consenting_in_turn = in_turn.then_some(0);
    }

    /// Registers an RSA public key (PEM) of the integration key, as an
    /// admin uploads one at DocuSign: JWT assertions it verifies are accepted.
    pub fn add_jwt_public_key(&self, pem: &str) {
        self.shared().lock().jwt_public_keys.push(pem.to_string());
    }

    /// Removes every registered RSA public key (assertions get `invalid_grant`).
    pub fn remove_jwt_public_keys(&self) {
        self.shared().lock().jwt_public_keys.clear();
    }

    /// Whether the user `sub` consented to impersonation by the integration key.
    pub fn has_consent(&self, sub: &str) -> bool {
        let shared = self.shared();
        let user = shared.config.users.iter().position(|u| u.sub == sub);
        user.is_some_and(|u| shared.lock().consents.contains(&u))
    }

    /// `true`: `/oauth/auth` redirects with `error=access_denied`.
    pub fn set_deny_consent(&self, deny: bool) {
        self.shared().lock().deny_consent = deny;
    }

    /// `true`: userinfo renders `is_default` as the strings `"true"`/`"false"`.
    /// From now on, `/oauth/userinfo` answers `base_uri` for this account.
    pub fn set_base_uri_override(&self, account_id: &str, base_uri: &str) {
        self.shared()
            .lock()
            .base_uri_overrides
            .insert(account_id.to_ascii_lowercase(), base_uri.to_string());
    }

    /// From now on every access token issued (code, refresh and JWT grants)
    /// is `token`, for load benchmarks whose upstream (not this fake's REST
    /// hosts) accepts one fixed bearer token. `None`: fresh tokens again.
    pub fn set_fixed_access_token(&self, token: Option<&str>) {
        self.shared().lock().fixed_access_token = token.map(str::to_string);
    }

    /// Starts `max_concurrent_token_requests` over from the requests in
    /// progress now (to measure one phase of a benchmark).
    pub fn reset_max_concurrent_token_requests(&self) {
        let mut state = self.shared().lock();
        state.stats.max_concurrent_token_requests = state.token_in_flight;
    }

    pub fn set_is_default_as_string(&self, yes: bool) {
        self.shared().lock().is_default_as_string = yes;
    }

    /// Every access token issued so far is rejected from now on.
    pub fn revoke_access_tokens(&self) {
        self.shared().lock().revoke_access_tokens();
    }

    /// Every refresh token issued so far is rejected from now on.
    pub fn revoke_refresh_tokens(&self) {
        self.shared().lock().revoke_refresh_tokens();
    }

    /// How `/oauth/token` behaves from now on.
    pub fn set_token_endpoint(&self, mode: TokenEndpointMode) {
        self.shared().lock().token_mode = mode;
    }

    /// The hourly and burst limit of `account` (any case), or with `None`
    /// of every account without limits of its own, from now on.
    pub fn set_rate_limits(&self, account: Option<&str>, limits: AccountLimits) {
        self.shared().lock().rates.set_limits(account, limits);
    }

    /// `account`'s current hour has `remaining` calls left and ends in
    /// `reset_in` (at least a second); then a full hour starts again.
    pub fn set_rate_window(&self, account: &str, remaining: u64, reset_in: Duration) {
        let now = time::unix_secs(std::time::SystemTime::now());
        let secs = reset_in.as_secs();
        self.shared()
            .lock()
            .rates
            .set_window(account, remaining, secs, now);
    }

    /// `account` has used `used` calls of its current 30-second burst window.
    pub fn set_burst_used(&self, account: &str, used: u64) {
        let now = time::unix_secs(std::time::SystemTime::now());
        self.shared()
            .lock()
            .rates
            .set_burst_used(account, used, now);
    }

    /// How `X-RateLimit-Reset` is written from now on.
    pub fn set_reset_format(&self, format: ResetFormat) {
        self.shared().lock().rates.reset_format = format;
    }

    /// Request counters.
    pub fn stats(&self) -> FakeStats {
        self.shared().lock().stats.clone()
    }

    /// Every request a REST host received, in arrival order.
    pub fn rest_requests(&self) -> Vec<RecordedRequest> {
        self.shared().lock().rest_requests.clone()
    }

    /// Every `/oauth/token` request, in order (field names only, no values).
    pub fn token_requests(&self) -> Vec<RecordedTokenRequest> {
        self.shared().lock().token_requests.clone()
    }

    /// Every `/oauth/auth` request, in order.
    pub fn authorize_requests(&self) -> Vec<RecordedAuthorizeRequest> {
        self.shared().lock().authorize_requests.clone()
    }

    /// The client secret and every authorization code, access token and
    /// refresh token ever issued: none of them may leak out of a gateway.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared().lock().issued_secrets.clone()
    }

    /// Queues a Connect message, `body` exactly as given, for every listener
    /// configured now, and returns its message id (also when there is no
    /// listener). Delivery and retries happen in the background; see
    /// [`FakeDocuSign::connect_attempts`].
    pub fn send_connect(&self, body: Vec<u8>) -> u64 {
        connect::delivery::send(self.shared(), body.into())
    }

    /// Replaces the Connect listeners for messages queued from now on.
    pub fn set_connect_listeners(&self, listeners: Vec<ConnectListener>) {
        self.shared().lock().connect_listeners = listeners;
    }

    /// The last 1000 Connect delivery attempts, oldest first.
    pub fn connect_attempts(&self) -> Vec<ConnectAttempt> {
        self.shared()
            .lock()
            .connect_attempts
            .iter()
            .cloned()
            .collect()
    }

    /// A Connect 2.0 JSON message for `event` (`envelope-sent`,
    /// `envelope-completed`, ...) about an envelope, generated now. Envelope
    /// events carry an `envelopeSummary` with the event's status.
    pub fn connect_event(
        event: &str,
        account_id: &str,
        user_id: &str,
        envelope_id: &str,
    ) -> Vec<u8> {
        let ids = connect::EventIds {
            account_id,
            user_id,
            envelope_id,
        };
        connect::event_body(event, &ids, None)
    }

    /// Access tokens that are currently accepted.
    pub fn active_access_tokens(&self) -> Vec<String> {
        self.shared().lock().active_access_tokens()
    }
}

impl fmt::Debug for FakeDocuSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeDocuSign")
            .field("account_server", &self.account_server_url())
            .field("rest_hosts", &self.shared().rest_authorities)
            .finish()
    }
}
