//! Exporting a time range of the history, oldest first, as NDJSON (each line an event as the
//! events API shows it) or CSV. Rows are read through a portal a page at a time and handed to
//! the response through a small bounded channel, so memory stays flat however long the range,
//! and a client that stops reading stops the query.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{History, HistoryError, search, sources};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

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
    let cells = [row.id().as_str(), &at, &row.kind, campaign, message_id, &row.recipient, &data].map(csv_cell);
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break. A cell a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`
/// (OWASP's advice): recipients and data come from strangers.
pub fn csv_cell(value: &str) -> String {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let value = if formula { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("ann@example.com"), "ann@example.com");
        assert_eq!(csv_cell(r#"{"code":250,"text":"Ok"}"#), r#""{""code"":250,""text"":""Ok""}""#);
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1@example.com"), "'+1@example.com");
        assert_eq!(csv_cell("a\r\nb"), "\"a\r\nb\"");
    }
}
