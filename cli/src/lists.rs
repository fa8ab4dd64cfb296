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

/// A query string (`?a=1&b=2`, or empty) of the pairs given.
fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

pub async fn suppress_add(
    client: &Client,
    email: &str,
    reason: &str,
    scope: Option<&str>,
    list: Option<&str>,
) -> Result<Value, CliError> {
    let mut body = json!({"reason": reason});
    if let Some(s) = scope {
        body["scope"] = s.into();
    }
    if let Some(l) = list {
        body["list"] = l.into();
    }
    client.call("PUT", &format!("/v1/suppressions/{email}"), Some(Body::Json(body))).await
}

pub async fn suppress_remove(
    client: &Client,
    email: &str,
    scope: Option<&str>,
    list: Option<&str>,
) -> Result<Value, CliError> {
    let path = format!("/v1/suppressions/{email}{}", query(&[("scope", scope), ("list", list)]));
    client.call("DELETE", &path, None).await.map(|_| json!({"removed": email}))
}

/// Streams a CSV (header line first) or NDJSON file to the import; NDJSON when its name ends
/// in `.ndjson` or `.jsonl`. The API's answer: added, existing, rejected lines.
pub async fn suppress_import(client: &Client, file: &Path) -> Result<Value, CliError> {
    let ndjson = file.extension().is_some_and(|e| e == "ndjson" || e == "jsonl");
    let content_type = if ndjson { "application/x-ndjson" } else { "text/csv" };
    client.upload("/v1/suppressions/import", content_type, file).await
}

/// Streams the export (`csv` or `ndjson`) of one scope (or all) to stdout.
pub async fn suppress_export(
    client: &Client,
    format: &str,
    scope: Option<&str>,
    list: Option<&str>,
) -> Result<(), CliError> {
    let path =
        format!("/v1/suppressions/export{}", query(&[("format", Some(format)), ("scope", scope), ("list", list)]));
    client.download(&path, &mut std::io::stdout().lock()).await
}
