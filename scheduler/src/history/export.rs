//! Exporting a time range of the history, oldest first, as NDJSON (each line an event as the
//! events API shows it) or CSV. Rows are read through a portal a page at a time and handed to
//! the response through a small bounded channel, so memory stays flat however long the range,
//! and a client that stops reading stops the query.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{History, HistoryError, search, sources};

pub use crate::csv::Format;

/// Rows fetched per round trip.
const PAGE: i32 = 1000;
/// Pages buffered between the query and the client.
const BUFFERED: usize = 4;

pub const CSV_HEADER: &str = "id,at,type,campaign_id,message_id,recipient,data\r\n";

/// Starts exporting `[from, to)`; the receiver yields the body's chunks. An error part-way ends
/// the stream with an error, so the client sees a cut-off body, never a short one that looks whole.
pub async fn start(
    history: &History,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    format: Format,
) -> Result<mpsc::Receiver<Result<Bytes, std::io::Error>>, HistoryError> {
    let client = history.client().await?;
    let (send, receive) = mpsc::channel(BUFFERED);
    tokio::spawn(async move {
        let mut client = client;
        if let Err(e) = pump(&mut client, from, to, format, &send).await {
            tracing::warn!(error = %e, "history export cut off");
            let _ = send.send(Err(std::io::Error::other("history export failed"))).await;
        }
    });
    Ok(receive)
}

async fn pump(
    client: &mut tokio_postgres::Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    format: Format,
    send: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let sql = format!(
        "SELECT {} FROM events e LEFT JOIN sources s ON s.name = e.source WHERE e.at >= $1 AND e.at < $2 \
         ORDER BY e.at, e.source, e.seq",
        search::COLUMNS
    );
    let portal = tx.bind(sql.as_str(), &[&from, &to]).await?;
    if format == Format::Csv && send.send(Ok(Bytes::from_static(CSV_HEADER.as_bytes()))).await.is_err() {
        return Ok(());
    }
    loop {
        let rows = tx.query_portal(&portal, PAGE).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut chunk = String::new();
        for r in &rows {
            let (row, summary) = search::row_of(r);
            match format {
                Format::Ndjson => {
                    chunk.push_str(&row.to_json(&sources::extras(summary.as_ref())).to_string());
                    chunk.push('\n');
                }
                Format::Csv => csv_line(&mut chunk, &row),
            }
        }
        if send.send(Ok(Bytes::from(chunk))).await.is_err() {
            return Ok(()); // the client went away
        }
        if rows.len() < PAGE as usize {
            return Ok(());
        }
    }
}

fn csv_line(out: &mut String, row: &super::row::Row) {
    let message = sluice_shared::lane::is_message(&row.source);
    let at = row.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let data = row.data.as_ref().map_or_else(|| "{}".to_string(), |d| d.to_string());
    let (campaign, message_id) = if message { ("", row.source.as_str()) } else { (row.source.as_str(), "") };
    let cells = [row.id().as_str(), &at, &row.kind, campaign, message_id, &row.recipient, &data].map(crate::csv::cell);
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}
