//! The end of a request: the answer when forwarding failed, and the access
//! log line and request metrics.

use pingora::proxy::Session as Downstream;
use pingora::{Error, ErrorSource, ErrorType};

use super::ctx::{Replay, RequestCtx};
use super::router::Route;
use crate::ops::access_log::{self, AccessLine};
use crate::ops::metrics::{metrics, Label, RequestClass};
use crate::web::reply::Reply;

/// The status (0: none, the client is gone) and our reply for an error that
/// ended forwarding.
pub fn failure_reply(e: &Error, ctx: &mut RequestCtx) -> (u16, Option<Reply>) {
    if let Replay::Failed(reply) = std::mem::replace(&mut ctx.replay, Replay::Done) {
        return (reply.status, Some(reply));
    }
    let code = match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    };
    if code == 0 {
        return (0, None);
    }
    let (error, message) = match code {
        502 => (
            "upstream_error",
            "The DocuSign REST host could not be reached or failed.",
        ),
        504 => (
            "upstream_timeout",
            "The DocuSign REST host did not answer in time.",
        ),
        400..=499 => ("bad_request", "The request could not be read."),
        _ => (
            "internal_error",
            "The gateway failed to handle the request.",
        ),
    };
    (code, Some(Reply::error(code, error, message)))
}

/// The request counter, and the access log line (`[log] access`; target
/// `docusign_gateway::access`, at `info`).
pub fn log_request(downstream: &Downstream, e: Option<&Error>, ctx: &RequestCtx, access: bool) {
    let status = downstream
        .response_written()
        .map_or(0, |r| r.status.as_u16());
    let class = match ctx.route {
        Route::Api(_) if ctx.upstream_sent.is_some() => RequestClass::Proxied,
        Route::Api(_) | Route::NotFound => RequestClass::Rejected,
        Route::Health | Route::Ready => RequestClass::Health,
        _ => RequestClass::Auth,
    };
    let status_text = status_label(status);
    metrics().request(class, status_text);
    if let (RequestClass::Proxied, Some(f)) = (class, &ctx.forwarding) {
        metrics().forwarded(f.api, status_text);
    }
    if !access {
        return;
    }
    let req = downstream.req_header();
    let forwarding = ctx.forwarding.as_ref();
    access_log::write(&AccessLine {
        method: req.method.as_str(),
        path: req.uri.path(),
        status,
        class: class.as_str(),
        upstream: forwarding.map_or("-", |f| f.upstream.host.authority.as_str()),
        session: forwarding.map(|f| f.session.log_id()).unwrap_or_default(),
        duration_ms: ctx.started.elapsed().as_millis() as u64,
        error: e.map(|e| e.etype().as_str()).unwrap_or(""),
    });
}

/// The status as a metric label, without allocating for common codes.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        302 => "302",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        0 => "none",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
