//! The feed's shape. One feed entry holds a run of about a thousand events of any sources:
//! fields `n` (sequence number of its first event) and `ev` (JSON array of `[source, entry
//! id, type, recipient, data]`). Packing keeps the feed to one Redis write per run instead of
//! one per event, and its entries of a like size, so a cap on entries bounds its memory. A
//! position in the feed is a [`Cursor`]: a feed entry id and the index of the last event read
//! in it.

use std::collections::HashMap;

use sluice_shared::{keys, redis::Conn};

use super::Entry;

/// One event read from the feed.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub cursor: Cursor,
    /// Sequence number over the whole feed.
    pub n: i64,
    pub source: String,
    pub entry: Entry,
}

/// A position in the feed: after event `index` of feed entry `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub id: String,
    pub index: usize,
}

impl Cursor {
    /// `<entry id>.<index>`, the form API callers and webhook state keep.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (id, index) = text.rsplit_once('.')?;
        sluice_shared::redis::entry_id::is_valid(id).then_some(())?;
        Some(Cursor { id: id.to_string(), index: index.parse().ok()? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.id, self.index)
    }
}

/// The fields of a feed entry for `events` (each with its source) numbered from `first`.
pub fn pack(first: i64, events: &[(String, Entry)]) -> Vec<(&'static str, String)> {
    let rows: Vec<[&str; 5]> = events
        .iter()
        .map(|(source, (id, f))| {
            let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
            [source.as_str(), id.as_str(), get("type"), get("r"), get("data")]
        })
        .collect();
    vec![("n", first.to_string()), ("ev", serde_json::to_string(&rows).expect("rows serialise"))]
}

/// The events of one feed entry.
pub fn unpack(feed_id: &str, fields: HashMap<String, String>) -> Vec<FeedEvent> {
    let first: i64 = fields.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let rows: Vec<[String; 5]> = fields.get("ev").and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
    rows.into_iter()
        .enumerate()
        .map(|(k, [source, id, t, r, d])| {
            let entry: HashMap<String, String> =
                [("type".to_string(), t), ("r".to_string(), r), ("data".to_string(), d)].into();
            FeedEvent {
                cursor: Cursor { id: feed_id.to_string(), index: k },
                n: first + k as i64,
                source,
                entry: (id, entry),
            }
        })
        .collect()
}

/// The events of up to `entries` feed entries after `after` (from the start if None), and
/// whether that reached the end of the feed.
pub async fn read(
    conn: &mut Conn,
    after: Option<&Cursor>,
    entries: usize,
) -> redis::RedisResult<(Vec<FeedEvent>, bool)> {
    let start = after.map_or_else(|| "-".to_string(), |c| c.id.clone());
    let raw: Vec<(String, HashMap<String, String>)> =
        redis::cmd("XRANGE").arg(keys::feed()).arg(start).arg("+").arg("COUNT").arg(entries).query_async(conn).await?;
    let end = raw.len() < entries;
    let mut out = Vec::new();
    for (id, fields) in raw {
        let skip = match after {
            Some(c) if c.id == id => c.index + 1,
            _ => 0,
        };
        out.extend(unpack(&id, fields).into_iter().skip(skip));
    }
    Ok((out, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_cursors_parse() {
        let e = |id: &str, t: &str| -> Entry {
            (id.into(), [("type".into(), t.into()), ("r".into(), "a@b".into()), ("data".into(), "{}".into())].into())
        };
        let run = [("news".to_string(), e("1-0", "queued")), ("msg_1".to_string(), e("2-0", "sent"))];
        let fields: HashMap<String, String> = pack(41, &run).into_iter().map(|(k, v)| (k.into(), v)).collect();
        let events = unpack("9-1", fields);
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].source.as_str(), events[1].source.as_str()), ("news", "msg_1"));
        assert_eq!((events[1].n, events[1].entry.0.as_str(), events[1].entry.1["type"].as_str()), (42, "2-0", "sent"));
        assert_eq!(events[1].cursor.to_string(), "9-1.1");
        assert_eq!(Cursor::parse("9-1.1"), Some(events[1].cursor.clone()));
        assert_eq!(Cursor::parse("9-1"), None);
        assert_eq!(Cursor::parse("x.1"), None);
    }
}
