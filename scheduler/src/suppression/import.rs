//! `POST /v1/suppressions/import`: suppressions in bulk, as CSV (a header line naming the
//! columns) or NDJSON, in chunks at bounded memory. Each line is refused alone with its
//! number and why; every accepted line is written, whatever comes after it. An address
//! already suppressed in the line's scope keeps its entry (counted `existing`).
//!
//! The fields, in either form: `email` (or an erased address's `sha256:` token), `scope`
//! (`all`, the default; `campaigns`; `list`), `list`, `reason`, `source`, `created_at`,
//! `campaign`, `detail` (JSON). An export reads back as it was.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_shared::{
    keys,
    redis::{Conn, StoreResult, scripts::suppression as script},
    suppression::Scope,
    validate,
};

use crate::campaign::ndjson::LineRejection;

/// Lines written per round trip.
pub const CHUNK: usize = 1000;

/// One accepted line: where it goes and the entry to store.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub scope: Scope,
    pub entry: Value,
}

/// A line's fields, from CSV cells or a JSON object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    email: String,
    scope: Option<String>,
    list: Option<String>,
    reason: Option<String>,
    source: Option<String>,
    created_at: Option<String>,
    campaign: Option<String>,
    detail: Option<Value>,
}

const COLUMNS: &[&str] = &["email", "scope", "list", "reason", "source", "created_at", "campaign", "detail"];
const MAX_TEXT: usize = 256;

/// The columns of a CSV import, from its header line.
#[derive(Debug)]
pub struct Columns(Vec<String>);

impl Columns {
    pub fn from_header(line: &str) -> Result<Columns, String> {
        let names: Vec<String> = crate::csv::cells(line.trim_start_matches('\u{feff}'))?
            .iter()
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if let Some(unknown) = names.iter().find(|n| !COLUMNS.contains(&n.as_str())) {
            return Err(format!("unknown column {unknown:?}; the columns are {}", COLUMNS.join(", ")));
        }
        if !names.iter().any(|n| n == "email") {
            return Err("no `email` column".into());
        }
        Ok(Columns(names))
    }
}

/// One CSV line: `Ok(None)` for a blank line.
pub fn csv_line(number: usize, line: &str, columns: &Columns) -> Result<Option<Row>, LineRejection> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let cells = crate::csv::cells(line).map_err(|e| LineRejection::new(number, None, &e))?;
    if cells.len() != columns.0.len() {
        let e = format!("{} cells; the header names {} columns", cells.len(), columns.0.len());
        return Err(LineRejection::new(number, None, &e));
    }
    let mut object = Map::new();
    for (name, cell) in columns.0.iter().zip(&cells) {
        let cell = crate::csv::unescaped(cell.trim());
        if cell.is_empty() {
            continue;
        }
        let value = if name == "detail" {
            serde_json::from_str(cell).map_err(|e| LineRejection::new(number, None, &format!("detail: {e}")))?
        } else {
            Value::String(cell.to_string())
        };
        object.insert(name.clone(), value);
    }
    row(number, Value::Object(object))
}

/// One NDJSON line: `Ok(None)` for a blank line.
pub fn ndjson_line(number: usize, line: &str) -> Result<Option<Row>, LineRejection> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(line).map_err(|e| LineRejection::new(number, None, &format!("invalid JSON: {e}")))?;
    row(number, value)
}

fn row(number: usize, value: Value) -> Result<Option<Row>, LineRejection> {
    let hint = value.get("email").and_then(Value::as_str).map(str::to_string);
    let refuse = |m: &str| LineRejection::new(number, hint.as_deref(), m);
    let fields: Fields = serde_json::from_value(value).map_err(|e| refuse(&e.to_string()))?;
    let name = name_of(&fields.email).map_err(|m| refuse(&format!("email: {m}")))?;
    let scope =
        Scope::parse(fields.scope.as_deref(), fields.list.as_deref()).map_err(|(f, m)| refuse(&format!("{f}: {m}")))?;
    let entry = entry(&fields, &scope).map_err(|m| refuse(&m))?;
    Ok(Some(Row { name, scope, entry }))
}

/// What an address is stored under: lower-cased, or an erased address's token as it is.
fn name_of(email: &str) -> Result<String, String> {
    if let Some(hex) = email.strip_prefix("sha256:") {
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Ok(email.to_string());
        }
        return Err("an erased address is sha256: and 64 lower-case hex digits".into());
    }
    Ok(validate::email(email)?.address.to_ascii_lowercase())
}

fn entry(fields: &Fields, scope: &Scope) -> Result<Value, String> {
    let text = |name: &str, value: &Option<String>| -> Result<(), String> {
        match value {
            Some(v) if v.len() > MAX_TEXT => Err(format!("{name}: longer than {MAX_TEXT} bytes")),
            Some(v) if v.chars().any(char::is_control) => Err(format!("{name}: holds a control character")),
            _ => Ok(()),
        }
    };
    text("reason", &fields.reason)?;
    text("source", &fields.source)?;
    let created_at = match &fields.created_at {
        Some(t) => DateTime::parse_from_rfc3339(t).map_err(|e| format!("created_at: {e} (RFC 3339 expected)"))?,
        None => Utc::now().into(),
    };
    if let Some(c) = &fields.campaign {
        validate::webhook_id(c).map_err(|m| format!("campaign: {m}"))?;
    }
    let mut e = json!({
        "reason": fields.reason.as_deref().unwrap_or("imported"),
        "source": fields.source.as_deref().unwrap_or("import"),
        "created_at": created_at.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    if let Some(c) = &fields.campaign {
        e["campaign"] = c.as_str().into();
    }
    if let Some(d) = &fields.detail {
        e["detail"] = d.clone();
    }
    if *scope == Scope::Campaigns {
        e["scope"] = "campaigns".into();
    }
    Ok(e)
}

/// Writes `rows`; (added, already there).
pub async fn write(conn: &mut Conn, rows: &[Row]) -> StoreResult<(u64, u64)> {
    let everything: Vec<&Row> = rows.iter().filter(|r| r.scope == Scope::All).collect();
    let mut added = 0;
    if !everything.is_empty() {
        let mut pipe = redis::pipe();
        for r in &everything {
            pipe.hset_nx(keys::suppressed(), &r.name, r.entry.to_string());
        }
        let fresh: Vec<bool> = pipe.query_async(conn).await?;
        added += fresh.iter().filter(|f| **f).count() as u64;
    }
    let entries: Vec<(&Row, String)> =
        rows.iter().filter(|r| r.scope != Scope::All).map(|r| (r, r.entry.to_string())).collect();
    let unsubscribes: Vec<script::Unsubscribe> = entries
        .iter()
        .map(|(r, json)| script::Unsubscribe { address: &r.name, list: r.scope.list(), entry_json: json })
        .collect();
    added += script::unsubscribe(conn, &unsubscribes).await?;
    Ok((added, rows.len() as u64 - added))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_ndjson_lines_become_the_same_rows() {
        let columns = Columns::from_header("Email,reason,list").unwrap();
        let csv = csv_line(2, "Ann@Example.com,moved to us,news", &columns).unwrap().unwrap();
        let ndjson = ndjson_line(2, r#"{"email":"ann@example.com","reason":"moved to us","list":"news"}"#);
        let ndjson = ndjson.unwrap().unwrap();
        assert_eq!((csv.name.as_str(), &csv.scope), ("ann@example.com", &Scope::List("news".into())));
        assert_eq!(
            (&ndjson.name, &ndjson.scope, &ndjson.entry["reason"]),
            (&csv.name, &csv.scope, &csv.entry["reason"])
        );
        assert!(csv_line(3, "", &columns).unwrap().is_none());
    }

    #[test]
    fn bad_lines_and_headers_say_what_is_wrong() {
        assert!(Columns::from_header("email,colour").unwrap_err().contains("\"colour\""));
        assert!(Columns::from_header("reason").unwrap_err().contains("email"));
        let columns = Columns::from_header("email,scope").unwrap();
        let refused = |line: &str| csv_line(7, line, &columns).unwrap_err();
        assert!(refused("not-an-address,all").error.starts_with("email:"));
        assert!(refused("a@x.example,every").error.starts_with("scope:"));
        assert!(refused("a@x.example").error.contains("1 cells"));
        assert_eq!(refused("a@x.example,every").line, 7);
        let refused = |line: &str| ndjson_line(1, line).unwrap_err().error;
        assert!(refused(r#"{"email":"a@x.example","colour":"red"}"#).contains("colour"));
        assert!(refused(r#"{"email":"a@x.example","created_at":"yesterday"}"#).starts_with("created_at:"));
        assert!(refused(r#"{"email":"a@x.example","reason":"a\nb"}"#).starts_with("reason:"));
        assert!(refused(r#"{"email":"sha256:abc"}"#).starts_with("email:"));
    }
}
