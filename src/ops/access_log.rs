//! The access log line (`[log] access`): one a request, at `info`, target
//! [`TARGET`], written only where that target is enabled (`[log] level`,
//! `RUST_LOG`).
//!
//! It leaves `tracing`'s generic formatter for a fixed one: the line is
//! written into a reused per-thread buffer and appended to the log queue in
//! one piece, in the layout `tracing-subscriber` gives every other line (text
//! or JSON; the tests below hold the two equal). A generic event costs the
//! request path some microseconds; this a fraction of one. On a terminal
//! (coloured lines), and before [`install`] (tests of the library), the line
//! goes through `tracing` as any other.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::{info, Level};

use crate::config::LogFormat;
use crate::ops::log_queue::QueueWriter;
use crate::util::ids::LogId;

/// The access lines' `tracing` target.
pub const TARGET: &str = "docusign_gateway::access";

/// A per-thread buffer grows to the longest line; past this it is dropped
/// after use, so one huge path does not keep its memory.
const KEEP_BUFFER_BYTES: usize = 4096;

/// What one request's line says.
pub struct AccessLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub class: &'a str,
    pub upstream: &'a str,
    pub session: LogId,
    pub duration_ms: u64,
    pub error: &'a str,
}

struct Sink {
    writer: QueueWriter,
    format: LogFormat,
}

static SINK: OnceLock<Sink> = OnceLock::new();

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// Sends access lines straight to `writer` in `format` (which must be the
/// format of the subscriber writing there, without ANSI colours). Once, at
/// start; later calls change nothing.
pub fn install(writer: QueueWriter, format: LogFormat) {
    let _ = SINK.set(Sink { writer, format });
}

/// Writes `line`, if the access target is enabled at `info`.
pub fn write(line: &AccessLine) {
    if !tracing::enabled!(target: TARGET, Level::INFO) {
        return;
    }
    let Some(sink) = SINK.get() else {
        return through_tracing(line);
    };
    BUFFER.with(|buffer| {
        let Ok(mut buffer) = buffer.try_borrow_mut() else {
            return through_tracing(line);
        };
        buffer.clear();
        render(&mut buffer, sink.format, line);
        sink.writer.push(&buffer);
        if buffer.capacity() > KEEP_BUFFER_BYTES {
            *buffer = Vec::with_capacity(512);
        }
    });
}

fn through_tracing(line: &AccessLine) {
    info!(
        target: TARGET,
        method = %line.method,
        path = %line.path,
        status = line.status,
        class = line.class,
        upstream = line.upstream,
        session = %line.session,
        duration_ms = line.duration_ms,
        error = line.error,
        "request"
    );
}

/// `line` as `tracing-subscriber`'s `fmt` layer would write it, ending in a
/// newline.
fn render(out: &mut Vec<u8>, format: LogFormat, line: &AccessLine) {
    let mut stamp = [0u8; TIMESTAMP_MAX];
    let timestamp = timestamp(SystemTime::now(), &mut stamp);
    match format {
        LogFormat::Text => {
            // `&str` fields are written quoted (their `Debug`), `%` ones
            // (method, path, session) as they are, numbers plain.
            let mut numbers = itoa::Buffer::new();
            out.extend_from_slice(timestamp.as_bytes());
            out.extend_from_slice(b"  INFO ");
            out.extend_from_slice(TARGET.as_bytes());
            out.extend_from_slice(b": request method=");
            out.extend_from_slice(line.method.as_bytes());
            out.extend_from_slice(b" path=");
            out.extend_from_slice(line.path.as_bytes());
            out.extend_from_slice(b" status=");
            out.extend_from_slice(numbers.format(line.status).as_bytes());
            out.extend_from_slice(b" class=");
            quoted(out, line.class);
            out.extend_from_slice(b" upstream=");
            quoted(out, line.upstream);
            out.extend_from_slice(b" session=");
            out.extend_from_slice(line.session.hex(&mut [0; 12]).as_bytes());
            out.extend_from_slice(b" duration_ms=");
            out.extend_from_slice(numbers.format(line.duration_ms).as_bytes());
            out.extend_from_slice(b" error=");
            quoted(out, line.error);
            out.push(b'\n');
        }
        LogFormat::Json => {
            let json = Json {
                timestamp,
                level: "INFO",
                fields: Fields {
                    message: "request",
                    method: line.method,
                    path: line.path,
                    status: line.status,
                    class: line.class,
                    upstream: line.upstream,
                    session: line.session,
                    duration_ms: line.duration_ms,
                    error: line.error,
                },
                target: TARGET,
            };
            // Serialising strings and numbers into memory cannot fail.
            if serde_json::to_writer(&mut *out, &json).is_ok() {
                out.push(b'\n');
            }
        }
    }
}

/// `value` as its `Debug` writes it: quoted, escaped where needed.
pub(crate) fn quoted(out: &mut Vec<u8>, value: &str) {
    let plain = value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{value:?}");
    }
}

/// A timestamp's length (4-digit years), with room to spare.
pub(crate) const TIMESTAMP_MAX: usize = 32;

thread_local! {
    /// The current second's `YYYY-MM-DDTHH:MM:SS.`, computed once a second.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `now` as `tracing-subscriber`'s `SystemTime` timer writes it (UTC, to the
/// microsecond: `2026-11-28T22:15:03.123456Z`), in `buffer`. The date and
/// time of day are formatted once a second per thread; a time before 1970
/// is written as 1970.
pub(crate) fn timestamp(now: SystemTime, buffer: &mut [u8; TIMESTAMP_MAX]) -> &str {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let len = SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            *second = (secs, second_text(secs));
        }
        let prefix = second.1.as_bytes();
        let len = prefix.len().min(TIMESTAMP_MAX - 7);
        buffer[..len].copy_from_slice(&prefix[..len]);
        len
    });
    let mut micros = since.subsec_micros();
    for i in (len..len + 6).rev() {
        buffer[i] = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    buffer[len + 6] = b'Z';
    // Only ASCII was written.
    std::str::from_utf8(&buffer[..len + 7]).unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.` of a whole second (Unix time), in UTC. Past
/// the year 9999 (a clock that wrong) it is the last second of 9999.
fn second_text(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .filter(|t| t.year() <= 9999);
    let Some(t) = t else {
        return "9999-12-31T23:59:59.".to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[derive(Serialize)]
struct Json<'a> {
    timestamp: &'a str,
    level: &'a str,
    fields: Fields<'a>,
    target: &'a str,
}

#[derive(Serialize)]
struct Fields<'a> {
    message: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    class: &'a str,
    upstream: &'a str,
    #[serde(serialize_with = "display")]
    session: LogId,
    duration_ms: u64,
    error: &'a str,
}

fn display<S: serde::Serializer>(value: &LogId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::ids::log_id;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// What `tracing-subscriber` itself writes for `line`.
    fn by_tracing(format: LogFormat, line: &AccessLine) -> String {
        let out = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(out.clone())
            .with_ansi(false);
        let subscriber: Box<dyn tracing::Subscriber + Send + Sync> = match format {
            LogFormat::Text => Box::new(tracing_subscriber::registry().with(layer)),
            LogFormat::Json => Box::new(tracing_subscriber::registry().with(layer.json())),
        };
        tracing::subscriber::with_default(subscriber, || through_tracing(line));
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn rendered(format: LogFormat, line: &AccessLine) -> String {
        let mut out = Vec::new();
        render(&mut out, format, line);
        String::from_utf8(out).unwrap()
    }

    fn lines() -> Vec<AccessLine<'static>> {
        vec![
            AccessLine {
                method: "GET",
                path: "/restapi/v2.1/accounts/a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f",
                status: 200,
                class: "proxied",
                upstream: "demo.docusign.net",
                session: log_id("a session id"),
                duration_ms: 12,
                error: "",
            },
            AccessLine {
                method: "POST",
                path: "/auth/we\"ird\\path",
                status: 0,
                class: "rejected",
                upstream: "-",
                session: LogId::default(),
                duration_ms: 0,
                error: "ConnectTimedout",
            },
            AccessLine {
                method: "GET",
                path: "/",
                status: 65535,
                class: "auth",
                upstream: "h\u{e9}\"st\t\u{200b}",
                session: log_id(""),
                duration_ms: u64::MAX,
                error: "\\ \u{7f}",
            },
        ]
    }

    /// The line without its timestamp, which differs by the time taken.
    fn text_after_timestamp(s: &str) -> &str {
        s.split_once(' ').map_or(s, |(_, rest)| rest)
    }

    #[test]
    fn text_lines_are_tracings_own() {
        for line in lines() {
            let ours = rendered(LogFormat::Text, &line);
            let theirs = by_tracing(LogFormat::Text, &line);
            assert_eq!(text_after_timestamp(&ours), text_after_timestamp(&theirs));
            assert!(ours.ends_with('\n') && ours.matches('\n').count() == 1);
        }
    }

    #[test]
    fn json_lines_are_tracings_own() {
        for line in lines() {
            let mut ours: serde_json::Value =
                serde_json::from_str(&rendered(LogFormat::Json, &line)).unwrap();
            let mut theirs: serde_json::Value =
                serde_json::from_str(&by_tracing(LogFormat::Json, &line)).unwrap();
            for v in [&mut ours, &mut theirs] {
                assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
                v["timestamp"] = serde_json::Value::Null;
            }
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn timestamps_are_utc_to_the_microsecond() {
        let at = |secs: u64, micros: u64| {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            timestamp(t, &mut [0; TIMESTAMP_MAX]).to_string()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_700_000_000, 123_456), "2023-11-14T22:13:20.123456Z");
        // The same second again (cached), then the next one.
        assert_eq!(at(1_700_000_000, 7), "2023-11-14T22:13:20.000007Z");
        assert_eq!(at(1_700_000_001, 999_999), "2023-11-14T22:13:21.999999Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(253_402_300_799, 5), "9999-12-31T23:59:59.000005Z");
        assert_eq!(at(253_402_300_800, 0), "9999-12-31T23:59:59.000000Z");
        assert_eq!(second_text(u64::MAX), "9999-12-31T23:59:59.");
        let before_1970 = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            timestamp(before_1970, &mut [0; TIMESTAMP_MAX]),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn timestamps_have_tracings_layout() {
        let ours = rendered(LogFormat::Text, &lines()[0]);
        let theirs = by_tracing(LogFormat::Text, &lines()[0]);
        let (a, b) = (ours.split(' ').next(), theirs.split(' ').next());
        assert_eq!(a.map(str::len), b.map(str::len), "{ours} / {theirs}");
    }
}
