//! Sessions: what a logged-in user is (`model`), where sessions are kept
//! (`memory`) and how their DocuSign tokens are kept fresh (`refresh`).

pub mod memory;
pub mod model;
pub mod refresh;

pub use memory::{MemoryStore, SessionStore};
pub use model::{Account, Session, Tokens, User};
