//! Pushes jobs into their destination streams and tells workers which destinations have work.
//! A destination is the recipient's domain, or `@provider` when the domain belongs to a
//! provider (by its domain list, or by its MX hosts when `limits.mx_rollup` is on) and has no
//! `[limits.domains]` section of its own.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use redis::cluster_routing::Slot;
use sluice_shared::{
    config::{Config, Providers},
    dns::Dns,
    keys,
    lane::Lane,
    model::Job,
    redis::{Conn, StoreResult, replicas::ReplicaAcks, scripts::due},
};
use tokio::sync::Mutex;

/// How long a domain's destination is remembered before its MX hosts are looked at again.
const ROLLUP_TTL: Duration = Duration::from_secs(3600);
/// Domains remembered at most (the map starts over beyond it).
const ROLLUP_MAX: usize = 200_000;

pub struct Enqueuer {
    providers: Providers,
    /// Domains with their own `[limits.domains]` section keep their own queue.
    own_limits: HashSet<String>,
    /// Present when `limits.mx_rollup` is on.
    dns: Option<Dns>,
    /// Streams (by key) that already have the workers' consumer group.
    known: Mutex<HashSet<String>>,
    /// Domain -> destination, with when it was decided.
    destinations: Mutex<HashMap<String, (String, Instant)>>,
    /// The pushed jobs reach a replica before the campaign moves past them.
    replicas: ReplicaAcks,
}

impl Enqueuer {
    pub fn new(config: Arc<Config>) -> anyhow::Result<Enqueuer> {
        let dns = match config.limits.mx_rollup {
            true => Some(Dns::from_config(&config.dns).map_err(|e| anyhow::anyhow!("config key `dns`: {e}"))?),
            false => None,
        };
        let own_limits = config.limits.domains.keys().cloned().collect();
        Ok(Enqueuer {
            providers: config.limits.providers(),
            own_limits,
            dns,
            known: Mutex::new(HashSet::new()),
            destinations: Mutex::new(HashMap::new()),
            replicas: ReplicaAcks::new(config.redis.replica_ack_timeout.get()),
        })
    }

    /// The destination (stream) for recipients of `domain`.
    pub async fn destination(&self, domain: &str) -> String {
        if let Some((d, at)) = self.destinations.lock().await.get(domain)
            && at.elapsed() < ROLLUP_TTL
        {
            return d.clone();
        }
        if self.own_limits.contains(domain) {
            return domain.to_string();
        }
        let by_list = self.providers.by_domain(domain).map(|p| p.queue());
        let found = match (by_list, &self.dns) {
            (Some(q), _) => q,
            (None, Some(dns)) => match dns.mail_hosts(domain).await {
                Ok(hosts) => self.providers.by_mx(&hosts.hosts()).map_or_else(|| domain.to_string(), |p| p.queue()),
                // Without an answer the domain keeps its own queue; the worker defers if DNS
                // stays down. Not remembered, so the next job asks again.
                Err(e) => {
                    tracing::debug!(%domain, error = %e, "MX rollup lookup failed; domain queued alone");
                    return domain.to_string();
                }
            },
            (None, None) => domain.to_string(),
        };
        let mut map = self.destinations.lock().await;
        if map.len() >= ROLLUP_MAX {
            map.clear();
        }
        map.insert(domain.to_string(), (found.clone(), Instant::now()));
        found
    }

    /// Appends `jobs` to their destinations' streams in their lane (one pipeline) and marks
    /// them ready in that lane.
    /// Returns once the jobs are safe from a failover of their nodes: the caller's next step
    /// (the expansion's cursor, the retry set) forgets them on the campaign's node. `step`
    /// names the caller in the replica-wait metric.
    pub async fn push(&self, conn: &mut Conn, jobs: &[Job], step: &'static str) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        // One destination lookup per domain of the batch, not per job.
        let mut by_domain: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
        for job in jobs {
            by_domain.entry(job.domain()).or_default().push(job);
        }
        let mut by_destination: BTreeMap<(Lane, String), Vec<&Job>> = BTreeMap::new();
        for (domain, jobs) in by_domain {
            let destination = self.destination(domain).await;
            for job in jobs {
                by_destination.entry((Lane::of(&job.campaign), destination.clone())).or_default().push(job);
            }
        }
        let streams: Vec<(Lane, String)> = by_destination.keys().cloned().collect();
        self.ensure_groups(conn, &streams).await?;
        // One pipeline per slot, each with its WAIT riding behind the jobs, all slots at once.
        let mut by_slot: HashMap<Slot, (String, redis::Pipeline)> = HashMap::new();
        for ((lane, destination), jobs) in &by_destination {
            let stream = keys::lane_stream(destination, *lane);
            let (_, pipe) = by_slot.entry(conn.slot_of(&stream)).or_insert_with(|| (stream.clone(), redis::pipe()));
            for job in jobs {
                pipe.xadd(&stream, "*", &job.to_fields()).ignore();
            }
        }
        let writes = by_slot.into_values().map(|(key, pipe)| {
            let mut conn = conn.clone();
            async move { self.replicas.write(&mut conn, &key, step, pipe).await }
        });
        futures::future::try_join_all(writes).await?;
        // One mark per ready set (lane and shard) that gained work.
        let mut ready: HashMap<String, Vec<&str>> = HashMap::new();
        for (lane, destination) in by_destination.keys() {
            ready.entry(keys::ready_of(*lane, destination)).or_default().push(destination);
        }
        let marks = ready.iter().map(|(set, destinations)| {
            let mut conn = conn.clone();
            async move { due::mark_replicated(&mut conn, (&self.replicas, step), set, destinations).await }
        });
        futures::future::try_join_all(marks).await?;
        Ok(())
    }

    async fn ensure_groups(&self, conn: &mut Conn, destinations: &[(Lane, String)]) -> StoreResult<()> {
        let mut known = self.known.lock().await;
        for (lane, destination) in destinations {
            let stream = keys::lane_stream(destination, *lane);
            if known.contains(&stream) {
                continue;
            }
            sluice_shared::redis::ensure_group(conn, &stream, keys::WORKER_GROUP).await?;
            redis::cmd("SADD").arg(keys::domains()).arg(destination).query_async::<()>(conn).await?;
            known.insert(stream);
        }
        Ok(())
    }
}
