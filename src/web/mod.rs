//! HTTP helpers below the request path: [`reply::Reply`], the plain value
//! the gateway answers with, and `request`, what a request says about itself.

pub mod reply;
pub mod request;
