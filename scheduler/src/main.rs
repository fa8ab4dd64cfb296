//! `sluice-scheduler`: the admin HTTP API, the Redis intake, and the housekeeping that moves
//! campaigns into per-domain streams and retries back into them. Any number may run.
//!
//! - [`api`]: the admin HTTP API (`app()` builds the router).
//! - [`campaign`]: request validation, storage, the shared submit path.
//! - [`intake`]: the `sluice:intake` stream consumer.
//! - [`expander`], [`retries`], [`enqueue`]: moving jobs into domain streams.
//! - [`duties`]: the housekeeping loop.

mod api;
mod campaign;
mod duties;
mod enqueue;
mod expander;
mod intake;
mod retries;

use std::{path::PathBuf, sync::Arc};

use clap::Parser;
use sluice_shared::{
    config::{Config, Role},
    redis, shutdown, telemetry,
};

#[derive(Parser)]
#[command(name = "sluice-scheduler", about = "Sluice scheduler: admin API, intake, expansion, retries")]
struct Args {
    /// TOML config file; SLUICE__SECTION__KEY variables override it.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "scheduler".into())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    telemetry::init();
    let config = match Config::load(args.config.as_deref(), Role::Scheduler) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("sluice-scheduler: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-scheduler: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    sluice_shared::metrics::install(&config.metrics.listen)?;
    let shutdown = shutdown::on_signals();
    let pool = redis::pool(&config.redis)?;
    tracing::info!(redis = %redis::redacted(&config.redis.url), "connecting to Redis");
    if redis::wait_until_reachable(&pool, &config.redis.url, &shutdown).await.is_none() {
        return Ok(());
    }
    let consumer = config.scheduler.name.clone().unwrap_or_else(host_name);
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .map_err(|e| anyhow::anyhow!("config key `api.listen` = {:?}: {e}", config.api.listen))?;
    tracing::info!(api = %config.api.listen, metrics = %config.metrics.listen, consumer, "scheduler started");
    let app = api::app(api::AppState { pool: pool.clone(), config: config.clone() });
    let api_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { api_shutdown.wait().await }).await
    });
    let duties = duties::Duties { pool, config, consumer, enqueuer: Default::default() };
    duties.run(shutdown).await;
    server.await??;
    tracing::info!("scheduler stopped");
    Ok(())
}
