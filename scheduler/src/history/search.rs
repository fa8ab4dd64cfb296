//! Searching the history: events newest first, filtered by recipient, source, types and time,
//! paged by keyset (the last event's id is the next page's cursor), each shown as the events
//! API shows it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::{Row as PgRow, types::ToSql};

use super::{HistoryError, row::Row, sources};

/// What to look for; every part is optional but `limit`.
#[derive(Debug, Default)]
pub struct Filter {
    /// Lower-cased.
    pub recipient: Option<String>,
    pub source: Option<String>,
    pub types: Option<Vec<String>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Strictly older than this event: (source, time, seq).
    pub before: Option<(String, DateTime<Utc>, i32)>,
    pub limit: usize,
}

/// The columns every reader selects, in [`row_of`]'s order.
pub const COLUMNS: &str = "e.at, e.source, e.seq, e.type, e.recipient, e.data, s.summary";

/// The conditions and parameters of `filter` (`$1`... in order).
pub fn conditions(filter: &Filter) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql: Vec<String> = vec!["TRUE".into()];
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let next = |params: &mut Vec<Box<dyn ToSql + Sync + Send>>, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        format!("${}", params.len())
    };
    if let Some(r) = &filter.recipient {
        let p = next(&mut params, Box::new(r.clone()));
        sql.push(format!("hashtextextended(e.recipient, 0) = hashtextextended({p}, 0) AND e.recipient = {p}"));
    }
    if let Some(s) = &filter.source {
        let p = next(&mut params, Box::new(s.clone()));
        sql.push(format!("hashtextextended(e.source, 0) = hashtextextended({p}, 0) AND e.source = {p}"));
    }
    if let Some(t) = &filter.types {
        let p = next(&mut params, Box::new(t.clone()));
        sql.push(format!("e.type = ANY({p})"));
    }
    if let Some(from) = filter.from {
        let p = next(&mut params, Box::new(from));
        sql.push(format!("e.at >= {p}"));
    }
    if let Some(to) = filter.to {
        let p = next(&mut params, Box::new(to));
        sql.push(format!("e.at < {p}"));
    }
    if let Some((source, at, seq)) = &filter.before {
        let (a, s, q) = (
            next(&mut params, Box::new(*at)),
            next(&mut params, Box::new(source.clone())),
            next(&mut params, Box::new(*seq)),
        );
        sql.push(format!("(e.at, e.source, e.seq) < ({a}, {s}::text COLLATE \"C\", {q})"));
    }
    (sql.join(" AND "), params)
}

/// One page, newest first; and the cursor of the next page when this one is full.
pub async fn page(
    client: &tokio_postgres::Client,
    filter: &Filter,
) -> Result<(Vec<Value>, Option<String>), HistoryError> {
    let (conditions, mut params) = conditions(filter);
    params.push(Box::new(filter.limit as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM events e LEFT JOIN sources s ON s.name = e.source WHERE {conditions} \
         ORDER BY e.at DESC, e.source DESC, e.seq DESC LIMIT ${}",
        params.len()
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&sql, &refs).await?;
    let mut last = None;
    let events = rows
        .iter()
        .map(|r| {
            let (row, summary) = row_of(r);
            last = Some(row.id());
            row.to_json(&sources::extras(summary.as_ref()))
        })
        .collect::<Vec<_>>();
    let next = if events.len() == filter.limit { last } else { None };
    Ok((events, next))
}

/// A selected row ([`COLUMNS`]) and its source's summary.
pub fn row_of(r: &PgRow) -> (Row, Option<Value>) {
    let row =
        Row { at: r.get(0), source: r.get(1), seq: r.get(2), kind: r.get(3), recipient: r.get(4), data: r.get(5) };
    (row, r.get(6))
}
