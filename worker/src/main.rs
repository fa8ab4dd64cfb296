//! `sluice-worker`: claims batches of jobs per destination domain, renders, sends over SMTP,
//! records each outcome and acknowledges. Stateless: run as many as needed.
//!
//! - [`engine`]: the scheduling loop over due domains; [`batch`]: one batch end to end.
//! - [`campaigns`]: compiled templates; [`message`]: RFC 5322 building.
//! - [`transport`]: the `Transport` seam and the SMTP relay pool; [`classify`]: reply -> outcome.

mod batch;
mod campaigns;
mod classify;
mod context;
mod engine;
mod message;
mod transport;

use std::{path::PathBuf, sync::Arc};

use clap::Parser;
use sluice_shared::{
    config::{Config, Role},
    redis, shutdown, telemetry,
};

#[derive(Parser)]
#[command(name = "sluice-worker", about = "Sluice worker: claim, render, send, record, ack")]
struct Args {
    /// TOML config file; SLUICE__SECTION__KEY variables override it.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    telemetry::init();
    let config = match Config::load(args.config.as_deref(), Role::Worker) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("sluice-worker: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    sluice_shared::metrics::install(&config.metrics.listen)?;
    let transport = transport::smtp::SmtpRelays::new(&config.smtp)?;
    let shutdown = shutdown::on_signals();
    let pool = redis::pool(&config.redis)?;
    tracing::info!(redis = %redis::redacted(&config.redis.url), "connecting to Redis");
    if redis::wait_until_reachable(&pool, &config.redis.url, &shutdown).await.is_none() {
        return Ok(());
    }
    let consumer = config.worker.name.clone().unwrap_or_else(host_name);
    tracing::info!(consumer, metrics = %config.metrics.listen, relays = config.smtp.relays.len(), "worker started");
    let ctx = Arc::new(context::Ctx::new(pool, config, transport, consumer));
    engine::run(ctx, shutdown).await;
    tracing::info!("worker stopped");
    Ok(())
}
