//! The history store: every event copied from the feed into PostgreSQL (`[history]`), kept
//! for `history.retention`, searchable by recipient, campaign or message, and reported on long
//! after Redis has expired the campaign.
//!
//! - [`schema`]: the embedded, versioned migrations, applied at startup under a lock.
//! - [`partitions`]: one partition of `events` per day; retention drops whole days.
//! - [`writer`]: one writer per feed shard (a lease), batched with `COPY`.
//! - [`sources`]: campaigns, messages and templates recorded beside their events.
//! - [`search`], [`report`], [`export`]: what the API reads.
//!
//! PostgreSQL is never on the sending path: when it is down the writers fall behind (a metric
//! and an alert) and catch up from the feed; the API's history routes answer 503.

pub mod export;
pub mod partitions;
pub mod report;
pub mod row;
pub mod schema;
pub mod search;
pub mod sources;
pub mod writer;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use sluice_shared::config::{Config, HistoryConfig};

/// What a history call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The schema is not in place yet (PostgreSQL unreachable since startup).
    #[error("the history store is not ready yet")]
    NotReady,
    #[error("history store: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("history store: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// A handle on the store: a connection pool of the runtime it was made for, and whether the
/// schema is in place (shared by every handle of the process).
#[derive(Clone)]
pub struct History {
    pool: Pool,
    ready: Arc<AtomicBool>,
    pub config: HistoryConfig,
}

/// Longest any one statement may run (a runaway search or report is cut off, not queued).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl History {
    /// The store `[history]` names, if any. Nothing is connected yet.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<History>> {
        let Some(url) = &config.history.url else { return Ok(None) };
        let pool = pool(url, config.history.pool_size)?;
        Ok(Some(History { pool, ready: Arc::new(AtomicBool::new(false)), config: config.history.clone() }))
    }

    /// Another handle on the same store with a pool of its own, for another runtime (the API's).
    pub fn for_another_runtime(&self) -> anyhow::Result<History> {
        let url = self.config.url.as_deref().expect("a store has a url");
        Ok(History { pool: pool(url, self.config.pool_size)?, ready: self.ready.clone(), config: self.config.clone() })
    }

    /// A connection, once the schema is in place.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, HistoryError> {
        if !self.ready.load(Ordering::Acquire) {
            return Err(HistoryError::NotReady);
        }
        Ok(self.pool.get().await?)
    }

    /// Applies the migrations, retrying until PostgreSQL answers or `shutdown`; true once done.
    pub async fn prepare(&self, shutdown: &sluice_shared::shutdown::Shutdown) -> bool {
        let mut wait = Duration::from_secs(1);
        while !shutdown.is_triggered() {
            let applied = async {
                let mut client = self.pool.get().await?;
                schema::migrate(&mut client).await.map_err(HistoryError::from)
            };
            match applied.await {
                Ok(()) => {
                    self.ready.store(true, Ordering::Release);
                    tracing::info!("history store ready");
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?wait, "history store unreachable; sending goes on, history waits");
                    shutdown.sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
        false
    }
}

fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let redacted = sluice_shared::config::redacted_url(url);
    let mut pg: tokio_postgres::Config =
        url.parse().map_err(|e| anyhow::anyhow!("config key `history.url` = {redacted:?}: {e}"))?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(CONNECT_TIMEOUT);
    }
    // Ours first: the operator's own `options` in the URL, after them, win.
    let ours = format!("-c statement_timeout={} -c TimeZone=UTC", STATEMENT_TIMEOUT.as_millis());
    let options = match pg.get_options() {
        Some(theirs) => format!("{ours} {theirs}"),
        None => ours,
    };
    pg.options(&options);
    pg.application_name("sluice-scheduler");
    let manager =
        Manager::from_config(pg, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| anyhow::anyhow!("history pool: {e}"))
}
