//! How both binaries start: logs, config (exit code 2 naming the bad key), the operations
//! listener (metrics, health, readiness), signal handling, and a Redis pool that waits until
//! Redis answers.

use std::{future::Future, path::Path, process::ExitCode, sync::Arc};

use crate::{
    config::{Config, ConfigError, Role},
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

/// Starts a binary called `name` and runs `body`; the exit code says how it ended
/// (0 done or shut down, 1 failed, 2 bad config).
pub async fn run<F, Fut>(name: &str, role: Role, config_path: Option<&Path>, body: F) -> ExitCode
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
    let result = async {
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
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
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
