//! Small leaf helpers used everywhere; nothing here knows the gateway.
//!
//! `secret` (a string that never prints), `time` (the injectable clock),
//! `ids` (random ids and log ids), `paths` (the paths the gateway answers),
//! `packed_token` (tokens held in their binary form).

pub mod ids;
pub mod packed_token;
pub mod paths;
pub mod secret;
pub mod time;
pub mod ttl_map;
