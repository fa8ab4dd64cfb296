//! `sluice campaign ...`: create (from JSON, optionally with recipients from CSV), status
//! (optionally watched with a progress bar), pause, resume, cancel.

use std::{path::Path, time::Duration};

use serde_json::{Value, json};

use crate::client::{Body, CliError, Client};

/// One row the CSV could not give as a recipient.
pub struct RowError {
    pub row: usize,
    pub message: String,
}

/// Recipients read from a CSV: NDJSON lines, the CSV row of each line, and the rows that
/// could not be read.
pub struct CsvRecipients {
    pub ndjson: Vec<u8>,
    pub rows: Vec<usize>,
    pub errors: Vec<RowError>,
}

/// CSV to NDJSON recipients: the `email` column is the address, every other column a var.
/// Row numbers count the header as row 1, as spreadsheets show them.
pub fn csv_recipients(path: &Path) -> Result<CsvRecipients, CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    let headers =
        reader.headers().map_err(|e| CliError::Usage(format!("{}: header row: {e}", path.display())))?.clone();
    let email_col = headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("email"))
        .ok_or_else(|| CliError::Usage(format!("{}: the header row has no `email` column", path.display())))?;
    let mut ndjson = Vec::new();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError { row, message: e.to_string() });
                continue;
            }
        };
        if record.len() != headers.len() {
            errors
                .push(RowError { row, message: format!("{} fields, the header has {}", record.len(), headers.len()) });
            continue;
        }
        let mut vars = serde_json::Map::new();
        for (k, (h, v)) in headers.iter().zip(record.iter()).enumerate() {
            if k != email_col {
                vars.insert(h.trim().to_string(), v.into());
            }
        }
        let line = json!({"email": record[email_col].trim(), "vars": vars});
        ndjson.extend(line.to_string().into_bytes());
        ndjson.push(b'\n');
        rows.push(row);
    }
    Ok(CsvRecipients { ndjson, rows, errors })
}

/// Creates a campaign from a JSON file; with a CSV, as a draft first, then its recipients,
/// then started unless the JSON says `"start": false`.
pub async fn create(client: &Client, file: &Path, csv: Option<&Path>) -> Result<(Value, Vec<RowError>), CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let mut body: Value =
        serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{}: not JSON: {e}", file.display())))?;
    let Some(csv) = csv else {
        return Ok((client.call("POST", "/v1/campaigns", Some(Body::Json(body))).await?, Vec::new()));
    };
    let CsvRecipients { ndjson, rows, mut errors } = csv_recipients(csv)?;
    let start = body.get("start").and_then(Value::as_bool).unwrap_or(true);
    body["start"] = false.into();
    let created = client.call("POST", "/v1/campaigns", Some(Body::Json(body))).await?;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let uploaded = client.call("POST", &format!("/v1/campaigns/{id}/recipients"), Some(Body::Raw(ndjson))).await?;
    // The server numbers NDJSON lines from 1; map them back to CSV rows.
    for r in uploaded["rejected"].as_array().into_iter().flatten() {
        let line = r["line"].as_u64().unwrap_or(0) as usize;
        let row = rows.get(line.wrapping_sub(1)).copied().unwrap_or(0);
        errors.push(RowError { row, message: r["error"].as_str().unwrap_or("rejected").to_string() });
    }
    errors.sort_by_key(|e| e.row);
    let mut result = json!({"id": id, "accepted": uploaded["accepted"], "rejected": errors.len()});
    if start {
        let started = client.call("POST", &format!("/v1/campaigns/{id}/start"), None).await?;
        result["status"] = started["status"].clone();
    } else {
        result["status"] = "draft".into();
    }
    Ok((result, errors))
}

/// The campaign's view; with `watch`, a live progress bar (rate, ETA) until it is finished.
pub async fn status(client: &Client, id: &str, watch: bool, quiet_bar: bool) -> Result<Value, CliError> {
    let path = format!("/v1/campaigns/{id}");
    let mut view = client.call("GET", &path, None).await?;
    if !watch {
        return Ok(view);
    }
    let total = view["counts"]["total"].as_u64().unwrap_or(0);
    let bar = if quiet_bar { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(total) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} ETA {eta} {msg}")
            .expect("a valid template"),
    );
    loop {
        let c = &view["counts"];
        let done: u64 =
            ["sent", "bounced", "failed", "suppressed", "cancelled"].iter().filter_map(|k| c[*k].as_u64()).sum();
        bar.set_length(c["total"].as_u64().unwrap_or(total));
        bar.set_position(done);
        bar.set_message(format!("{} deferred", c["deferred"].as_u64().unwrap_or(0)));
        if matches!(view["status"].as_str(), Some("completed" | "cancelled")) {
            bar.finish();
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        view = client.call("GET", &path, None).await?;
    }
}

/// Human-readable campaign line.
pub fn describe(view: &Value) -> String {
    let c = &view["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    format!(
        "{} {}: {} total, {} sent, {} deferred, {} bounced, {} failed, {} suppressed, {} queued",
        view["id"].as_str().unwrap_or("?"),
        view["status"].as_str().unwrap_or("?"),
        n("total"),
        n("sent"),
        n("deferred"),
        n("bounced"),
        n("failed"),
        n("suppressed"),
        n("queued"),
    )
}
