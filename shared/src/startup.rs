//! How both binaries start: logs, config (exit code 2 naming the bad key), the operations
//! listener (metrics, health, readiness), signal handling, and a Redis pool that waits until
//! Redis answers.

use std::{future::Future, path::Path, process::ExitCode, sync::Arc};

use crate::{
    config::{Config, ConfigError, Role},
    niceness,
    redis::{self, Pool},
    shutdown::{self, Shutdown},
    telemetry,
};

/// What a binary has once started.
pub struct Started {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub shutdown: Shutdown,
}

/// Starts a binary called `name` and runs `body` on the main thread; the exit code says how
/// it ended (0 done or shut down, 1 failed, 2 bad config).
///
/// The runtime's own threads run `worker.bulk_niceness` / `scheduler.bulk_niceness` nicer
/// than the process ([`niceness`]): `body` spawns its bulk work as tasks, and starts the
/// threads that serve latency-critical work (the priority lane, the admin API) from the main
/// thread, which keeps the process's niceness and passes it on to them.
pub fn main<F, Fut>(name: &str, role: Role, config_path: Option<&Path>, body: F) -> ExitCode
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    telemetry::init();
    #[cfg(feature = "failpoints")]
    let _crash_points = fail::FailScenario::setup();
    let config = match Config::load(config_path, role).and_then(|c| files_readable(&c, role).map(|()| c)) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    // Every runtime thread goes to the same niceness, the main thread's plus the configured steps.
    let bulk = niceness::above_this_thread(config.bulk_niceness(role));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || bulk.into_iter().for_each(niceness::at_least))
        .build();
    let result = match runtime {
        Ok(runtime) => {
            let result = runtime.block_on(serve(role, config, body));
            // Drained or failed, `body` is done: a thread still blocked (a failed lane's
            // partner, say) must not hold the exit.
            runtime.shutdown_background();
            result
        }
        Err(e) => Err(anyhow::anyhow!("starting the runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Metrics, the operations listener, signals and Redis, then `body`.
async fn serve<F, Fut>(role: Role, config: Arc<Config>, body: F) -> anyhow::Result<()>
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let metrics = crate::metrics::install()?;
    crate::metrics::initialize(role, &config);
    let shutdown = shutdown::on_signals();
    let pool = redis::pool(&config.redis)?;
    crate::ops_http::serve(&config.metrics.listen, pool.clone(), shutdown.clone(), metrics).await?;
    tracing::info!(redis = %config.redis.describe(), "connecting to Redis");
    if redis::wait_until_reachable(&pool, &config.redis.describe(), &shutdown).await.is_none() {
        return Ok(());
    }
    body(Started { config, pool, shutdown }).await
}

/// What the config's values alone cannot show: a worker's DKIM key files read and parse.
fn files_readable(config: &Config, role: Role) -> Result<(), ConfigError> {
    if role != Role::Worker {
        return Ok(());
    }
    crate::dkim::Signer::from_config(&config.dkim).map(drop).map_err(|e| match e {
        crate::dkim::DkimError::Key { index, path, problem } => {
            ConfigError::Invalid { key: format!("dkim.keys[{index}].key_file"), value: path, problem }
        }
        other => ConfigError::Invalid { key: "dkim.keys".into(), value: String::new(), problem: other.to_string() },
    })
}

/// The machine's host name (the default consumer name), or `fallback`.
pub fn host_name(fallback: &str) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| fallback.into())
}
