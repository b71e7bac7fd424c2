//! HTTP helpers below the request path: [`reply::Reply`], the plain value
//! the gateway answers with, `request`, what a request says about itself,
//! and the client connections' limits (`conns`, `guarded`).

pub mod conns;
pub mod guarded;
pub mod reply;
pub mod request;
