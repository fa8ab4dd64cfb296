//! The feed's shape. The feed is [`keys::FEED_SHARDS`] streams; one entry of a shard holds a
//! run of about a thousand events of its sources: fields `n` (sequence number of its first
//! event in the shard) and `ev` (JSON array of `[source, entry id, type, recipient, data]`).
//! Packing keeps the feed to one Redis write per run instead of one per event, and its entries
//! of a like size, so a cap on entries bounds its memory. A place in one shard is a [`Cursor`]
//! (a feed entry id and the index of the last event read in it); a place in the whole feed is
//! a [`Position`], a cursor per shard. Reading merges the shards in order of feed entry ids
//! (the time each run was copied), and never past the point where a shard's page ended, so
//! pages come out in time order across shards and in exact order per source.

use std::collections::{BTreeMap, HashMap};

use sluice_shared::{
    keys,
    redis::{Conn, entry_id},
};

use super::Entry;

/// One event read from the feed.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub shard: usize,
    pub cursor: Cursor,
    /// Sequence number over its shard.
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

/// A place in the whole feed: the cursor of each shard read from (others: from their start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(pub BTreeMap<usize, Cursor>);

impl Position {
    /// `<shard>:<entry id>.<index>` per shard, comma-separated (the form API callers keep).
    pub fn parse(text: &str) -> Option<Position> {
        let mut shards = BTreeMap::new();
        for part in text.split(',') {
            let (shard, cursor) = part.split_once(':')?;
            let shard: usize = shard.parse().ok().filter(|s| *s < keys::FEED_SHARDS)?;
            shards.insert(shard, Cursor::parse(cursor)?);
        }
        Some(Position(shards))
    }

    /// Moves past `event`.
    pub fn advance(&mut self, event: &FeedEvent) {
        self.0.insert(event.shard, event.cursor.clone());
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(shard, cursor)| format!("{shard}:{cursor}")).collect();
        f.write_str(&parts.join(","))
    }
}

/// The fields of a feed entry for `events` (each with its source) numbered from `first`.
pub fn pack(first: i64, events: &[(String, Entry)]) -> Vec<(&'static str, String)> {
    let rows: Vec<[&str; 5]> = events
        .iter()
        .map(|(source, e)| [source.as_str(), e.id.as_str(), e.kind.as_str(), e.recipient.as_str(), e.data.as_str()])
        .collect();
    vec![("n", first.to_string()), ("ev", serde_json::to_string(&rows).expect("rows serialise"))]
}

/// The events of one feed entry of `shard`.
pub fn unpack(shard: usize, feed_id: &str, fields: HashMap<String, String>) -> Vec<FeedEvent> {
    let first: i64 = fields.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let rows: Vec<[String; 5]> = fields.get("ev").and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
    rows.into_iter()
        .enumerate()
        .map(|(k, [source, id, kind, recipient, data])| FeedEvent {
            shard,
            cursor: Cursor { id: feed_id.to_string(), index: k },
            n: first + k as i64,
            source,
            entry: Entry { id, kind, recipient, data },
        })
        .collect()
}

/// The events after `after`, reading up to `entries` feed entries of each shard (every shard in
/// one round trip), in time order across shards; and whether that reached the end of every
/// shard.
pub async fn read(conn: &mut Conn, after: &Position, entries: usize) -> redis::RedisResult<(Vec<FeedEvent>, bool)> {
    let mut pipe = redis::pipe();
    for shard in 0..keys::FEED_SHARDS {
        let start = after.0.get(&shard).map_or_else(|| "-".to_string(), |c| c.id.clone());
        pipe.cmd("XRANGE").arg(keys::feed(shard)).arg(start).arg("+").arg("COUNT").arg(entries);
    }
    let raw: Vec<RawEntries> = pipe.query_async(conn).await?;
    let pages = raw.into_iter().enumerate().map(|(shard, page)| (shard, after.0.get(&shard), page)).collect();
    Ok(merge(pages, entries))
}

/// The events of `shard` after `after` (from its start if None), reading up to `entries` feed
/// entries.
pub async fn read_shard(
    conn: &mut Conn,
    shard: usize,
    after: Option<&Cursor>,
    entries: usize,
) -> redis::RedisResult<Vec<FeedEvent>> {
    let start = after.map_or_else(|| "-".to_string(), |c| c.id.clone());
    let raw: RawEntries = redis::cmd("XRANGE")
        .arg(keys::feed(shard))
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(entries)
        .query_async(conn)
        .await?;
    let mut events = Vec::new();
    for (id, fields) in raw {
        let skip = after.filter(|c| c.id == id).map_or(0, |c| c.index + 1);
        events.extend(unpack(shard, &id, fields).into_iter().skip(skip));
    }
    Ok(events)
}

/// The place after the newest event of every shard, and each shard's sequence number there.
pub async fn tail(conn: &mut Conn) -> redis::RedisResult<(Position, BTreeMap<usize, i64>)> {
    let mut pipe = redis::pipe();
    for shard in 0..keys::FEED_SHARDS {
        pipe.cmd("XREVRANGE").arg(keys::feed(shard)).arg("+").arg("-").arg("COUNT").arg(1);
    }
    let raw: Vec<RawEntries> = pipe.query_async(conn).await?;
    let (mut position, mut seqs) = (Position::default(), BTreeMap::new());
    for (shard, page) in raw.into_iter().enumerate() {
        for (id, fields) in page {
            if let Some(last) = unpack(shard, &id, fields).last() {
                position.advance(last);
                seqs.insert(shard, last.n);
            }
        }
    }
    Ok((position, seqs))
}

/// Raw feed entries as XRANGE returns them.
type RawEntries = Vec<(String, HashMap<String, String>)>;

/// Merges shard pages (each in order) by feed entry id. A shard whose page was full may have
/// more just after it, so nothing later than the earliest such page's last entry is returned.
fn merge(pages: Vec<(usize, Option<&Cursor>, RawEntries)>, entries: usize) -> (Vec<FeedEvent>, bool) {
    let order = |id: &str| entry_id::parse(id).unwrap_or((u64::MAX, u64::MAX));
    let horizon = pages
        .iter()
        .filter(|(_, _, raw)| raw.len() == entries)
        .filter_map(|(_, _, raw)| raw.last())
        .map(|(id, _)| order(id))
        .min();
    let mut runs = Vec::new();
    for (shard, from, raw) in pages {
        for (id, fields) in raw {
            if horizon.is_some_and(|h| order(&id) > h) {
                break;
            }
            let skip = match from {
                Some(c) if c.id == id => c.index + 1,
                _ => 0,
            };
            runs.push((order(&id), shard, unpack(shard, &id, fields).into_iter().skip(skip).collect::<Vec<_>>()));
        }
    }
    runs.sort_by_key(|(at, shard, _)| (*at, *shard));
    (runs.into_iter().flat_map(|(_, _, events)| events).collect(), horizon.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_cursors_parse() {
        let e = |id: &str, t: &str| Entry { id: id.into(), kind: t.into(), recipient: "a@b".into(), data: "{}".into() };
        let run = [("news".to_string(), e("1-0", "queued")), ("msg_1".to_string(), e("2-0", "sent"))];
        let fields: HashMap<String, String> = pack(41, &run).into_iter().map(|(k, v)| (k.into(), v)).collect();
        let events = unpack(2, "9-1", fields);
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].source.as_str(), events[1].source.as_str()), ("news", "msg_1"));
        assert_eq!((events[1].n, events[1].entry.id.as_str(), events[1].entry.kind.as_str()), (42, "2-0", "sent"));
        assert_eq!(events[0].entry, run[0].1, "every field round-trips");
        assert_eq!(events[1].cursor.to_string(), "9-1.1");
        assert_eq!(Cursor::parse("9-1.1"), Some(events[1].cursor.clone()));
        assert_eq!(Cursor::parse("9-1"), None);
        assert_eq!(Cursor::parse("x.1"), None);
        let mut at = Position::default();
        at.advance(&events[1]);
        assert_eq!(at.to_string(), "2:9-1.1");
        assert_eq!(Position::parse("2:9-1.1,5:7-0.0").map(|p| p.0.len()), Some(2));
        for bad in ["9-1.1", "8:9-1.1", "x:9-1.1", "2:9-1"] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
    }

    fn page(ids: &[&str]) -> RawEntries {
        let one = |id: &str| {
            let run = [("news".to_string(), Entry { id: format!("{id}e"), ..Entry::default() })];
            (id.to_string(), pack(1, &run).into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        ids.iter().map(|id| one(id)).collect()
    }

    #[test]
    fn shards_merge_in_time_order_up_to_the_earliest_full_page() {
        // Shard 0's page is full (2 entries): it may have more after 5-0, so shard 1's 7-0
        // waits for a later page; 3-0 fits in between.
        let (events, end) = merge(vec![(0, None, page(&["1-0", "5-0"])), (1, None, page(&["3-0", "7-0"]))], 2);
        let order: Vec<(usize, &str)> = events.iter().map(|e| (e.shard, e.cursor.id.as_str())).collect();
        assert_eq!(order, [(0, "1-0"), (1, "3-0"), (0, "5-0")]);
        assert!(!end);
        let (events, end) = merge(vec![(0, None, page(&["1-0"])), (1, None, page(&["3-0"]))], 2);
        assert_eq!(events.len(), 2);
        assert!(end);
    }
}
