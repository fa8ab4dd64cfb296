//! Campaigns and messages recorded in `sources` (and the template versions they used in
//! `templates`) when the writer first meets one of their events: enough to name and report on
//! them after Redis has expired them. Recorded: name, sender, subject, template, tags,
//! metadata, creation time. Never the recipient list or the body.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice_shared::{
    keys, lane,
    model::CampaignSpec,
    redis::{Conn, StoreResult},
};
use tokio_postgres::Transaction;

use crate::events::Extras;

/// One source as `sources` keeps it.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub kind: &'static str,
    pub created_at: Option<DateTime<Utc>>,
    pub summary: Value,
    pub template: Option<(String, i64)>,
}

/// Reads what Redis still holds of each of `names` (one round trip). A source already
/// expired from Redis is recorded with an empty summary.
pub async fn fetch(conn: &mut Conn, names: &[String]) -> StoreResult<Vec<Record>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for name in names {
        pipe.cmd("HMGET").arg(keys::campaign_meta(name)).arg("spec").arg("created_at");
    }
    let found: Vec<(Option<String>, Option<i64>)> = pipe.query_async(conn).await?;
    Ok(names
        .iter()
        .zip(found)
        .map(|(name, (spec, created))| {
            let spec = spec.and_then(|s| serde_json::from_str::<CampaignSpec>(&s).ok());
            Record {
                name: name.clone(),
                kind: if lane::is_message(name) { "message" } else { "campaign" },
                created_at: created.and_then(DateTime::from_timestamp_millis),
                template: spec.as_ref().and_then(|s| s.template.as_ref()).map(|t| (t.id.clone(), t.version as i64)),
                summary: spec.as_ref().map_or_else(|| json!({}), summary),
            }
        })
        .collect())
}

/// What is kept of a spec.
fn summary(spec: &CampaignSpec) -> Value {
    let mut s = json!({"from": spec.from, "subject": spec.subject});
    let mut put = |k: &str, v: Value| {
        s[k] = v;
    };
    if let Some(name) = &spec.name {
        put("name", name.clone().into());
    }
    if let Some(t) = &spec.template {
        put("template", json!({"id": t.id, "version": t.version}));
    }
    if !spec.tags.is_empty() {
        put("tags", spec.tags.clone().into());
    }
    if let Some(m) = &spec.metadata {
        put("metadata", m.clone());
    }
    if spec.mime.is_some() {
        put("submitted", true.into());
    }
    s
}

/// The tags and metadata a recorded summary gives each of its events.
pub fn extras(summary: Option<&Value>) -> Extras {
    let Some(s) = summary else { return Extras::default() };
    let tags = s["tags"].as_array().map(|t| t.iter().filter_map(|v| v.as_str().map(String::from)).collect());
    Extras { tags: tags.unwrap_or_default(), metadata: s.get("metadata").cloned() }
}

/// Inserts the records not there yet (a recorded source is never overwritten).
pub async fn record(tx: &Transaction<'_>, records: &[Record]) -> Result<(), tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    let kinds: Vec<&str> = records.iter().map(|r| r.kind).collect();
    let created: Vec<Option<DateTime<Utc>>> = records.iter().map(|r| r.created_at).collect();
    let summaries: Vec<&Value> = records.iter().map(|r| &r.summary).collect();
    tx.execute(
        "INSERT INTO sources (name, kind, created_at, summary) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[]) ON CONFLICT (name) DO NOTHING",
        &[&names, &kinds, &created, &summaries],
    )
    .await?;
    let (ids, versions): (Vec<&str>, Vec<i64>) =
        records.iter().filter_map(|r| r.template.as_ref()).map(|(id, v)| (id.as_str(), *v)).unzip();
    if !ids.is_empty() {
        tx.execute(
            "INSERT INTO templates (id, version) SELECT DISTINCT * FROM unnest($1::text[], $2::int8[]) ON CONFLICT DO NOTHING",
            &[&ids, &versions],
        )
        .await?;
    }
    Ok(())
}

/// Sources this writer has recorded (bounded: forgotten all at once past [`Self::MAX`], which
/// only costs a few redundant inserts).
#[derive(Default)]
pub struct Recorded(HashSet<String>);

impl Recorded {
    const MAX: usize = 100_000;

    /// Those of `names` not recorded yet, each once.
    pub fn missing<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let unique: HashSet<&str> = names.into_iter().filter(|n| !self.0.contains(*n)).collect();
        unique.into_iter().map(String::from).collect()
    }

    pub fn add(&mut self, names: Vec<String>) {
        if self.0.len() + names.len() > Self::MAX {
            self.0.clear();
        }
        self.0.extend(names);
    }
}
