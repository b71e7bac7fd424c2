//! docusign-gateway: an authentication gateway for the DocuSign eSignature
//! REST API, built on pingora.
//!
//! Dependencies run one way, top to bottom (checked by `tests/layering.rs`):
//!
//! - `server`: pingora wiring, the binary's entry points, the demo (with
//!   the fake DocuSign of the `fake-docusign` crate; only with the `fake`
//!   feature, on by default).
//! - `proxy`: the request path (pingora's `ProxyHttp`), routing, resolving.
//! - `auth`: login, callback, session info, tokens, logout; who is calling.
//!   `webhook` (its peer): DocuSign Connect messages, verified, stored, delivered.
//! - `session`: the session data, its store, keeping its tokens fresh.
//! - `docusign`: the OAuth client for DocuSign's account server; REST hosts.
//! - `crypto`, `web`, `ops`: cookie and token crypto; replies; metrics, logs.
//! - `config`: the configuration, validated once at start.
//! - `util`: leaf helpers (secrets, clock, ids, fixed paths).

pub mod auth;
pub mod config;
pub mod crypto;
pub mod docusign;
pub mod ops;
pub mod proxy;
pub mod server;
pub mod session;
pub mod util;
pub mod web;
pub mod webhook;
