//! Jobs that kept killing or stalling their workers (handed out more than
//! `worker.max_deliveries` times) are copied to `sluice:dead-letters`, failed with reason
//! `poison`, and acked, instead of looping forever. The API lists and requeues them.

use std::collections::BTreeMap;

use sluice_shared::{
    keys,
    redis::{Conn, StoreResult, scripts::SCRIPTS},
};

use crate::batch::Entry;

/// Dead-letters `poisoned` (entry, deliveries) of one domain; returns the entry ids handled.
pub async fn dead_letter(
    conn: &mut Conn,
    domain: &str,
    events_maxlen: u64,
    poisoned: &[(Entry, u64)],
) -> StoreResult<Vec<String>> {
    // Copy first: a crash after the copy leaves a duplicate record that requeue refuses,
    // never a job that is failed but listed nowhere.
    let mut pipe = redis::pipe();
    for (e, deliveries) in poisoned {
        let mut fields: Vec<(&str, String)> = e.job.to_fields().into_iter().collect();
        fields.extend([
            ("domain", domain.to_string()),
            ("entry", e.id.clone()),
            ("deliveries", deliveries.to_string()),
        ]);
        pipe.xadd(keys::dead_letters(), "*", &fields);
    }
    let ids: Vec<String> = pipe.query_async(conn).await?;
    let mut by_campaign: BTreeMap<&str, Vec<(&Entry, u64, &String)>> = BTreeMap::new();
    for ((e, deliveries), id) in poisoned.iter().zip(&ids) {
        by_campaign.entry(e.job.c.as_str()).or_default().push((e, *deliveries, id));
    }
    for (campaign, jobs) in by_campaign {
        let mut inv = SCRIPTS.poison.prepare_invoke();
        inv.key(keys::campaign_meta(campaign))
            .key(keys::campaign_state(campaign))
            .key(keys::campaign_counts(campaign))
            .key(keys::campaign_events(campaign));
        inv.arg(events_maxlen);
        for (e, deliveries, id) in &jobs {
            inv.arg(e.job.i).arg(e.job.a).arg(&e.id).arg(&e.job.r).arg(*deliveries).arg(*id);
        }
        let marked: Vec<i64> = sluice_shared::feed::write_events(conn, campaign, &inv).await?;
        for ((e, deliveries, _), m) in jobs.iter().zip(marked) {
            if m == 1 {
                tracing::warn!(%domain, campaign, index = e.job.i, deliveries, "job dead-lettered after repeated deliveries");
            }
        }
    }
    Ok(poisoned.iter().map(|(e, _)| e.id.clone()).collect())
}
