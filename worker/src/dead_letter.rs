//! Jobs that kept killing or stalling their workers (handed out more than
//! `worker.max_deliveries` times) are copied to `sluice:dead-letters`, failed with reason
//! `poison`, and acked, instead of looping forever. The API lists and requeues them.

use std::collections::BTreeMap;

use sluice_shared::{
    keys,
    redis::{Conn, StoreResult, scripts::jobs},
};

use sluice_shared::model::Entry;

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
    let mut by_campaign: BTreeMap<&str, Vec<jobs::Poisoned>> = BTreeMap::new();
    for ((entry, deliveries), dead_letter_id) in poisoned.iter().zip(&ids) {
        let p = jobs::Poisoned { entry, deliveries: *deliveries, dead_letter_id };
        by_campaign.entry(entry.job.campaign.as_str()).or_default().push(p);
    }
    for (campaign, jobs) in by_campaign {
        let marked = jobs::poison(conn, campaign, events_maxlen, &jobs).await?;
        for (p, marked) in jobs.iter().zip(marked) {
            if marked {
                let (index, deliveries) = (p.entry.job.index, p.deliveries);
                tracing::warn!(%domain, campaign, index, deliveries, "job dead-lettered after repeated deliveries");
            }
        }
    }
    Ok(poisoned.iter().map(|(e, _)| e.id.clone()).collect())
}
