//! Mutable state of the fake: authorization codes, tokens, envelopes,
//! counters and request records, all behind one mutex that is never held
//! across an await.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::connect::delivery::ConnectQueue;
use super::connect::{ConnectAttempt, ConnectListener};
use super::envelopes::{Envelope, SAMPLE_ENVELOPE_ID};
use super::ratelimit::{RateLimits, RateSnapshot};
use super::records::{
    FakeStats, RecordedAuthorizeRequest, RecordedRequest, RecordedTokenRequest, TokenEndpointMode,
};
use super::time::unix_secs;
use super::tokens::{mint, pkce_challenge, TokenKind};
use super::FakeConfig;

/// Authorization codes expire this long after `/oauth/auth` issued them.
pub const AUTHORIZATION_CODE_TTL: Duration = Duration::from_secs(120);

/// What every server task shares: fixed facts plus the locked state.
pub(crate) struct Shared {
    pub(crate) config: FakeConfig,
    /// `127.0.0.1:PORT` of the account server.
    pub(crate) account_authority: String,
    /// `127.0.0.2:PORT` of each REST host: its expected `Host` header.
    pub(crate) rest_authorities: Vec<String>,
    /// `127.0.0.4:PORT` of the Admin API host.
    pub(crate) admin_authority: String,
    /// `127.0.0.5:PORT` of the api.docusign.com host.
    pub(crate) platform_authority: String,
    /// Where Connect messages are queued for the sender task.
    pub(crate) connect: ConnectQueue,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(
        config: FakeConfig,
        account_authority: String,
        rest_authorities: Vec<String>,
        [admin_authority, platform_authority]: [String; 2],
        connect: ConnectQueue,
    ) -> Self {
        let state = State::new(&config, rest_authorities.len());
        Shared {
            config,
            account_authority,
            rest_authorities,
            admin_authority,
            platform_authority,
            connect,
            state: Mutex::new(state),
        }
    }

    /// Locks the state; a poisoned lock is still usable (the state stays
    /// consistent because no method panics half-way).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn account_server_url(&self) -> String {
        format!("http://{}", self.account_authority)
    }

    pub(crate) fn rest_host_url(&self, i: usize) -> String {
        format!("http://{}", self.rest_authorities[i])
    }
}

/// What a code or token was granted for.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    /// Index into `config.users`.
    pub(crate) user: usize,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
}

struct CodeGrant {
    grant: Grant,
    code_challenge: Option<String>,
    expires_at: Option<Instant>,
    used: bool,
}

struct TokenGrant {
    grant: Grant,
    expires_at: Option<Instant>,
    revoked: bool,
    /// Refresh tokens only: already exchanged (rotation).
    used: bool,
}

/// A freshly issued access + refresh token pair.
pub(crate) struct TokenPair {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: u64,
}

/// When something issued at `now` with lifetime `ttl` expires; `None` when
/// that is too far away to represent (never).
fn deadline(now: Instant, ttl: Duration) -> Option<Instant> {
    now.checked_add(ttl)
}

fn expired(expires_at: Option<Instant>, now: Instant) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

/// Why a code or refresh token was refused; becomes `error_description`.
pub(crate) type GrantError = &'static str;

pub(crate) struct State {
    pub(crate) access_token_ttl: Duration,
    pub(crate) refresh_token_ttl: Duration,
    /// `sub` of the user `/oauth/auth` consents as.
    pub(crate) consenting_user: String,
    /// `Some(next)`: the configured users consent in turn instead (index of
    /// the next one), as when many people log in.
    pub(crate) consenting_in_turn: Option<usize>,
    pub(crate) deny_consent: bool,
    pub(crate) is_default_as_string: bool,
    /// `base_uri` answered for an account instead of its REST host's URL
    /// (keyed by lower-case account id): to point a gateway at a host that
    /// is down or not allowed.
    pub(crate) base_uri_overrides: HashMap<String, String>,
    /// Every access token issued is this one (for load benchmarks whose
    /// upstream checks one fixed bearer token); `None`: fresh tokens.
    pub(crate) fixed_access_token: Option<String>,
    pub(crate) token_mode: TokenEndpointMode,
    /// `/oauth/token` requests being answered right now.
    pub(crate) token_in_flight: u64,
    pub(crate) stats: FakeStats,
    pub(crate) rest_requests: Vec<RecordedRequest>,
    pub(crate) admin_requests: Vec<RecordedRequest>,
    pub(crate) platform_requests: Vec<RecordedRequest>,
    /// Click API clickwraps, keyed by lower-case account id.
    pub(crate) clickwraps: HashMap<String, Vec<serde_json::Value>>,
    pub(crate) token_requests: Vec<RecordedTokenRequest>,
    pub(crate) authorize_requests: Vec<RecordedAuthorizeRequest>,
    pub(crate) issued_secrets: Vec<String>,
    /// The integration key's RSA public keys (PEM), for the JWT grant.
    pub(crate) jwt_public_keys: Vec<String>,
    /// Users (indices into `config.users`) who consented to impersonation.
    pub(crate) consents: HashSet<usize>,
    codes: HashMap<String, CodeGrant>,
    access_tokens: HashMap<String, TokenGrant>,
    refresh_tokens: HashMap<String, TokenGrant>,
    /// Keyed by lower-case account id.
    envelopes: HashMap<String, Vec<Envelope>>,
    /// Rate limits and counts per account.
    pub(crate) rates: RateLimits,
    /// Where Connect delivers messages queued from now on.
    pub(crate) connect_listeners: Vec<ConnectListener>,
    /// The last Connect delivery attempts, oldest first (bounded).
    pub(crate) connect_attempts: VecDeque<ConnectAttempt>,
}

impl State {
    fn new(config: &FakeConfig, rest_hosts: usize) -> Self {
        let mut envelopes = HashMap::new();
        let created = SystemTime::now();
        for user in &config.users {
            for account in &user.accounts {
                envelopes
                    .entry(account.account_id.to_ascii_lowercase())
                    .or_insert_with(|| {
                        vec![Envelope {
                            id: SAMPLE_ENVELOPE_ID.to_string(),
                            status: "completed".to_string(),
                            email_subject: "Sample envelope".to_string(),
                            created,
                        }]
                    });
            }
        }
        State {
            access_token_ttl: config.access_token_ttl,
            token_in_flight: 0,
            refresh_token_ttl: config.refresh_token_ttl,
            consenting_user: config
                .users
                .first()
                .map(|u| u.sub.clone())
                .unwrap_or_default(),
            consenting_in_turn: None,
            deny_consent: false,
            is_default_as_string: false,
            base_uri_overrides: HashMap::new(),
            fixed_access_token: None,
            token_mode: TokenEndpointMode::Normal,
            stats: FakeStats {
                rest_requests_per_host: vec![0; rest_hosts],
                ..FakeStats::default()
            },
            rest_requests: Vec::new(),
            admin_requests: Vec::new(),
            platform_requests: Vec::new(),
            clickwraps: HashMap::new(),
            token_requests: Vec::new(),
            authorize_requests: Vec::new(),
            issued_secrets: vec![config.client_secret.clone()],
            jwt_public_keys: Vec::new(),
            consents: HashSet::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            envelopes,
            rates: RateLimits::default(),
            connect_listeners: config.connect.clone(),
            connect_attempts: VecDeque::new(),
        }
    }

    /// Issues a single-use authorization code.
    pub(crate) fn issue_code(
        &mut self,
        grant: Grant,
        sub: &str,
        code_challenge: Option<String>,
        now: Instant,
    ) -> String {
        let code = mint(
            TokenKind::AuthorizationCode,
            sub,
            &grant.client_id,
            &grant.scopes,
            AUTHORIZATION_CODE_TTL,
        );
        self.issued_secrets.push(code.clone());
        self.codes.insert(
            code.clone(),
            CodeGrant {
                grant,
                code_challenge,
                expires_at: deadline(now, AUTHORIZATION_CODE_TTL),
                used: false,
            },
        );
        code
    }

    /// Exchanges a code. A code is consumed on its first presentation, even
    /// if the PKCE check then fails.
    pub(crate) fn redeem_code(
        &mut self,
        code: &str,
        client_id: &str,
        verifier: Option<&str>,
        now: Instant,
    ) -> Result<Grant, GrantError> {
        let entry = self.codes.get_mut(code).ok_or("invalid_code")?;
        if entry.used {
            return Err("expired_client_token");
        }
        entry.used = true;
        if expired(entry.expires_at, now) {
            return Err("expired_client_token");
        }
        if entry.grant.client_id != client_id {
            return Err("invalid_code");
        }
        if let Some(challenge) = &entry.code_challenge {
            match verifier {
                None => return Err("code_verifier_required"),
                Some(v) if pkce_challenge(v) != *challenge => return Err("invalid_code_verifier"),
                Some(_) => {}
            }
        }
        Ok(entry.grant.clone())
    }

    /// Issues a new access token and refresh token for `grant`.
    /// An access token alone (the JWT grant has no refresh token) and its
    /// lifetime in seconds.
    pub(crate) fn issue_access_token(
        &mut self,
        grant: Grant,
        sub: &str,
        now: Instant,
    ) -> (String, u64) {
        let ttl = self.access_token_ttl;
        let token = self.mint_access(sub, &grant, ttl);
        self.issued_secrets.push(token.clone());
        let expires_at = deadline(now, ttl);
        self.access_tokens.insert(
            token.clone(),
            TokenGrant {
                grant,
                expires_at,
                revoked: false,
                used: false,
            },
        );
        (token, ttl.as_secs())
    }

    /// A new access token, or the fixed one when a benchmark set it.
    fn mint_access(&self, sub: &str, grant: &Grant, ttl: Duration) -> String {
        match &self.fixed_access_token {
            Some(token) => token.clone(),
            None => mint(TokenKind::Access, sub, &grant.client_id, &grant.scopes, ttl),
        }
    }

    pub(crate) fn issue_tokens(&mut self, grant: Grant, sub: &str, now: Instant) -> TokenPair {
        let access_ttl = self.access_token_ttl;
        let refresh_ttl = self.refresh_token_ttl;
        let access_token = self.mint_access(sub, &grant, access_ttl);
        let (client, scopes) = (&grant.client_id, &grant.scopes);
        let refresh_token = mint(TokenKind::Refresh, sub, client, scopes, refresh_ttl);
        self.issued_secrets.push(access_token.clone());
        self.issued_secrets.push(refresh_token.clone());
        self.access_tokens.insert(
            access_token.clone(),
            TokenGrant {
                grant: grant.clone(),
                expires_at: deadline(now, access_ttl),
                revoked: false,
                used: false,
            },
        );
        self.refresh_tokens.insert(
            refresh_token.clone(),
            TokenGrant {
                grant,
                expires_at: deadline(now, refresh_ttl),
                revoked: false,
                used: false,
            },
        );
        TokenPair {
            access_token,
            refresh_token,
            expires_in: access_ttl.as_secs(),
        }
    }

    /// Exchanges a refresh token; it stops working afterwards (rotation).
    pub(crate) fn redeem_refresh(
        &mut self,
        token: &str,
        client_id: &str,
        now: Instant,
    ) -> Result<Grant, GrantError> {
        let entry = self
            .refresh_tokens
            .get_mut(token)
            .ok_or("invalid_refresh_token")?;
        if entry.grant.client_id != client_id {
            return Err("invalid_refresh_token");
        }
        if entry.used || entry.revoked || expired(entry.expires_at, now) {
            return Err("expired_client_token");
        }
        entry.used = true;
        Ok(entry.grant.clone())
    }

    /// The grant behind a live access token.
    pub(crate) fn access_grant(&self, token: &str, now: Instant) -> Option<&Grant> {
        self.access_tokens
            .get(token)
            .filter(|t| !t.revoked && !expired(t.expires_at, now))
            .map(|t| &t.grant)
    }

    pub(crate) fn active_access_tokens(&self) -> Vec<String> {
        let now = Instant::now();
        self.issued_secrets
            .iter()
            .filter(|s| self.access_grant(s, now).is_some())
            .cloned()
            .collect()
    }

    pub(crate) fn revoke_access_tokens(&mut self) {
        self.access_tokens
            .values_mut()
            .for_each(|t| t.revoked = true);
    }

    pub(crate) fn revoke_refresh_tokens(&mut self) {
        self.refresh_tokens
            .values_mut()
            .for_each(|t| t.revoked = true);
    }

    pub(crate) fn envelopes(&self, account_id: &str) -> &[Envelope] {
        self.envelopes
            .get(&account_id.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub(crate) fn find_envelope(&self, account_id: &str, envelope_id: &str) -> Option<&Envelope> {
        self.envelopes(account_id)
            .iter()
            .find(|e| e.id.eq_ignore_ascii_case(envelope_id))
    }

    pub(crate) fn add_envelope(&mut self, account_id: &str, envelope: Envelope) {
        self.envelopes
            .entry(account_id.to_ascii_lowercase())
            .or_default()
            .push(envelope);
    }

    /// Counts one request on REST host `host` under `key` (see
    /// `ratelimit::key_of`) and returns its rate-limit headers; a request
    /// past a limit is refused (and not counted against the limit).
    pub(crate) fn count_rest_request(
        &mut self,
        host: usize,
        key: &str,
        now: SystemTime,
    ) -> RateSnapshot {
        if let Some(n) = self.stats.rest_requests_per_host.get_mut(host) {
            *n += 1;
        }
        self.rates.take(key, unix_secs(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ratelimit::DEFAULT_HOURLY_LIMIT;

    fn state() -> State {
        State::new(&FakeConfig::demo_defaults(), 2)
    }

    fn grant() -> Grant {
        Grant {
            user: 0,
            client_id: "demo-integration-key".into(),
            scopes: vec!["signature".into()],
        }
    }

    #[test]
    fn code_is_single_use_and_checks_pkce() {
        let mut s = state();
        let now = Instant::now();
        let challenge = pkce_challenge("verifier-verifier-verifier-verifier-verifier");
        let code = s.issue_code(grant(), "sub", Some(challenge.clone()), now);
        assert_eq!(
            s.redeem_code(&code, "demo-integration-key", Some("wrong"), now)
                .unwrap_err(),
            "invalid_code_verifier"
        );
        // Consumed by the failed attempt.
        assert!(s
            .redeem_code(
                &code,
                "demo-integration-key",
                Some("verifier-verifier-verifier-verifier-verifier"),
                now
            )
            .is_err());
        let code = s.issue_code(grant(), "sub", Some(challenge), now);
        assert!(s
            .redeem_code(&code, "demo-integration-key", None, now)
            .is_err());
        let code = s.issue_code(grant(), "sub", None, now);
        assert!(s.redeem_code(&code, "other", None, now).is_err());
    }

    #[test]
    fn code_expires() {
        let mut s = state();
        let now = Instant::now();
        let code = s.issue_code(grant(), "sub", None, now);
        let later = now + AUTHORIZATION_CODE_TTL;
        assert_eq!(
            s.redeem_code(&code, "demo-integration-key", None, later)
                .unwrap_err(),
            "expired_client_token"
        );
    }

    #[test]
    fn refresh_rotates_and_revocation_works() {
        let mut s = state();
        let now = Instant::now();
        let pair = s.issue_tokens(grant(), "sub", now);
        assert!(s.access_grant(&pair.access_token, now).is_some());
        assert!(s
            .redeem_refresh(&pair.refresh_token, "demo-integration-key", now)
            .is_ok());
        assert!(s
            .redeem_refresh(&pair.refresh_token, "demo-integration-key", now)
            .is_err());
        let pair2 = s.issue_tokens(grant(), "sub", now);
        s.revoke_refresh_tokens();
        assert!(s
            .redeem_refresh(&pair2.refresh_token, "demo-integration-key", now)
            .is_err());
        assert_eq!(s.active_access_tokens().len(), 2);
        s.revoke_access_tokens();
        assert!(s.access_grant(&pair.access_token, now).is_none());
        assert!(s.active_access_tokens().is_empty());
        // Tokens issued after a revocation work.
        let pair3 = s.issue_tokens(grant(), "sub", now);
        assert!(s.access_grant(&pair3.access_token, now).is_some());
    }

    #[test]
    fn access_token_expires() {
        let mut s = state();
        s.access_token_ttl = Duration::from_secs(10);
        let now = Instant::now();
        let pair = s.issue_tokens(grant(), "sub", now);
        assert_eq!(pair.expires_in, 10);
        assert!(s
            .access_grant(&pair.access_token, now + Duration::from_secs(10))
            .is_none());
    }

    #[test]
    fn rate_limit_counts_down() {
        let mut s = state();
        let now = SystemTime::now();
        let a = s.count_rest_request(1, "acct", now);
        let b = s.count_rest_request(1, "acct", now);
        assert_eq!(a.remaining, DEFAULT_HOURLY_LIMIT - 1);
        assert_eq!(b.remaining, DEFAULT_HOURLY_LIMIT - 2);
        assert_eq!(a.reset % 3600, 0);
        assert_eq!(s.stats.rest_requests_per_host, vec![0, 2]);
    }

    #[test]
    fn sample_envelopes_exist() {
        let s = state();
        let cfg = FakeConfig::demo_defaults();
        for account in &cfg.users[0].accounts {
            assert!(s
                .find_envelope(&account.account_id.to_uppercase(), SAMPLE_ENVELOPE_ID)
                .is_some());
        }
    }
}
