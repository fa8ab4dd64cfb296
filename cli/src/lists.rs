//! `sluice suppress ...` and `sluice dlq ...`: the suppression list and dead letters.

use std::path::Path;

use serde_json::{Value, json};

use crate::client::{Body, CliError, Client};

/// Every item of a paged list (`items`, `next_cursor`).
pub async fn all_pages(client: &Client, path: &str) -> Result<Vec<Value>, CliError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=1000&cursor={c}"),
            None => format!("{path}?limit=1000"),
        };
        let page = client.call("GET", &url, None).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(items),
        }
    }
}

pub async fn suppress_add(client: &Client, email: &str, reason: &str) -> Result<Value, CliError> {
    client.call("PUT", &format!("/v1/suppressions/{email}"), Some(Body::Json(json!({"reason": reason})))).await
}

pub async fn suppress_remove(client: &Client, email: &str) -> Result<Value, CliError> {
    client.call("DELETE", &format!("/v1/suppressions/{email}"), None).await.map(|_| json!({"removed": email}))
}

/// Adds every row of a CSV (`email` column, optional `reason`); returns (added, row errors).
pub async fn suppress_import(client: &Client, file: &Path) -> Result<(usize, Vec<(usize, String)>), CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let headers = reader.headers().map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let email_col = col("email").ok_or_else(|| CliError::Usage(format!("{}: no `email` column", file.display())))?;
    let reason_col = col("reason");
    let (mut added, mut errors) = (0, Vec::new());
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push((row, e.to_string()));
                continue;
            }
        };
        let Some(email) = record.get(email_col).map(str::trim).filter(|e| !e.is_empty()) else {
            errors.push((row, "no email".into()));
            continue;
        };
        let reason = reason_col.and_then(|c| record.get(c)).unwrap_or("imported");
        match suppress_add(client, email, reason).await {
            Ok(_) => added += 1,
            Err(CliError::Api { message, .. }) => errors.push((row, message)),
            Err(other) => return Err(other),
        }
    }
    Ok((added, errors))
}

/// The whole list as CSV: email, reason, source, created_at.
pub async fn suppress_export(client: &Client) -> Result<String, CliError> {
    let items = all_pages(client, "/v1/suppressions").await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let write_err = |e: csv::Error| CliError::Usage(e.to_string());
    out.write_record(["email", "reason", "source", "created_at"]).map_err(write_err)?;
    for i in &items {
        let f = |k: &str| i[k].as_str().unwrap_or_default().to_string();
        out.write_record([f("email"), f("reason"), f("source"), f("created_at")]).map_err(write_err)?;
    }
    let bytes = out.into_inner().map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
