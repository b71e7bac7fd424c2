//! eSignature resources of the fake REST hosts: account information,
//! envelopes (JSON in DocuSign's camelCase, counts as strings) and the
//! deterministic PDF served by document downloads.

use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::time::docusign_timestamp;
use super::FakeAccount;

/// An envelope that exists on every account from the start, so documents can
/// be downloaded without creating an envelope first.
pub const SAMPLE_ENVELOPE_ID: &str = "11111111-2222-3333-4444-555555555555";

/// A stored envelope.
#[derive(Clone, Debug)]
pub(crate) struct Envelope {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) email_subject: String,
    pub(crate) created: SystemTime,
}

impl Envelope {
    /// Builds an envelope from a `POST .../envelopes` body (a JSON object).
    /// `status` is the body's `status` if it is `created` or `sent`, else
    /// `sent`.
    pub(crate) fn from_request(id: String, body: &serde_json::Map<String, Value>) -> Self {
        let status = match body.get("status").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case("created") => "created",
            _ => "sent",
        };
        let email_subject = body
            .get("emailSubject")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Envelope {
            id,
            status: status.to_string(),
            email_subject,
            created: SystemTime::now(),
        }
    }

    /// The answer to `POST .../envelopes` (201).
    pub(crate) fn summary_json(&self) -> Value {
        json!({
            "envelopeId": self.id,
            "uri": format!("/envelopes/{}", self.id),
            "statusDateTime": docusign_timestamp(self.created),
            "status": self.status,
        })
    }

    /// The envelope as `GET .../envelopes/{id}` and the list render it.
    pub(crate) fn json(&self) -> Value {
        let at = docusign_timestamp(self.created);
        let mut v = json!({
            "envelopeId": self.id,
            "status": self.status,
            "emailSubject": self.email_subject,
            "envelopeUri": format!("/envelopes/{}", self.id),
            "documentsUri": format!("/envelopes/{}/documents", self.id),
            "recipientsUri": format!("/envelopes/{}/recipients", self.id),
            "createdDateTime": at,
            "lastModifiedDateTime": at,
            "statusChangedDateTime": at,
        });
        if let Value::Object(map) = &mut v {
            if self.status != "created" {
                map.insert("sentDateTime".into(), Value::String(at.clone()));
            }
            if self.status == "completed" {
                map.insert("completedDateTime".into(), Value::String(at));
            }
        }
        v
    }
}

/// `GET .../envelopes`: DocuSign writes the counts as strings.
pub(crate) fn list_json(envelopes: &[Envelope]) -> Value {
    let n = envelopes.len();
    json!({
        "resultSetSize": n.to_string(),
        "totalSetSize": n.to_string(),
        "startPosition": "0",
        "endPosition": (n as i64 - 1).to_string(),
        "envelopes": envelopes.iter().map(Envelope::json).collect::<Vec<_>>(),
    })
}

/// `GET /restapi/{v}/accounts/{id}`.
pub(crate) fn account_json(account: &FakeAccount, envelopes_sent: usize) -> Value {
    let now = docusign_timestamp(SystemTime::now());
    json!({
        "accountIdGuid": account.account_id,
        "accountName": account.account_name,
        "planName": "DEVELOPER",
        "currentPlanId": "c2b6a1f6-6bba-4a91-8b4a-3b9e5f0d7c11",
        "planStartDate": "2024-01-01T00:00:00.0000000Z",
        "planEndDate": "2099-01-01T00:00:00.0000000Z",
        "billingPeriodStartDate": "2024-01-01T00:00:00.0000000Z",
        "billingPeriodEndDate": "2099-01-01T00:00:00.0000000Z",
        "billingPeriodEnvelopesSent": envelopes_sent.to_string(),
        "billingPeriodEnvelopesAllowed": "unlimited",
        "canUpgrade": "false",
        "canCancelRenewal": "false",
        "envelopeSendingBlocked": "false",
        "envelopeUnitPrice": "$0.00",
        "currencyCode": "USD",
        "connectPermission": "full",
        "distributorCode": "DEVCENTER_DEMO_APRIL2013",
        "seatsAllowed": "unlimited",
        "seatsInUse": "1",
        "createdDate": "2024-01-01T00:00:00.0000000Z",
        "isDowngrade": "false",
        "billingProfile": "web",
        "allowTransactionRooms": "false",
        "suspensionStatus": "",
        "lastModifiedDate": now,
    })
}

const PDF_HEAD: &[u8] = b"%PDF-1.4\n";
const PDF_TAIL: &[u8] = b"%%EOF\n";

/// A deterministic document of exactly `size` bytes (or just head and tail
/// when `size` is smaller than both): `%PDF-1.4\n`, a repeating pattern
/// derived from the envelope and document ids, `%%EOF\n`.
pub(crate) fn document_pdf(envelope_id: &str, document_id: &str, size: usize) -> Bytes {
    let digest = Sha256::digest(format!("{envelope_id}/{document_id}").as_bytes());
    let line: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let line = format!("% {line}\n");
    let fill = size.saturating_sub(PDF_HEAD.len() + PDF_TAIL.len());
    let mut out = Vec::with_capacity(PDF_HEAD.len() + fill + PDF_TAIL.len());
    out.extend_from_slice(PDF_HEAD);
    out.extend(line.as_bytes().iter().copied().cycle().take(fill));
    out.extend_from_slice(PDF_TAIL);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_has_exact_size_and_is_deterministic() {
        let a = document_pdf("env", "1", 3 * 1024 * 1024);
        assert_eq!(a.len(), 3 * 1024 * 1024);
        assert!(a.starts_with(b"%PDF-1.4\n"));
        assert!(a.ends_with(b"%%EOF\n"));
        assert_eq!(a, document_pdf("env", "1", 3 * 1024 * 1024));
        assert_ne!(a, document_pdf("env2", "1", 3 * 1024 * 1024));
        assert_eq!(document_pdf("env", "1", 0).len(), 15);
    }

    #[test]
    fn envelope_status_from_body() {
        let body = json!({"status": "created", "emailSubject": "Hi"});
        let e = Envelope::from_request("id".into(), body.as_object().unwrap());
        assert_eq!(e.status, "created");
        assert_eq!(e.summary_json()["uri"], "/envelopes/id");
        let body = json!({"status": "voided"});
        let e = Envelope::from_request("id".into(), body.as_object().unwrap());
        assert_eq!(e.status, "sent");
        let list = list_json(&[e]);
        assert_eq!(list["resultSetSize"], "1");
        assert_eq!(list["endPosition"], "0");
    }
}
