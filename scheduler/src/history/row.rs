//! One event as a row of `events`, from the feed and back to the events API's JSON: the same
//! id, type, time, source, recipient and data as `GET /v1/events` shows.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::events::{self, Extras, feed::FeedEvent};

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub at: DateTime<Utc>,
    pub source: String,
    /// The sequence half of the source stream's entry id (`<ms>-<seq>`, ms being `at`).
    pub seq: i32,
    pub kind: String,
    /// Lower-cased.
    pub recipient: String,
    /// None when the event has no data (`{}`).
    pub data: Option<Value>,
}

impl Row {
    /// The row for a feed event; None for an entry id no stream could have made.
    pub fn from_feed(event: &FeedEvent) -> Option<Row> {
        let entry = &event.entry;
        let (ms, seq) = sluice_shared::redis::entry_id::parse(&entry.id)?;
        let at = DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
        let data =
            serde_json::from_str::<Value>(&entry.data).ok().filter(|d| d.as_object().is_none_or(|o| !o.is_empty()));
        Some(Row {
            at,
            source: event.source.clone(),
            seq: i32::try_from(seq).ok()?,
            kind: entry.kind.clone(),
            recipient: entry.recipient.to_lowercase(),
            data,
        })
    }

    /// The public id, `<source>:<ms>-<seq>`, also the cursor of a page that ends here.
    pub fn id(&self) -> String {
        format!("{}:{}-{}", self.source, self.at.timestamp_millis(), self.seq)
    }

    /// The event as the events API shows it, with its source's tags and metadata.
    pub fn to_json(&self, extras: &Extras) -> Value {
        let entry = events::Entry {
            id: format!("{}-{}", self.at.timestamp_millis(), self.seq),
            kind: self.kind.clone(),
            recipient: self.recipient.clone(),
            data: self.data.as_ref().map_or_else(|| "{}".to_string(), Value::to_string),
        };
        events::to_json(&self.source, &entry, extras)
    }
}

/// An event id split into its parts: (source, time, seq). None unless it is one.
pub fn parse_id(id: &str) -> Option<(String, DateTime<Utc>, i32)> {
    let (source, entry) = id.rsplit_once(':')?;
    if source.is_empty() {
        return None;
    }
    let (ms, seq) = sluice_shared::redis::entry_id::parse(entry)?;
    let at = DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
    Some((source.to_string(), at, i32::try_from(seq).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::feed::Cursor;

    fn feed_event(source: &str, id: &str, r: &str, data: &str) -> FeedEvent {
        let entry = events::Entry { id: id.into(), kind: "sent".into(), recipient: r.into(), data: data.into() };
        FeedEvent { shard: 0, cursor: Cursor { id: "1-0".into(), index: 0 }, n: 1, source: source.into(), entry }
    }

    #[test]
    fn a_row_shows_as_the_events_api_does() {
        let extras = Extras { tags: vec!["t".into()], metadata: Some(serde_json::json!({"k": 1})) };
        for data in ["{}", r#"{"code":250,"text":"Ok"}"#] {
            let event = feed_event("news", "1733300000123-7", "Ann@Example.COM", data);
            let row = Row::from_feed(&event).unwrap();
            assert_eq!((row.recipient.as_str(), row.seq), ("ann@example.com", 7));
            assert_eq!(row.data.is_none(), data == "{}");
            let mut expected = events::to_json("news", &event.entry, &extras);
            expected["recipient"] = "ann@example.com".into();
            assert_eq!(row.to_json(&extras), expected);
            assert_eq!(row.id(), "news:1733300000123-7");
            assert_eq!(parse_id(&row.id()), Some(("news".into(), row.at, 7)));
        }
        assert!(Row::from_feed(&feed_event("news", "nonsense", "a@b", "{}")).is_none());
        assert!(Row::from_feed(&feed_event("news", "1-99999999999", "a@b", "{}")).is_none());
        for bad in ["", "news", ":1-2", "news:1", "news:x-1", "news:1-99999999999"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
