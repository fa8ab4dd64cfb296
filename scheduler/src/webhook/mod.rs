//! Webhooks: every event of the feed, POSTed in batches to each endpoint that wants its type,
//! signed (`Sluice-Signature`), at least once. Each endpoint has its own task, cursor into
//! the feed and retry clock, so a dead or slow endpoint only ever delays itself; the sending
//! path never waits on webhooks at all (they read the feed). One scheduler delivers a given
//! endpoint at a time (a lease per endpoint).

pub mod deliver;
pub mod endpoints;
pub mod guard;
pub mod signature;

use std::{collections::HashMap, sync::Arc, time::Duration};

use sluice_shared::{config::Config, redis::Pool, shutdown::Shutdown};
use tokio::task::JoinHandle;

/// How often the set of endpoints is read again (new ones start, deleted ones stop).
const REFRESH: Duration = Duration::from_secs(1);

/// Runs one delivery task per endpoint until shutdown.
pub async fn supervise(pool: Pool, config: Arc<Config>, owner: String, shutdown: Shutdown) {
    let policy = Arc::new(config.webhooks.address_policy());
    let http = match guard::client(policy.clone(), config.webhooks.timeout.get()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for webhooks; they stay undelivered");
            return;
        }
    };
    let mut running: HashMap<String, (endpoints::Endpoint, JoinHandle<()>)> = HashMap::new();
    while !shutdown.is_triggered() {
        let listed = async { endpoints::all(&mut (*pool.get().await?).clone(), &config).await };
        match listed.await {
            Ok(list) => {
                running.retain(|id, (e, task)| {
                    let keep = list.iter().any(|n| n == e) && !task.is_finished();
                    if !keep {
                        tracing::info!(endpoint = %id, "webhook endpoint stopped");
                        task.abort();
                    }
                    keep
                });
                for e in list {
                    if running.contains_key(&e.id) {
                        continue;
                    }
                    let worker = deliver::Deliverer {
                        pool: pool.clone(),
                        config: config.clone(),
                        http: http.clone(),
                        policy: policy.clone(),
                        owner: owner.clone(),
                        endpoint: e.clone(),
                    };
                    let task = tokio::spawn(worker.run(shutdown.clone()));
                    running.insert(e.id.clone(), (e, task));
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading webhook endpoints failed; retrying"),
        }
        shutdown.sleep(REFRESH).await;
    }
    for (_, (_, task)) in running {
        let _ = task.await;
    }
}
