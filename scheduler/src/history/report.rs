//! A campaign's (or message's) report from the history alone, so it reads the same for a live
//! campaign and one Redis expired a year ago: totals and rates, the same per destination (its
//! provider's queue, `@google`, when the domain is a known provider's, else the domain), and
//! events per type per hour.
//!
//! Counts are of distinct recipients (`sent`: recipients with a `sent` event), except
//! `deferred`, which counts deferrals. `opened` counts recipients with an open not flagged
//! `prefetch`; `opened_prefetch` those with a prefetch-flagged open (they may overlap).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use sluice_shared::config::Providers;

use super::HistoryError;

#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Counts {
    pub queued: i64,
    pub sent: i64,
    pub deferred: i64,
    pub bounced: i64,
    /// Bounces (and failures) by the reply's category.
    pub bounced_by_category: BTreeMap<String, i64>,
    pub failed: i64,
    pub suppressed: i64,
    /// Skipped as dormant by the sunset policy.
    pub dormant: i64,
    pub cancelled: i64,
    pub opened: i64,
    pub opened_prefetch: i64,
    pub clicked: i64,
    pub unsubscribed: i64,
    pub complained: i64,
}

impl Counts {
    fn add(&mut self, kind: &str, category: &str, prefetch: bool, events: i64, recipients: i64) {
        match kind {
            "queued" => self.queued += recipients,
            "sent" => self.sent += recipients,
            "deferred" => self.deferred += events,
            "bounced" => self.bounced += recipients,
            "failed" => self.failed += recipients,
            "suppressed" => self.suppressed += recipients,
            "dormant" => self.dormant += recipients,
            "cancelled" => self.cancelled += recipients,
            "opened" if prefetch => self.opened_prefetch += recipients,
            "opened" => self.opened += recipients,
            "clicked" => self.clicked += recipients,
            "unsubscribed" => self.unsubscribed += recipients,
            "complained" => self.complained += recipients,
            _ => {}
        }
        if kind == "bounced" {
            *self.bounced_by_category.entry(category.to_string()).or_default() += recipients;
        }
    }

    /// Shares of what was sent (bounces: of what was tried, sent or bounced); null before
    /// anything was.
    fn rates(&self) -> Value {
        let of = |n: i64, d: i64| (d > 0).then(|| (n as f64 / d as f64 * 10_000.0).round() / 10_000.0);
        json!({
            "bounce": of(self.bounced, self.sent + self.bounced),
            "open": of(self.opened, self.sent),
            "click": of(self.clicked, self.sent),
            "unsubscribe": of(self.unsubscribed, self.sent),
            "complaint": of(self.complained, self.sent),
        })
    }
}

/// The report of `source`; None when the history has nothing of it.
pub async fn build(
    client: &tokio_postgres::Client,
    source: &str,
    providers: &Providers,
) -> Result<Option<Value>, HistoryError> {
    const MATCH: &str = "hashtextextended(source, 0) = hashtextextended($1, 0) AND source = $1";
    let recorded =
        client.query_opt("SELECT kind, created_at, summary FROM sources WHERE name = $1", &[&source]).await?;
    let grouped = client
        .query(
            &format!(
                "SELECT split_part(recipient, '@', 2), type, coalesce(data->>'category', 'other'), \
                 coalesce(data->>'prefetch', 'false') = 'true', count(*), count(DISTINCT recipient) \
                 FROM events WHERE {MATCH} GROUP BY 1, 2, 3, 4"
            ),
            &[&source],
        )
        .await?;
    if recorded.is_none() && grouped.is_empty() {
        return Ok(None);
    }
    let mut totals = Counts::default();
    let mut destinations: BTreeMap<String, Counts> = BTreeMap::new();
    for r in &grouped {
        let (domain, kind, category, prefetch): (String, String, String, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let (events, recipients): (i64, i64) = (r.get(4), r.get(5));
        totals.add(&kind, &category, prefetch, events, recipients);
        let destination = providers.by_domain(&domain).map_or(domain, |p| p.queue());
        destinations.entry(destination).or_default().add(&kind, &category, prefetch, events, recipients);
    }
    let hourly = client
        .query(
            &format!(
                "SELECT (floor(extract(epoch FROM at) / 3600) * 3600)::int8 AS hour, type, count(*) \
                 FROM events WHERE {MATCH} GROUP BY 1, 2 ORDER BY 1"
            ),
            &[&source],
        )
        .await?;
    let mut hours: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for r in &hourly {
        hours.entry(r.get(0)).or_default().insert(r.get(1), r.get(2));
    }
    let mut by_destination: Vec<(String, Counts)> = destinations.into_iter().collect();
    by_destination.sort_by(|a, b| b.1.sent.cmp(&a.1.sent).then_with(|| a.0.cmp(&b.0)));
    let owner = if sluice_shared::lane::is_message(source) { "message_id" } else { "campaign_id" };
    let at = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    Ok(Some(json!({
        owner: source,
        "recorded": recorded.as_ref().map(|r| {
            let created: Option<chrono::DateTime<chrono::Utc>> = r.get(1);
            json!({"kind": r.get::<_, String>(0), "created_at": created.map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)), "summary": r.get::<_, Value>(2)})
        }),
        "rates": totals.rates(),
        "totals": totals,
        "destinations": by_destination.iter().map(|(d, c)| json!({"destination": d, "totals": c, "rates": c.rates()})).collect::<Vec<_>>(),
        "hourly": hours.into_iter().map(|(hour, types)| json!({"hour": at(hour), "events": types})).collect::<Vec<_>>(),
    })))
}
