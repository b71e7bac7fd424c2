//! Step 5: the request as DocuSign gets it: the REST host's address, SNI and
//! `Host`, the session's bearer token, no gateway cookies, origin-form.

use std::time::Duration;

use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::{Error, ErrorType, Result};

use super::ctx::Forwarding;
use super::router;
use crate::crypto::cookies::CookieCodec;
use crate::web::request::cookie_header;

const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The peer of a forwarded request: its REST host, TLS with that host's SNI.
pub fn peer(f: &Forwarding) -> HttpPeer {
    let up = &f.upstream;
    let mut peer = HttpPeer::new(up.addr, up.host.tls, up.host.host.clone());
    peer.options.connection_timeout = Some(UPSTREAM_CONNECT_TIMEOUT);
    peer.options.total_connection_timeout = Some(UPSTREAM_CONNECT_TIMEOUT);
    peer.options.read_timeout = Some(UPSTREAM_READ_TIMEOUT);
    peer
}

/// Rewrites the request head for DocuSign.
pub fn rewrite(req: &mut RequestHeader, f: &Forwarding, cookies: &CookieCodec) -> Result<()> {
    let host = &f.upstream.host;
    let bearer = f.session.tokens.bearer().ok_or_else(|| {
        Error::explain(ErrorType::InternalError, "access token is no header value")
    })?;
    req.insert_header("Host", host.authority.as_str())?;
    req.insert_header("Authorization", bearer.clone())?;
    let kept = cookie_header(req).and_then(|c| cookies.strip_own(&c));
    match kept {
        Some(c) => req.insert_header("Cookie", c)?,
        None => {
            req.remove_header("Cookie");
        }
    }
    // Always origin-form (an absolute-form request target names no other
    // host upstream), under the base_uri's path if it has one. A target
    // that already is one (the common case) is sent as it came.
    // (pingora sends the request target as it arrived: look at those bytes.)
    let origin_form = req.raw_path().first() == Some(&b'/');
    if !(origin_form && host.path_prefix.is_empty()) {
        let uri = router::upstream_target(&host.path_prefix, &req.uri)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "bad upstream path"))?;
        req.set_uri(uri);
    }
    Ok(())
}
