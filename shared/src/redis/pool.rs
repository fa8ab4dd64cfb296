//! One connection type and one pool for every deployment: a single Redis (or a primary behind
//! a failover address), a master found through Redis Sentinel, and a Redis Cluster. Store code is written once against [`Conn`]; the
//! cluster variant routes each command by its key's slot, so every script keeps to one hash tag.
//! `rediss://` connections trust `redis.ca_file` (else the system's roots) and present
//! `redis.client_cert` when set, on a single node and on every cluster node alike.

use std::{
    ops::{Deref, DerefMut},
    time::Duration,
};

use deadpool::managed;
use deadpool_redis::{Manager, Runtime};
use redis::{
    AsyncConnectionConfig, ClientTlsConfig, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture,
    TlsCertificates, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr},
    sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType},
};

use super::{StoreError, redacted};
use crate::config::RedisConfig;

/// A multiplexed connection to Redis or to a whole cluster; cheap to clone.
#[derive(Clone)]
pub enum Conn {
    Single(redis::aio::MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// How long a request may wait for its reply. redis-rs's cluster client has no such bound
/// and retries a down cluster with backoff growing to minutes, which kept a worker from
/// exiting on SIGTERM; single-node connections get the same bound from their config.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

fn bounded<'a, T: Send + 'a>(request: RedisFuture<'a, T>) -> RedisFuture<'a, T> {
    Box::pin(async move {
        tokio::time::timeout(RESPONSE_TIMEOUT, request).await.unwrap_or_else(|_| {
            let problem = format!("no reply from the Redis cluster within {RESPONSE_TIMEOUT:?}");
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, problem).into())
        })
    })
}

impl Conn {
    /// One connection to the single Redis at `url`, outside any pool (tests and tools).
    pub async fn connect(url: &str) -> Result<Conn, StoreError> {
        let client = redis::Client::open(url)?;
        Ok(Conn::Single(client.get_multiplexed_async_connection().await?))
    }
}

impl Conn {
    /// The hash slot of `key` on a cluster; slot 0 on a single node (it holds every key).
    pub fn slot_of(&self, key: &str) -> Slot {
        match self {
            Conn::Single(_) => Slot::new(0).expect("slot 0 exists"),
            Conn::Cluster(_) => Slot::for_key(key),
        }
    }

    /// Sends a keyless command (WAIT, ROLE) to the master holding `key`, over the same
    /// connection as that node's other commands: WAIT counts this connection's writes.
    pub async fn on_node_of(&mut self, key: &str, cmd: Cmd) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                bounded(Box::pin(c.route_command(cmd, routing))).await
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => bounded(c.req_packed_command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => bounded(if cmd.is_transaction() {
                c.req_packed_commands(cmd, offset, count)
            } else {
                cross_slot_pipeline(c, cmd)
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// redis-rs sends a cluster pipeline to one node and refuses commands for other slots; ours
/// mix keys freely (a campaign's hash beside a global index). On a cluster a pipeline is split
/// by the slot of each command's key: one sub-pipeline per slot, in order within the slot (an
/// INCR still precedes its PEXPIRE NX), all slots at once, replies put back in pipeline order.
/// A WAIT goes with the command before it: it counts the writes sent ahead of it on its
/// connection, so it must reach the node they reached.
fn cross_slot_pipeline<'a>(conn: &'a mut ClusterConnection, pipe: &'a Pipeline) -> RedisFuture<'a, Vec<Value>> {
    let slots = slots_of(pipe);
    if slots.windows(2).all(|w| w[0] == w[1]) {
        return conn.req_packed_commands(pipe, 0, pipe.len());
    }
    let mut groups: Vec<(Slot, Pipeline, Vec<usize>)> = Vec::new();
    for ((i, cmd), slot) in pipe.cmd_iter().enumerate().zip(slots) {
        match groups.iter_mut().find(|(s, _, _)| *s == slot) {
            Some((_, sub, at)) => {
                sub.add_command(cmd.clone());
                at.push(i);
            }
            None => {
                let mut sub = Pipeline::new();
                sub.add_command(cmd.clone());
                groups.push((slot, sub, vec![i]));
            }
        }
    }
    let sends: Vec<_> = groups
        .into_iter()
        .map(|(_, sub, at)| {
            let mut conn = conn.clone();
            async move { conn.req_packed_commands(&sub, 0, sub.len()).await.map(|replies| (at, replies)) }
        })
        .collect();
    let n = pipe.len();
    Box::pin(async move {
        let mut out = vec![Value::Nil; n];
        for (at, replies) in futures::future::try_join_all(sends).await? {
            for (i, reply) in at.into_iter().zip(replies) {
                out[i] = reply;
            }
        }
        Ok(out)
    })
}

/// The slot each command of `pipe` goes to: its key's; a WAIT's is the command's before it;
/// other keyless commands go with slot 0.
fn slots_of(pipe: &Pipeline) -> Vec<Slot> {
    let mut slots: Vec<Slot> = Vec::with_capacity(pipe.len());
    for cmd in pipe.cmd_iter() {
        let slot = match (key_of(cmd), slots.last()) {
            (Some(key), _) => Slot::for_key(key),
            (None, Some(before)) if is_wait(cmd) => *before,
            (None, _) => Slot::new(0).expect("slot 0 exists"),
        };
        slots.push(slot);
    }
    slots
}

/// The key a command is routed by: a script's first key, else the first argument.
fn key_of(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = args.next()?;
    if is_wait(cmd) {
        return None;
    }
    if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL") {
        let _script = args.next()?;
        let keys = args.next()?;
        return if keys == b"0" { None } else { args.next() };
    }
    args.next()
}

fn is_wait(cmd: &Cmd) -> bool {
    matches!(cmd.args_iter().next(), Some(redis::Arg::Simple(name)) if name.eq_ignore_ascii_case(b"WAIT"))
}

/// The pool of connections, to one Redis, to the master the sentinels name, or to a cluster.
#[derive(Clone)]
pub enum Pool {
    Single(deadpool_redis::Pool),
    Sentinel(managed::Pool<SentinelManager>),
    Cluster(managed::Pool<ClusterManager>),
}

/// A connection checked out of the pool; returns to it when dropped.
pub struct Pooled {
    conn: Conn,
    _checkout: Checkout,
}

enum Checkout {
    Single(#[allow(dead_code)] deadpool_redis::Connection),
    Sentinel(#[allow(dead_code)] managed::Object<SentinelManager>),
    Cluster(#[allow(dead_code)] managed::Object<ClusterManager>),
}

impl Pool {
    /// Takes a connection, waiting for one to be free.
    pub async fn get(&self) -> Result<Pooled, StoreError> {
        Ok(match self {
            Pool::Single(pool) => {
                let checkout = pool.get().await?;
                Pooled { conn: Conn::Single((*checkout).clone()), _checkout: Checkout::Single(checkout) }
            }
            Pool::Sentinel(pool) => {
                let checkout = pool.get().await?;
                Pooled { conn: Conn::Single((*checkout).clone()), _checkout: Checkout::Sentinel(checkout) }
            }
            Pool::Cluster(pool) => {
                let checkout = pool.get().await?;
                Pooled { conn: Conn::Cluster((*checkout).clone()), _checkout: Checkout::Cluster(checkout) }
            }
        })
    }
}

impl Deref for Pooled {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// Makes and checks cluster connections. deadpool-redis's own manager builds its client from
/// URLs alone, which cannot carry the certificates `rediss://` needs on every node.
pub struct ClusterManager {
    client: ClusterClient,
}

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = redis::RedisError;

    async fn create(&self) -> Result<ClusterConnection, redis::RedisError> {
        self.client.get_async_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        _: &managed::Metrics,
    ) -> managed::RecycleResult<redis::RedisError> {
        let _: String = redis::cmd("PING").query_async(conn).await?;
        Ok(())
    }
}

/// Makes connections to the master the sentinels name, and keeps only connections to a
/// master. A killed master fails its connections; a demoted one is disconnected by the
/// sentinels, or answers ROLE as a replica: either way the next checkout asks the sentinels.
pub struct SentinelManager {
    client: tokio::sync::Mutex<SentinelClient>,
    connection: AsyncConnectionConfig,
}

impl managed::Manager for SentinelManager {
    type Type = MultiplexedConnection;
    type Error = redis::RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        self.client.lock().await.get_async_connection_with_config(&self.connection).await
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        _: &managed::Metrics,
    ) -> managed::RecycleResult<redis::RedisError> {
        let role: Vec<Value> = redis::cmd("ROLE").query_async(conn).await?;
        match role.first() {
            Some(Value::BulkString(kind)) if kind == b"master" => Ok(()),
            _ => Err(managed::RecycleError::message("the node is no longer the master")),
        }
    }
}

/// The sentinels' client: every sentinel URL's address, the first one's login for the
/// sentinels; the login and database in `redis.url` (if any) for the master.
fn sentinel_client(cfg: &RedisConfig) -> anyhow::Result<SentinelClient> {
    let parse = |key: &str, url: &str| {
        url.into_connection_info().map_err(|e| anyhow::anyhow!("config key `{key}` = {:?}: {e}", redacted(url)))
    };
    let sentinels = cfg
        .sentinels
        .iter()
        .map(|url| parse("redis.sentinels", url))
        .collect::<anyhow::Result<Vec<ConnectionInfo>>>()?;
    let sentinel_login = sentinels.first().map(|s| s.redis_settings().clone()).unwrap_or_default();
    let master_login =
        if cfg.url.is_empty() { Default::default() } else { parse("redis.url", &cfg.url)?.redis_settings().clone() };
    let name = cfg.master_name.as_deref().unwrap_or_default();
    let mut builder =
        SentinelClientBuilder::new(sentinels.iter().map(|s| s.addr().clone()), name, SentinelServerType::Master)?
            .set_client_to_redis_db(master_login.db());
    if let Some(user) = master_login.username() {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = master_login.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(user) = sentinel_login.username() {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(password) = sentinel_login.password() {
        builder = builder.set_client_to_sentinel_password(password);
    }
    Ok(builder.build()?)
}

/// Builds the pool. Requests get [`RESPONSE_TIMEOUT`] (scripts on large batches take longer
/// than redis-rs's 500 ms default); connections are made within 5 s; the cluster client
/// retries MOVED/ASK and reconnects to nodes by itself.
pub fn pool(cfg: &RedisConfig) -> anyhow::Result<Pool> {
    let certificates = tls_certificates(cfg)?;
    if cfg.is_cluster() {
        let seeds: Vec<String> = cfg.nodes().into_iter().map(String::from).collect();
        let mut builder = ClusterClientBuilder::new(seeds);
        if let Some(certificates) = certificates {
            builder = builder.certs(certificates);
        }
        let client =
            builder.build().map_err(|e| anyhow::anyhow!("config key `redis.seeds` = {:?}: {e}", cfg.describe()))?;
        return Ok(Pool::Cluster(bounded_pool(managed::Pool::builder(ClusterManager { client }), cfg)?));
    }
    let conn_cfg = AsyncConnectionConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    if cfg.is_sentinel() {
        let manager = SentinelManager { client: tokio::sync::Mutex::new(sentinel_client(cfg)?), connection: conn_cfg };
        return Ok(Pool::Sentinel(bounded_pool(managed::Pool::builder(manager), cfg)?));
    }
    let bad_url = |e: redis::RedisError| anyhow::anyhow!("config key `redis.url` = {:?}: {e}", redacted(&cfg.url));
    let client = match certificates {
        Some(certificates) => redis::Client::build_with_tls(cfg.url.as_str(), certificates).map_err(bad_url)?,
        None => redis::Client::open(cfg.url.as_str()).map_err(bad_url)?,
    };
    let manager = Manager::new_with_config(client.get_connection_info().clone(), conn_cfg).map_err(bad_url)?;
    Ok(Pool::Single(bounded_pool(deadpool_redis::Pool::builder(manager), cfg)?))
}

/// `redis.pool_size` connections; a checkout waits at most 10 s, making or checking one 5 s.
fn bounded_pool<M: managed::Manager, W: From<managed::Object<M>>>(
    builder: managed::PoolBuilder<M, W>,
    cfg: &RedisConfig,
) -> Result<managed::Pool<M, W>, managed::BuildError> {
    builder
        .max_size(cfg.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
}

/// What a `rediss://` connection trusts and presents; None for plain connections.
fn tls_certificates(cfg: &RedisConfig) -> anyhow::Result<Option<TlsCertificates>> {
    if !cfg.is_tls() {
        return Ok(None);
    }
    let read =
        |key: &str, path: &str| std::fs::read(path).map_err(|e| anyhow::anyhow!("config key `{key}` = {path:?}: {e}"));
    let root_cert = cfg.ca_file.as_deref().map(|p| read("redis.ca_file", p)).transpose()?;
    let client_tls = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read("redis.client_cert", cert)?,
            client_key: read("redis.client_key", key)?,
        }),
        _ => None,
    };
    Ok(Some(TlsCertificates { client_tls, root_cert }))
}

#[cfg(test)]
mod tests {
    use redis::{Script, cluster_routing::Slot};

    #[test]
    fn a_wait_goes_to_the_slot_of_the_write_before_it() {
        let script = Script::new("return 1");
        let mut invocation = script.prepare_invoke();
        invocation.key("{c:7}:state").arg("x");
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg("{d:a}:bulk").arg("*").arg("f").arg("v");
        pipe.cmd("WAIT").arg(1).arg(100);
        pipe.invoke_script(&invocation);
        pipe.cmd("WAIT").arg(1).arg(100);
        pipe.cmd("PING");
        let (stream, campaign) = (Slot::for_key("{d:a}:bulk"), Slot::for_key("{c:7}:state"));
        let zero = Slot::new(0).unwrap();
        assert_eq!(super::slots_of(&pipe), [stream, stream, campaign, campaign, zero]);
        assert_ne!(stream, campaign, "the test needs two slots");
    }
}
