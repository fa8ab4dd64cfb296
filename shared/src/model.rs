//! The data that flows through Sluice: campaign specs, queued jobs, outcomes, counts.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Lifecycle of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CampaignStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "draft" => CampaignStatus::Draft,
            "scheduled" => CampaignStatus::Scheduled,
            "running" => CampaignStatus::Running,
            "paused" => CampaignStatus::Paused,
            "completed" => CampaignStatus::Completed,
            "cancelled" => CampaignStatus::Cancelled,
            other => return Err(format!("unknown campaign status {other:?}")),
        })
    }
}

/// The sender of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Which stored template (and version) a campaign or message was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub id: String,
    pub version: u64,
}

/// Open and click tracking, opt-in per campaign or message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracking {
    #[serde(default)]
    pub opens: bool,
    #[serde(default)]
    pub clicks: bool,
}

impl Tracking {
    pub fn is_off(&self) -> bool {
        !self.opens && !self.clicks
    }
}

/// A campaign (or transactional message) as stored after validation: immutable once created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub from: Sender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// When to start, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at_ms: Option<i64>,
    /// Labels echoed in every event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Caller's JSON object echoed in every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// A transactional message's recipients, in index order (campaigns keep theirs apart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,
    #[serde(default, skip_serializing_if = "Tracking::is_off")]
    pub tracking: Tracking,
    /// A message submitted over SMTP: the client's MIME, sent as given instead of rendered
    /// (stored as base64; no request body can set it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "mime_base64")]
    pub mime: Option<Vec<u8>>,
    /// The mailing list a campaign belongs to: an unsubscribe through it applies to this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// The charset of the subject, the From name and the text part; unset: the destination's
    /// default (`limits`), else UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<Charset>,
    /// The language of the pages recipients reach (the unsubscribe page), e.g. `ja`, `en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Send to addresses the sunset policy calls dormant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_dormant: bool,
}

/// The charset a message's headers and text part are written in. HTML is always UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charset {
    #[serde(rename = "utf-8")]
    Utf8,
    /// RFC 1468, for the Japanese carriers' older paths; falls back to UTF-8 for a message
    /// holding a character outside JIS X 0208.
    #[serde(rename = "iso-2022-jp")]
    Iso2022Jp,
}

impl Charset {
    pub fn parse(text: &str) -> Option<Charset> {
        match text.to_ascii_lowercase().as_str() {
            "utf-8" => Some(Charset::Utf8),
            "iso-2022-jp" => Some(Charset::Iso2022Jp),
            _ => None,
        }
    }
}

/// What expansion needs of a campaign besides its recipients, stored apart from the spec
/// (meta field `expand`) so that every chunk reads it without the whole spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expansion {
    /// The campaign's list: an unsubscribe from another list does not keep mail from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Send to dormant addresses too (the sunset policy skips them otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_dormant: bool,
}

impl Expansion {
    pub fn of(spec: &CampaignSpec) -> Expansion {
        Expansion { list: spec.list.clone(), include_dormant: spec.include_dormant }
    }

    /// As stored: `""` for the defaults.
    pub fn to_stored(&self) -> String {
        if *self == Expansion::default() { String::new() } else { serde_json::to_string(self).expect("serialises") }
    }

    /// As stored; the defaults for `""` (campaigns made before the field existed).
    pub fn from_stored(text: &str) -> Result<Expansion, String> {
        if text.is_empty() {
            return Ok(Expansion::default());
        }
        serde_json::from_str(text).map_err(|e| format!("expansion options {text:?}: {e}"))
    }
}

/// `CampaignSpec::mime` in JSON: base64, since a MIME message need not be UTF-8.
mod mime_base64 {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mime: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match mime {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom)).transpose()
    }
}

/// Per-campaign counters. At any moment
/// `total = suppressed + dormant + queued + deferred + sent + bounced + failed + cancelled`
/// once every accepted recipient has been expanded (`staged` counts the rest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u64,
    pub staged: u64,
    pub suppressed: u64,
    /// Skipped as dormant by the sunset policy (`[hygiene]`).
    pub dormant: u64,
    pub queued: u64,
    pub deferred: u64,
    pub sent: u64,
    pub bounced: u64,
    pub failed: u64,
    pub cancelled: u64,
    // What happened after the send (not buckets of `total`): every time, and once per recipient.
    pub opened: u64,
    pub opened_unique: u64,
    pub clicked: u64,
    pub clicked_unique: u64,
    /// Unsubscribes through this campaign's links.
    pub unsubscribed: u64,
    pub unsubscribed_unique: u64,
    /// Complaints (ARF reports).
    pub complained: u64,
    pub complained_unique: u64,
    /// Bounce reports (DSNs) that arrived after the relay accepted the message (once each).
    pub bounced_async: u64,
}

impl Counts {
    /// Builds counts from a Redis hash (missing fields are zero).
    pub fn from_pairs(pairs: &[(String, u64)]) -> Counts {
        let mut c = Counts::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "total" => &mut c.total,
                "staged" => &mut c.staged,
                "suppressed" => &mut c.suppressed,
                "dormant" => &mut c.dormant,
                "queued" => &mut c.queued,
                "deferred" => &mut c.deferred,
                "sent" => &mut c.sent,
                "bounced" => &mut c.bounced,
                "failed" => &mut c.failed,
                "cancelled" => &mut c.cancelled,
                "opened" => &mut c.opened,
                "opened_unique" => &mut c.opened_unique,
                "clicked" => &mut c.clicked,
                "clicked_unique" => &mut c.clicked_unique,
                "unsubscribed" => &mut c.unsubscribed,
                "unsubscribed_unique" => &mut c.unsubscribed_unique,
                "complained" => &mut c.complained,
                "complained_unique" => &mut c.complained_unique,
                "bounced_async" => &mut c.bounced_async,
                _ => continue,
            };
            *slot = *v;
        }
        c
    }

    /// True when every recipient is accounted for by exactly one bucket.
    pub fn adds_up(&self) -> bool {
        self.total
            == self.staged
                + self.suppressed
                + self.dormant
                + self.queued
                + self.deferred
                + self.sent
                + self.bounced
                + self.failed
                + self.cancelled
    }
}

/// One recipient of one campaign, queued for one delivery attempt. Readable names in code;
/// one-letter names on the wire (stream fields, retry-set JSON, the Lua scripts), so every
/// job already in Redis stays readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Campaign (or message) id.
    #[serde(rename = "c")]
    pub campaign: String,
    /// Recipient index within the campaign.
    #[serde(rename = "i")]
    pub index: u64,
    /// Recipient address (normalised).
    #[serde(rename = "r")]
    pub recipient: String,
    /// Template variables as raw JSON (empty: none).
    #[serde(rename = "v", default, skip_serializing_if = "String::is_empty")]
    pub vars: String,
    /// Attempt number, 0 for the first.
    #[serde(rename = "a", default)]
    pub attempt: u32,
    /// When it was first queued, ms since the epoch (Redis clock); drives max age.
    #[serde(rename = "t", default)]
    pub queued_at_ms: u64,
    /// Set on a job parked while its campaign was paused (retry set members only).
    #[serde(rename = "p", default, skip_serializing_if = "std::ops::Not::not")]
    pub parked: bool,
}

impl Job {
    /// Field/value pairs for XADD.
    pub fn to_fields(&self) -> [(&'static str, String); 6] {
        [
            ("c", self.campaign.clone()),
            ("i", self.index.to_string()),
            ("r", self.recipient.clone()),
            ("v", self.vars.clone()),
            ("a", self.attempt.to_string()),
            ("t", self.queued_at_ms.to_string()),
        ]
    }

    /// Rebuilds a job from a stream entry's fields.
    pub fn from_fields(map: &std::collections::HashMap<String, redis::Value>) -> Result<Job, String> {
        let get = |k: &str| -> Result<String, String> {
            match map.get(k) {
                Some(v) => redis::from_redis_value_ref::<String>(v).map_err(|e| format!("field {k}: {e}")),
                None => Err(format!("field {k} is missing")),
            }
        };
        let num =
            |k: &str| -> Result<u64, String> { get(k)?.parse().map_err(|_| format!("field {k} is not a number")) };
        Ok(Job {
            campaign: get("c")?,
            index: num("i")?,
            recipient: get("r")?,
            vars: get("v").unwrap_or_default(),
            attempt: num("a")? as u32,
            queued_at_ms: num("t").unwrap_or(0),
            parked: false,
        })
    }

    /// The first job of staged recipient `index` of campaign `id`, queued at `now_ms`.
    pub fn from_staged(id: &str, index: u64, staged: Staged, now_ms: u64) -> Job {
        Job {
            campaign: id.to_string(),
            index,
            recipient: staged.recipient,
            vars: staged.vars.map(|v| serde_json::Value::Object(v).to_string()).unwrap_or_default(),
            attempt: 0,
            queued_at_ms: now_ms,
            parked: false,
        }
    }

    /// The JSON member this job is kept under in a campaign's retry set.
    pub fn member(&self) -> String {
        serde_json::to_string(self).expect("job serialises")
    }

    /// The destination domain (part after the last @).
    pub fn domain(&self) -> &str {
        self.recipient.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// A recipient accepted into a campaign, kept in its staged list until expansion as
/// `{"r": address, "v": {vars}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    #[serde(rename = "r")]
    pub recipient: String,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A job with the id of the stream entry it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub job: Job,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    Sent,
    Deferred,
    Bounced,
    Failed,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Sent => "sent",
            OutcomeKind::Deferred => "deferred",
            OutcomeKind::Bounced => "bounced",
            OutcomeKind::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs and staged recipients already in Redis (and the Lua scripts) use the one-letter
    /// names; the readable names exist in code only.
    #[test]
    fn records_keep_their_compact_names_on_the_wire() {
        let member = r#"{"c":"spring","i":7,"r":"ann@x.example","v":"{}","a":2,"t":99,"p":true}"#;
        let job: Job = serde_json::from_str(member).unwrap();
        assert_eq!(
            (job.campaign.as_str(), job.index, job.attempt, job.queued_at_ms, job.parked),
            ("spring", 7, 2, 99, true)
        );
        assert_eq!(job.member(), member);
        let fields: Vec<&str> = job.to_fields().iter().map(|(k, _)| *k).collect();
        assert_eq!(fields, ["c", "i", "r", "v", "a", "t"]);
        let staged: Staged = serde_json::from_str(r#"{"r":"bo@x.example","v":{"name":"Bo"}}"#).unwrap();
        assert_eq!(staged.recipient, "bo@x.example");
        assert_eq!(serde_json::to_string(&staged).unwrap(), r#"{"r":"bo@x.example","v":{"name":"Bo"}}"#);
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["draft", "scheduled", "running", "paused", "completed", "cancelled"] {
            assert_eq!(s.parse::<CampaignStatus>().unwrap().as_str(), s);
        }
        assert!("done".parse::<CampaignStatus>().is_err());
    }

    #[test]
    fn counts_add_up_only_when_every_bucket_is_counted() {
        let pairs: Vec<(String, u64)> = [("total", 10), ("suppressed", 1), ("sent", 7), ("bounced", 1), ("failed", 1)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let c = Counts::from_pairs(&pairs);
        assert!(c.adds_up());
        assert!(!Counts { sent: 1, ..c }.adds_up());
    }

    #[test]
    fn jobs_round_trip_through_stream_fields() {
        let job = Job {
            campaign: "c1".into(),
            index: 7,
            recipient: "a@b.example".into(),
            vars: "{\"n\":1}".into(),
            attempt: 2,
            queued_at_ms: 99,
            parked: false,
        };
        let map = job
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), redis::Value::BulkString(v.into_bytes())))
            .collect();
        assert_eq!(Job::from_fields(&map).unwrap(), job);
        assert_eq!(job.domain(), "b.example");
    }
}
