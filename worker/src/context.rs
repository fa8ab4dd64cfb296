//! What every part of the worker shares: Redis, config, the transport, caches, permits.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sluice_shared::{
    classify::Classifier,
    config::Config,
    dkim::Signer,
    lane::Lane,
    model::CampaignSpec,
    redis::{Conn, Pool, StoreResult, replicas::ReplicaAcks},
    tokens::TokenKey,
};
use tokio::sync::Semaphore;

use crate::{links::RecipientLinks, orphans::Orphans, render::CampaignCache, transport::Transport};

/// Where the worker reads the date for warm-up caps; tests move it across midnight.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(chrono::Utc::now))
    }
    #[cfg(test)]
    pub fn from_fn(f: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.0)()
    }
}

pub struct Ctx<T: Transport> {
    /// The date for warm-up caps.
    pub clock: Clock,
    pub pool: Pool,
    pub config: Arc<Config>,
    pub transport: T,
    pub campaigns: CampaignCache,
    /// How replies are read: the operator's rules, then the built-in ones.
    pub rules: Classifier,
    /// DKIM keys, parsed once.
    pub dkim: Signer,
    /// Signs unsubscribe links, when `[public]` is configured.
    pub tokens: Option<TokenKey>,
    /// Stable consumer name in every domain stream's group.
    pub consumer: String,
    /// Outcomes reach a replica before their jobs are acked (`redis.replica_ack_timeout`).
    pub replicas: ReplicaAcks,
    /// Lanes where entries may be pending under this worker's name with no batch holding them.
    pub orphans: Orphans,
    /// Per-destination concurrent sends (`connections` of the domain's limits, split by lane).
    permits: Mutex<HashMap<(String, Lane), Arc<Semaphore>>>,
    /// One multiplexed connection shared by every task; taken from the pool again only after
    /// an error (a pool checkout costs a PING round trip).
    shared: Mutex<Option<Conn>>,
    /// Wakes a lane's loop from its idle wait: a batch gave tokens back, so its destination
    /// is worth a visit now (one per lane; a wake-up with nobody waiting is kept for the next).
    wake: [tokio::sync::Notify; 2],
}

impl<T: Transport> Ctx<T> {
    pub fn new(pool: Pool, config: Arc<Config>, transport: T, consumer: String) -> Ctx<T> {
        let rules = config.bounces.classifier().expect("rules were checked when the config was validated");
        let dkim = Signer::from_config(&config.dkim).expect("keys were read at startup (sluice_shared::startup)");
        let tokens = config.public.as_ref().map(|p| TokenKey::new(&p.secret));
        let replicas = ReplicaAcks::new(config.redis.replica_ack_timeout.get());
        Ctx {
            replicas,
            clock: Clock::system(),
            rules,
            dkim,
            tokens,
            pool,
            config,
            transport,
            campaigns: CampaignCache::default(),
            consumer,
            orphans: Orphans::default(),
            permits: Mutex::new(HashMap::new()),
            shared: Mutex::new(None),
            wake: Default::default(),
        }
    }

    /// The shared connection (multiplexed: cheap to clone for concurrent use).
    pub async fn conn(&self) -> StoreResult<Conn> {
        if let Some(c) = self.shared.lock().unwrap().clone() {
            return Ok(c);
        }
        let fresh = (*self.pool.get().await?).clone();
        *self.shared.lock().unwrap() = Some(fresh.clone());
        Ok(fresh)
    }

    /// After a Redis error the shared connection may be broken (Redis restarted, connection
    /// killed): the next [`Ctx::conn`] takes a fresh one from the pool.
    pub fn forget_conn(&self) {
        self.shared.lock().unwrap().take();
    }

    /// What is sealed with the link secret for one recipient, as sent now.
    pub fn links<'a>(&'a self, spec: &'a CampaignSpec, index: u64, address: &'a str) -> RecipientLinks<'a> {
        RecipientLinks::new(&self.config, self.tokens.as_ref(), spec, index, address, self.clock.now().timestamp())
    }

    /// Ends `lane`'s current idle wait, or the next one.
    pub fn wake(&self, lane: Lane) {
        self.wake[lane as usize].notify_one();
    }

    /// Resolves when [`Ctx::wake`] is called for `lane`.
    pub async fn woken(&self, lane: Lane) {
        self.wake[lane as usize].notified().await
    }

    /// The semaphore bounding concurrent sends of one lane to `domain` from this worker.
    pub fn domain_permits(&self, domain: &str, lane: Lane) -> Arc<Semaphore> {
        let mut permits = self.permits.lock().unwrap();
        permits
            .entry((domain.to_string(), lane))
            .or_insert_with(|| {
                let limits = &self.config.limits;
                Arc::new(Semaphore::new(limits.lane_connections(limits.for_domain(domain).connections, lane)))
            })
            .clone()
    }

    /// Sends of one lane this worker could start for `domain` right now.
    pub fn domain_room(&self, domain: &str, lane: Lane) -> usize {
        self.domain_permits(domain, lane).available_permits()
    }
}
