//! Pushes jobs into per-domain streams and tells workers which domains have work.

use sluice_shared::redis::Conn;
use std::collections::{BTreeMap, HashSet};

use sluice_shared::{
    keys,
    model::Job,
    redis::{StoreResult, scripts::SCRIPTS},
};
use tokio::sync::Mutex;

/// Remembers which domain streams already have the workers' consumer group.
#[derive(Default)]
pub struct Enqueuer {
    known: Mutex<HashSet<String>>,
}

impl Enqueuer {
    /// Appends `jobs` to their domains' streams (one pipeline) and marks those domains ready.
    pub async fn push(&self, conn: &mut Conn, jobs: &[Job]) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut by_domain: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
        for job in jobs {
            by_domain.entry(job.domain()).or_default().push(job);
        }
        self.ensure_groups(conn, by_domain.keys().copied()).await?;
        let mut pipe = redis::pipe();
        for (domain, jobs) in &by_domain {
            let stream = keys::domain_stream(domain);
            for job in jobs {
                pipe.xadd(&stream, "*", &job.to_fields()).ignore();
            }
        }
        pipe.query_async::<()>(conn).await?;
        let mut mark = SCRIPTS.mark_ready.key(keys::ready_domains());
        for domain in by_domain.keys() {
            mark.arg(*domain);
        }
        mark.invoke_async::<i64>(conn).await?;
        Ok(())
    }

    async fn ensure_groups<'a>(&self, conn: &mut Conn, domains: impl Iterator<Item = &'a str>) -> StoreResult<()> {
        let mut known = self.known.lock().await;
        for domain in domains {
            if known.contains(domain) {
                continue;
            }
            sluice_shared::redis::ensure_group(conn, &keys::domain_stream(domain), keys::WORKER_GROUP).await?;
            redis::cmd("SADD").arg(keys::domains()).arg(domain).query_async::<()>(conn).await?;
            known.insert(domain.to_string());
        }
        Ok(())
    }
}
