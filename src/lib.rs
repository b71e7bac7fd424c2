//! docusign-gateway: an authentication gateway for the DocuSign eSignature
//! REST API, built on pingora.
//!
//! Module map: `config` (file + environment, validated once), `gateway` (the
//! request path), `auth` (login, callback, session, logout), `docusign` (the
//! OAuth client), `session` + `store` + `pending` (state), `cookies` + `keys`
//! (cookie crypto), `api_host` + `resolver` (where requests go), `server`
//! (pingora wiring), `demo` and `fake` (the built-in fake DocuSign).

pub mod api_host;
pub mod api_token;
pub mod auth;
pub mod config;
pub mod cookies;
pub mod demo;
pub mod docusign;
pub mod fake;
pub mod gateway;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod pages;
pub mod pending;
pub mod redis_backend;
pub mod refresh;
pub mod reply;
pub mod resolver;
pub mod return_to;
pub mod router;
pub mod secret;
pub mod server;
pub mod session;
pub mod store;
