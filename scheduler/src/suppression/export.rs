//! Reading the suppression lists a page at a time (`GET /v1/suppressions`) or whole
//! (`GET /v1/suppressions/export`). Both walk the two hashes with HSCAN, `all` entries first,
//! then unsubscribes, and show each scope of an address as its own item.

use bytes::Bytes;
use serde_json::Value;
use sluice_shared::{
    keys,
    redis::{Conn, Pool, StoreResult},
    suppression,
};
use tokio::sync::mpsc;

use crate::csv::Format;

/// Which entries to show: one scope (None: every scope), one list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub scope: Option<String>,
    pub list: Option<String>,
}

impl Filter {
    fn shows(&self, item: &Value) -> bool {
        self.scope.as_ref().is_none_or(|s| item["scope"] == s.as_str())
            && self.list.as_ref().is_none_or(|l| item["list"] == l.as_str())
    }

    /// Whether the unsubscribed hash can hold what it shows.
    fn reads_unsubscribes(&self) -> bool {
        self.scope.as_deref() != Some("all")
    }
}

/// Where a walk stands: the hash (`a` the suppression list, `u` unsubscribes) and its HSCAN
/// cursor. Written `a:123`; a bare number (the form before scopes) is a cursor in `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    unsubscribes: bool,
    at: u64,
}

impl Cursor {
    pub const START: Cursor = Cursor { unsubscribes: false, at: 0 };

    pub fn parse(text: &str) -> Option<Cursor> {
        let (unsubscribes, at) = match text.split_once(':') {
            Some(("a", n)) => (false, n),
            Some(("u", n)) => (true, n),
            None => (false, text),
            _ => return None,
        };
        Some(Cursor { unsubscribes, at: at.parse().ok()? })
    }

    pub fn text(self) -> String {
        format!("{}:{}", if self.unsubscribes { "u" } else { "a" }, self.at)
    }
}

/// One HSCAN step from `cursor` of about `count` addresses: the items shown, and the next
/// cursor (None at the end).
pub async fn page(
    conn: &mut Conn,
    filter: &Filter,
    cursor: Cursor,
    count: usize,
) -> StoreResult<(Vec<Value>, Option<Cursor>)> {
    let mut cursor = cursor;
    if !cursor.unsubscribes && filter.scope.as_deref().is_some_and(|s| s != "all") {
        cursor = Cursor { unsubscribes: true, at: 0 };
    }
    let key = if cursor.unsubscribes { keys::unsubscribed() } else { keys::suppressed() };
    let (next, pairs): (u64, Vec<(String, String)>) =
        redis::cmd("HSCAN").arg(key).arg(cursor.at).arg("COUNT").arg(count).query_async(conn).await?;
    let items = pairs
        .iter()
        .flat_map(|(name, stored)| {
            let (all, unsubscribed) =
                if cursor.unsubscribes { (None, Some(stored.as_str())) } else { (Some(stored.as_str()), None) };
            suppression::entries(name, all, unsubscribed)
        })
        .filter(|item| filter.shows(item))
        .collect();
    let next = match (next, cursor.unsubscribes) {
        (0, true) => None,
        (0, false) if filter.reads_unsubscribes() => Some(Cursor { unsubscribes: true, at: 0 }),
        (0, false) => None,
        (n, u) => Some(Cursor { unsubscribes: u, at: n }),
    };
    Ok((items, next))
}

/// Addresses read per HSCAN step of an export.
const STEP: usize = 1000;
/// Chunks buffered between Redis and the client.
const BUFFERED: usize = 4;

pub const CSV_HEADER: &str = "email,scope,list,reason,source,created_at,campaign,detail\r\n";

/// Starts exporting what `filter` shows; the receiver yields the body's chunks. An error
/// part-way ends the stream with an error, so the client sees a cut-off body.
pub fn start(pool: Pool, filter: Filter, format: Format) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (send, receive) = mpsc::channel(BUFFERED);
    tokio::spawn(async move {
        if let Err(e) = pump(&pool, &filter, format, &send).await {
            tracing::warn!(error = %e, "suppression export cut off");
            let _ = send.send(Err(std::io::Error::other("suppression export failed"))).await;
        }
    });
    receive
}

async fn pump(
    pool: &Pool,
    filter: &Filter,
    format: Format,
    send: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    if format == Format::Csv && send.send(Ok(Bytes::from_static(CSV_HEADER.as_bytes()))).await.is_err() {
        return Ok(());
    }
    let mut cursor = Some(Cursor::START);
    while let Some(at) = cursor {
        let (items, next) = page(&mut conn, filter, at, STEP).await?;
        cursor = next;
        let mut chunk = String::new();
        for item in &items {
            match format {
                Format::Ndjson => {
                    chunk.push_str(&item.to_string());
                    chunk.push('\n');
                }
                Format::Csv => csv_line(&mut chunk, item),
            }
        }
        if !chunk.is_empty() && send.send(Ok(Bytes::from(chunk))).await.is_err() {
            return Ok(()); // the client went away
        }
    }
    Ok(())
}

fn csv_line(out: &mut String, item: &Value) {
    let text = |k: &str| item[k].as_str().unwrap_or_default().to_string();
    let detail = if item["detail"].is_null() { String::new() } else { item["detail"].to_string() };
    let cells = ["email", "scope", "list", "reason", "source", "created_at", "campaign"].map(text);
    let line: Vec<String> = cells.iter().chain([&detail]).map(|c| crate::csv::cell(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_old_ones_still_work() {
        let c = Cursor { unsubscribes: true, at: 42 };
        assert_eq!(Cursor::parse(&c.text()), Some(c));
        assert_eq!(Cursor::parse("17"), Some(Cursor { unsubscribes: false, at: 17 }));
        assert_eq!(Cursor::parse("x:1"), None);
        assert_eq!(Cursor::parse("u:-1"), None);
    }

    #[test]
    fn an_export_line_imports_back_as_it_was() {
        let item = serde_json::json!({"email": "+1@x.example", "scope": "list", "list": "news", "reason": "a, \"b\"",
            "source": "unsubscribed", "created_at": "2026-12-04T10:00:00.000Z", "detail": {"method": "one-click"}});
        let mut line = String::new();
        csv_line(&mut line, &item);
        let columns = crate::suppression::import::Columns::from_header(CSV_HEADER.trim_end()).unwrap();
        let row = crate::suppression::import::csv_line(2, line.trim_end(), &columns).unwrap().unwrap();
        assert_eq!(row.name, "+1@x.example");
        assert_eq!(row.scope, suppression::Scope::List("news".into()));
        for k in ["reason", "source", "created_at", "detail"] {
            assert_eq!(row.entry[k], item[k], "{k}");
        }
    }
}
