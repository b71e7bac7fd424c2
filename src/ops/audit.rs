//! The audit trail (`[log] audit`): one line per security event (a login,
//! a refused login, a logout, a token minted or revoked, a session ended, a
//! service token minted), at `info`, target [`TARGET`].
//!
//! Audit lines do not depend on `[log] level`: while `audit` is on they are
//! written whatever the level filter says (they go straight to the log
//! queue, as the access lines do), in the configured format. In JSON the
//! event's fields are at the top level of the object (`event`, `user`, ...)
//! and, as in every other line, under `fields` too. On a terminal (coloured
//! lines) and before [`install`] they go through `tracing` as any line.
//!
//! An event carries ids, names, domains and times, never a token, code,
//! cookie or secret: the constructors take no such value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::info;

use crate::config::LogFormat;
use crate::ops::access_log::{quoted, timestamp, TIMESTAMP_MAX};
use crate::ops::log_queue::QueueWriter;

/// The audit lines' `tracing` target.
pub const TARGET: &str = "docusign_gateway::audit";

struct Sink {
    writer: QueueWriter,
    format: LogFormat,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sends audit lines straight to `writer` in `format`. Once, at start.
pub fn install(writer: QueueWriter, format: LogFormat) {
    let _ = SINK.set(Sink { writer, format });
}

/// Whether audit lines are written (`[log] audit`, on unless turned off).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns audit lines on or off (`[log] audit`). Once, at start.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// One security event: its name and its fields, in order.
#[derive(Debug, Clone)]
pub struct Event {
    name: &'static str,
    fields: Vec<(&'static str, Value)>,
}

impl Event {
    pub fn new(name: &'static str) -> Event {
        Event {
            name,
            fields: Vec::with_capacity(8),
        }
    }

    /// Adds a field (a string, a number, a list: anything `serde_json` holds).
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Event {
        self.fields.push((key, value.into()));
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value of field `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn object(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("event".into(), Value::from(self.name));
        for (k, v) in &self.fields {
            map.insert((*k).into(), v.clone());
        }
        map
    }
}

/// Writes `event`, when audit lines are on.
pub fn emit(event: Event) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let Some(sink) = SINK.get() else {
        let fields = Value::Object(event.object()).to_string();
        info!(target: TARGET, event = event.name, %fields, "audit");
        return;
    };
    let mut line = Vec::with_capacity(256);
    render(&mut line, sink.format, &event, SystemTime::now());
    sink.writer.push(&line);
}

/// The line of `event`, ending in a newline, in the layout of the other
/// lines of `format`.
fn render(out: &mut Vec<u8>, format: LogFormat, event: &Event, now: SystemTime) {
    let mut stamp = [0u8; TIMESTAMP_MAX];
    let timestamp = timestamp(now, &mut stamp);
    match format {
        LogFormat::Text => {
            out.extend_from_slice(timestamp.as_bytes());
            out.extend_from_slice(b"  INFO ");
            out.extend_from_slice(TARGET.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(event.name.as_bytes());
            out.extend_from_slice(b" event=");
            out.extend_from_slice(event.name.as_bytes());
            for (k, v) in &event.fields {
                out.push(b' ');
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                match v {
                    Value::String(s) => quoted(out, s),
                    other => out.extend_from_slice(other.to_string().as_bytes()),
                }
            }
            out.push(b'\n');
        }
        LogFormat::Json => {
            let mut line = Map::new();
            line.insert("timestamp".into(), Value::from(timestamp));
            line.insert("level".into(), Value::from("INFO"));
            let mut fields = event.object();
            line.extend(fields.clone());
            fields.insert("message".into(), Value::from(event.name));
            line.insert("fields".into(), Value::Object(fields));
            line.insert("target".into(), Value::from(TARGET));
            if serde_json::to_writer(&mut *out, &Value::Object(line)).is_ok() {
                out.push(b'\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new("login")
            .with("user", "u-1")
            .with("email_domain", "example.com")
            .with("accounts", vec!["a1", "a2"])
    }

    #[test]
    fn json_lines_carry_the_event_at_the_top_and_under_fields() {
        let mut out = Vec::new();
        render(&mut out, LogFormat::Json, &event(), SystemTime::now());
        assert_eq!(out.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["event"], "login");
        assert_eq!(v["user"], "u-1");
        assert_eq!(v["accounts"][1], "a2");
        assert_eq!(v["target"], TARGET);
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["fields"]["event"], "login");
        assert_eq!(v["fields"]["message"], "login");
    }

    #[test]
    fn text_lines_name_the_target_and_every_field() {
        let mut out = Vec::new();
        render(&mut out, LogFormat::Text, &event(), SystemTime::now());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(" INFO docusign_gateway::audit: login event=login user=\"u-1\" email_domain=\"example.com\" accounts=[\"a1\",\"a2\"]\n"),
            "{text}"
        );
    }

    #[test]
    fn fields_are_readable() {
        let e = event();
        assert_eq!(e.name(), "login");
        assert_eq!(e.get("user"), Some(&Value::from("u-1")));
        assert_eq!(e.get("nothing"), None);
    }
}
