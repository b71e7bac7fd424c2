//! DocuSign's account server as the gateway sees it: the OAuth client
//! (`client`, reading answers through `bounded`, which caps their size) and
//! the check of each account's REST host (`api_host`).

pub mod api_host;
pub mod bounded;
mod client;

pub use client::*;
