//! `events` is partitioned by day (UTC): `events_pYYYYMMDD` holds that day. The writer adds a
//! day's partition before its first row; retention drops whole days, never deletes rows.
//! Both take a transaction-scoped advisory lock, so writers of several shards and schedulers
//! never race on the catalogue.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio_postgres::Client;

/// The advisory lock key for partition changes ("sluicepa").
const LOCK: i64 = 0x736c_7569_6365_7061;

/// A day, as days since the epoch.
pub fn day_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

fn date(day: i64) -> NaiveDate {
    DateTime::from_timestamp(day * 86_400, 0).unwrap_or_default().date_naive()
}

/// The partition's table name for `day`.
pub fn name(day: i64) -> String {
    format!("events_p{}", date(day).format("%Y%m%d"))
}

/// The day a partition's name stands for; None for a table that is not one of ours.
pub fn parse(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("events_p")?;
    let d = NaiveDate::parse_from_str(digits, "%Y%m%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp() / 86_400)
}

/// Days whose partition this process has seen exist.
#[derive(Default)]
pub struct Known(HashSet<i64>);

impl Known {
    /// Makes sure every day in `days` has its partition.
    pub async fn ensure(
        &mut self,
        client: &mut Client,
        days: impl IntoIterator<Item = i64>,
    ) -> Result<(), tokio_postgres::Error> {
        let missing: Vec<i64> =
            days.into_iter().filter(|d| !self.0.contains(d)).collect::<HashSet<_>>().into_iter().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
        for day in &missing {
            let (from, to) = (date(*day), date(day + 1));
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF events FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')",
                name(*day)
            ))
            .await?;
        }
        tx.commit().await?;
        self.0.extend(missing);
        Ok(())
    }
}

/// Drops every day older than `retention` (the day must have ended that long ago); returns the
/// dropped partitions' names.
pub async fn drop_expired(
    client: &mut Client,
    retention: std::time::Duration,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let last_expired = day_of(cutoff(retention)) - 1;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
    let rows = tx
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await?;
    let mut dropped = Vec::new();
    for row in rows {
        let table: String = row.get(0);
        if parse(&table).is_some_and(|day| day <= last_expired) {
            tx.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await?;
            dropped.push(table);
        }
    }
    tx.commit().await?;
    Ok(dropped)
}

/// Whether `at` is still inside `retention` (older events are not written: their day is gone).
pub fn kept(at: DateTime<Utc>, retention: std::time::Duration) -> bool {
    day_of(at) >= day_of(cutoff(retention))
}

/// The oldest time `retention` keeps.
fn cutoff(retention: std::time::Duration) -> DateTime<Utc> {
    let span = Duration::from_std(retention).unwrap_or(Duration::MAX);
    Utc::now().checked_sub_signed(span).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let at = DateTime::parse_from_rfc3339("2026-12-04T23:59:59.999Z").unwrap().with_timezone(&Utc);
        let day = day_of(at);
        assert_eq!(name(day), "events_p20261204");
        assert_eq!(parse("events_p20261204"), Some(day));
        assert_eq!(day_of(at + Duration::milliseconds(1)), day + 1);
        for other in ["events", "events_p2026120", "events_p20261304", "sources", "events_pdefault"] {
            assert_eq!(parse(other), None, "{other}");
        }
        let old = Utc::now() - Duration::days(3);
        assert!(!kept(old, std::time::Duration::from_secs(86_400)));
        assert!(kept(Utc::now(), std::time::Duration::from_secs(86_400)));
    }
}
