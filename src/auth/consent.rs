//! `GET /auth/consent?service=<name>`: sends the browser of a service's
//! DocuSign user (or an admin) to DocuSign's consent page for the
//! integration key with `scope=signature impersonation`, so that the JWT
//! grant is allowed. The state travels like a login's (the encrypted login
//! cookie, single use); the callback recognises it, creates no session and
//! says consent was given.

use pingora::http::RequestHeader;
use tracing::info;

use super::Auth;
use crate::web::reply::Reply;
use crate::web::request::query_param;

/// The scopes DocuSign's consent for the JWT grant asks for.
pub const CONSENT_SCOPE: &str = "signature impersonation";

/// `GET /auth/consent?service=<name>`: 302 to DocuSign's consent page.
pub fn consent(gw: &Auth, req: &RequestHeader) -> Reply {
    let name = query_param(req, "service").unwrap_or_default();
    if gw.services.config(&name).is_none() {
        return Reply::error(
            404,
            "unknown_service",
            "No [[service]] of this name is configured.",
        );
    }
    let (mut url, state, verifier) = gw.docusign.authorize_url();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "scope")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("scope", CONSENT_SCOPE);
    info!(service = %name, "service consent started");
    super::login::to_docusign(
        gw,
        req,
        &url,
        state,
        verifier,
        "/".into(),
        Some(name.clone()),
    )
}

/// The callback's answer once DocuSign redirected back with a code for a
/// consent state: no session, a page saying consent was given.
pub(super) fn given(service: &str, login_cookie: String) -> Reply {
    info!(service = %service, "service consent given");
    Reply::page(
        200,
        "Consent given",
        &format!(
            "DocuSign consent was given for service {service}: the gateway can now call DocuSign as its user. You can close this page."
        ),
        None,
    )
    .header("Set-Cookie", login_cookie)
    .no_store()
}
