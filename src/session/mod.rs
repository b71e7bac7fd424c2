//! Sessions: what a logged-in user is (`model`, plain data), the interface of
//! the stores that keep them (`store`) and its conformance suite
//! (`conformance`), the in-memory store (`memory`), how their DocuSign
//! tokens are kept fresh (`refresh`), and DocuSign's rate limits as seen per
//! account and counted per session (`ratelimit`); `tokens` holds a session's
//! token pair compactly; `grants` the registry of a session's gateway
//! tokens.

pub mod conformance;
pub mod grants;
pub mod memory;
pub mod model;
pub mod ratelimit;
pub mod redis;
pub mod refresh;
pub mod store;
pub mod tokens;

pub use grants::{Added, TokenRecord};
pub use memory::MemoryStore;
pub use model::{Account, Session, Tokens, User};
pub use store::{Lease, SessionStore, StoreError, TokenSwap};
