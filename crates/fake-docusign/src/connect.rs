//! DocuSign Connect, the webhook side of DocuSign: listener settings, the
//! HMAC signature, Connect 2.0 JSON messages and the record of delivery
//! attempts. The delivery itself (queue, retries, HTTP) is in
//! [`delivery`].
//!
//! Like DocuSign, the fake signs the exact body bytes with each active HMAC
//! key (`X-DocuSign-Signature-1`, `-2`, ... plus
//! `X-Authorization-Digest: HMACSHA256`), treats anything but a 2xx answer
//! in time as a failure, and retries with growing intervals. A retry resends
//! exactly the same bytes.

pub(crate) mod delivery;

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::time::docusign_timestamp;

/// Default number of delivery attempts per message and listener.
pub const DEFAULT_CONNECT_MAX_ATTEMPTS: u32 = 5;
/// Default wait before the first retry; each later wait doubles.
pub const DEFAULT_CONNECT_FIRST_RETRY: Duration = Duration::from_secs(1);
/// Default time a listener has to answer one attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
pub const MAX_CONNECT_RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// `configurationId` of the messages [`event_body`] builds: the fake has
/// one Connect configuration per account, all with this id.
pub const FAKE_CONNECT_CONFIGURATION_ID: u64 = 10_501;

/// Attempts kept by the attempt record (the oldest are dropped first).
pub(crate) const MAX_RECORDED_ATTEMPTS: usize = 1000;

/// Where Connect delivers messages, and how.
#[derive(Clone)]
pub struct ConnectListener {
    /// The listener URL (`http` or `https`).
    pub url: String,
    /// Active HMAC secrets, in key order: one signature header each.
    pub hmac_keys: Vec<String>,
    /// Attempts per message, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each later retry, up to
    /// [`MAX_CONNECT_RETRY_INTERVAL`].
    pub first_retry: Duration,
    /// Time the listener has to answer one attempt.
    pub timeout: Duration,
}

impl ConnectListener {
    /// A listener with DocuSign-like defaults: 5 attempts, the first retry
    /// after 1 s, 10 s to answer.
    pub fn new(url: impl Into<String>, hmac_keys: Vec<String>) -> Self {
        ConnectListener {
            url: url.into(),
            hmac_keys,
            max_attempts: DEFAULT_CONNECT_MAX_ATTEMPTS,
            first_retry: DEFAULT_CONNECT_FIRST_RETRY,
            timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The wait after failed attempt number `attempt` (1-based):
    /// `first_retry`, then doubled each time, capped at
    /// [`MAX_CONNECT_RETRY_INTERVAL`].
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first_retry
            .saturating_mul(1u32 << doublings)
            .min(MAX_CONNECT_RETRY_INTERVAL)
    }

    /// Checks the URL is absolute `http(s)` with a host, and that at least
    /// one attempt is allowed.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let parsed = url::Url::parse(&self.url)
            .map_err(|e| format!("Connect listener URL {:?} is invalid: {e}", self.url))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(format!(
                "Connect listener URL {:?} must be http(s) with a host",
                self.url
            ));
        }
        if self.max_attempts == 0 {
            return Err("Connect listener max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

/// Debug output shows how many HMAC keys there are, never the keys.
impl fmt::Debug for ConnectListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectListener")
            .field("url", &self.url)
            .field(
                "hmac_keys",
                &format_args!("<{} redacted>", self.hmac_keys.len()),
            )
            .field("max_attempts", &self.max_attempts)
            .field("first_retry", &self.first_retry)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One delivery attempt of one message to one listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectAttempt {
    /// The listener URL.
    pub url: String,
    /// What `send_connect` returned for the message.
    pub message_id: u64,
    /// 1 for the first delivery, 2 for the first retry, ...
    pub attempt: u32,
    /// The listener's answer, if it answered in time.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout, ...).
    pub error: Option<String>,
}

impl ConnectAttempt {
    /// A 2xx answer: the message is delivered.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// HMAC-SHA256 of `body` keyed by `key`'s UTF-8 bytes, base64 (standard
/// alphabet, padded): the value of an `X-DocuSign-Signature-N` header.
pub fn sign(key: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .expect("HMAC-SHA256 takes keys of any length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A Connect 2.0 message, fields in DocuSign's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    event: &'a str,
    api_version: &'a str,
    uri: String,
    retry_count: u32,
    configuration_id: u64,
    generated_date_time: String,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    account_id: &'a str,
    user_id: &'a str,
    envelope_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    envelope_summary: Option<Summary<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_subject: Option<&'a str>,
}

/// The ids a Connect message is about.
pub(crate) struct EventIds<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) user_id: &'a str,
    pub(crate) envelope_id: &'a str,
}

/// A Connect 2.0 JSON body for `event` (`envelope-sent`, ...). Envelope
/// events carry an `envelopeSummary` whose status is the event's suffix
/// (and `emailSubject` when known).
pub(crate) fn event_body(event: &str, ids: &EventIds<'_>, email_subject: Option<&str>) -> Vec<u8> {
    let summary = event
        .strip_prefix("envelope-")
        .filter(|status| !status.is_empty())
        .map(|status| Summary {
            status,
            email_subject,
        });
    let message = Message {
        event,
        api_version: "v2.1",
        uri: format!(
            "/restapi/v2.1/accounts/{}/envelopes/{}",
            ids.account_id, ids.envelope_id
        ),
        retry_count: 0,
        configuration_id: FAKE_CONNECT_CONFIGURATION_ID,
        generated_date_time: docusign_timestamp(SystemTime::now()),
        data: Data {
            account_id: ids.account_id,
            user_id: ids.user_id,
            envelope_id: ids.envelope_id,
            envelope_summary: summary,
        },
    };
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_vec(&message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn signs_like_the_reference_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        // = f7bc83f4...2d1a3cd8 (Wikipedia's example), in base64.
        assert_eq!(
            sign("key", b"The quick brown fox jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
        assert_ne!(sign("key", b"a\r\nb"), sign("key", b"a\nb"));
    }

    #[test]
    fn retry_intervals_double_up_to_the_cap() {
        let mut l = ConnectListener::new("http://127.0.0.1:9/hook", vec![]);
        assert_eq!(l.max_attempts, 5);
        assert_eq!(l.timeout, Duration::from_secs(10));
        let delays: Vec<u64> = (1..=8).map(|a| l.retry_delay(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(l.retry_delay(u32::MAX), MAX_CONNECT_RETRY_INTERVAL);
        l.first_retry = Duration::from_millis(50);
        assert_eq!(l.retry_delay(3), Duration::from_millis(200));
    }

    #[test]
    fn debug_never_shows_keys_and_urls_are_checked() {
        let l = ConnectListener::new(
            "https://example.com/hook",
            vec!["s3cr3t".into(), "k2".into()],
        );
        let debug = format!("{l:?}");
        assert!(
            !debug.contains("s3cr3t") && debug.contains("<2 redacted>"),
            "{debug}"
        );
        assert!(l.validate().is_ok());
        for bad in ["ftp://example.com/", "not a url", "unix:/tmp/sock"] {
            assert!(
                ConnectListener::new(bad, vec![]).validate().is_err(),
                "{bad}"
            );
        }
        let mut none = l.clone();
        none.max_attempts = 0;
        assert!(none.validate().is_err());
    }

    #[test]
    fn event_body_is_connect_2_json() {
        let ids = EventIds {
            account_id: "acct",
            user_id: "user",
            envelope_id: "env",
        };
        let body = event_body("envelope-sent", &ids, Some("Hi"));
        let text = String::from_utf8(body).expect("utf-8");
        assert!(
            text.starts_with(r#"{"event":"envelope-sent","apiVersion":"v2.1","#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["uri"], "/restapi/v2.1/accounts/acct/envelopes/env");
        assert_eq!(v["retryCount"], 0);
        assert_eq!(v["configurationId"], FAKE_CONNECT_CONFIGURATION_ID);
        assert!(v["generatedDateTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        assert_eq!(v["data"]["userId"], "user");
        assert_eq!(v["data"]["envelopeSummary"]["status"], "sent");
        assert_eq!(v["data"]["envelopeSummary"]["emailSubject"], "Hi");
        let other: Value =
            serde_json::from_slice(&event_body("recipient-sent", &ids, None)).expect("json");
        assert!(other["data"].get("envelopeSummary").is_none());
    }
}
