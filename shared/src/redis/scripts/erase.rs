//! Erasing one address (`DELETE /v1/recipients/{email}`): from a campaign's or message's own
//! records, from a feed shard, and from the streams that may quote it (audit log, dead
//! letters, inbound reports, rejected intake entries). Each edits its keys in one atomic step.

use super::lua;
use crate::{
    keys,
    redis::{Conn, StoreResult},
};

lua!(SOURCE, "erase_source", Rewrite, &["meta", "events", "staged"]);
lua!(FEED, "erase_feed", Rewrite, &["feed"]);
lua!(STREAM_TEXT, "erase_stream_text", Rewrite, &["stream"]);

/// What erasing did to one campaign or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErased {
    /// Nothing changed: mail to the address is still in flight there.
    InFlight,
    Done {
        events: i64,
        staged: i64,
    },
}

/// Erases `address` (lower-case) from source `id`: its events deleted, its recipients not
/// yet expanded replaced by `token` (suppressed at expansion); refused while mail to it is in
/// flight there.
pub async fn source(conn: &mut Conn, id: &str, address: &str, token: &str) -> StoreResult<SourceErased> {
    let (in_flight, events, staged) = run_source(conn, id, address, token, "erase").await?;
    Ok(if in_flight { SourceErased::InFlight } else { SourceErased::Done { events, staged } })
}

/// Whether mail to `address` is in flight in source `id` (nothing changed).
pub async fn check_source(conn: &mut Conn, id: &str, address: &str) -> StoreResult<bool> {
    Ok(run_source(conn, id, address, "", "check").await?.0)
}

async fn run_source(
    conn: &mut Conn,
    id: &str,
    address: &str,
    token: &str,
    mode: &str,
) -> StoreResult<(bool, i64, i64)> {
    let mut invocation = SOURCE.invocation(|name| match name {
        "meta" => keys::campaign_meta(id),
        "events" => keys::campaign_events(id),
        "staged" => keys::campaign_staged(id),
        other => unreachable!("erase_source takes no {other}"),
    });
    let (in_flight, events, staged): (i64, i64, i64) =
        invocation.arg(address).arg(token).arg(mode).invoke_async(conn).await?;
    Ok((in_flight == 1, events, staged))
}

/// Redacts `address` in feed shard `shard`; how many events.
pub async fn feed(conn: &mut Conn, shard: usize, address: &str) -> StoreResult<i64> {
    Ok(FEED.on(&keys::feed(shard)).arg(address).invoke_async(conn).await?)
}

/// What to do with a stream entry that names the address.
#[derive(Debug, Clone, Copy)]
pub enum Naming<'a> {
    Delete,
    /// Replace the address in the field with this text, keeping the entry.
    Redact(&'a str),
}

/// Deletes or redacts the entries of `stream` whose `field` names `needle` (lower-case); how many.
pub async fn stream_text(
    conn: &mut Conn,
    stream: &str,
    field: &str,
    needle: &str,
    naming: Naming<'_>,
) -> StoreResult<i64> {
    let (mode, replacement) = match naming {
        Naming::Delete => ("delete", ""),
        Naming::Redact(with) => ("redact", with),
    };
    Ok(STREAM_TEXT.on(stream).arg(field).arg(needle).arg(mode).arg(replacement).invoke_async(conn).await?)
}
