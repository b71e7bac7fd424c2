//! DocuSign's account server as the gateway sees it: the OAuth client
//! (`client`) and the check of each account's REST host (`api_host`).

pub mod api_host;
mod client;

pub use client::*;
