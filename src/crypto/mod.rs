//! The gateway's cryptography, each key derived from `session.secret` for
//! one purpose: `keys` (HKDF), `cookies` (encrypted session and login
//! cookies), `api_token` (signed gateway tokens) and
//! `scope` (what a scoped token may do).

pub mod api_token;
pub mod cookies;
pub mod keys;
pub mod scope;
