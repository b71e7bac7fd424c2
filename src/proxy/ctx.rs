//! What one request learns on its way through the gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::router::Route;
use crate::config::Api;
use crate::docusign::api_host::ApiHost;
use crate::session::Session;
use crate::web::reply::Reply;

/// Where a forwarded request goes.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub host: Arc<ApiHost>,
}

/// The one replay after DocuSign answered 401.
#[derive(Debug, Default)]
pub enum Replay {
    /// No 401 seen yet.
    #[default]
    NotTried,
    /// The token was refreshed and the error being returned asks pingora to
    /// send the request again.
    Pending,
    /// Replayed, or decided against (DocuSign's 401 passes through).
    Done,
    /// Forwarding ends with this answer of ours (session ended, DocuSign
    /// unavailable).
    Failed(Reply),
}

/// A request that is being forwarded: for whom, where, with which tokens.
pub struct Forwarding {
    /// The session as it was when its tokens were chosen; after a refresh,
    /// the refreshed one.
    pub session: Arc<Session>,
    pub upstream: Upstream,
    /// The API the path belongs to.
    pub api: Api,
    /// The account the call is for (as the session names it); none for an
    /// organization's call (Admin, platform).
    pub account_id: Option<String>,
    /// The client is a browser (decides between redirect and 401).
    pub browser: bool,
}

pub struct RequestCtx {
    pub started: Instant,
    pub route: Route,
    pub forwarding: Option<Forwarding>,
    pub replay: Replay,
    /// When the current upstream attempt was sent.
    pub upstream_sent: Option<Instant>,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            route: Route::NotFound,
            forwarding: None,
            replay: Replay::NotTried,
            upstream_sent: None,
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
