//! Entries of the suppression list (`sluice:suppressed`, lower-cased address -> JSON), made the
//! same way wherever an address is suppressed: the API, bounces, unsubscribes, complaints.

use serde_json::{Value, json};

/// The JSON stored for one address: why, by what, when, and (when known) the campaign and
/// the evidence (an SMTP reply, a report).
pub fn entry(reason: &str, source: &str, campaign: Option<&str>, detail: Option<&Value>) -> Value {
    let mut e = json!({
        "reason": reason,
        "source": source,
        "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(c) = campaign {
        e["campaign"] = c.into();
    }
    if let Some(d) = detail {
        e["detail"] = d.clone();
    }
    e
}
