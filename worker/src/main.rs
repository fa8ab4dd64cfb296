//! `sluice-worker`: claims batches of jobs per destination domain, renders, sends over SMTP,
//! records each outcome and acknowledges. Stateless: run as many as needed.
//!
//! - [`engine`]: the scheduling loop over due domains; [`batch`]: one batch end to end.
//! - [`campaigns`]: compiled templates; [`message`]: RFC 5322 building.
//! - [`transport`]: the `Transport` seam and the SMTP relay pool; [`classify`]: reply -> outcome.

mod batch;
mod body;
mod charset;
mod classify;
mod context;
mod dead_letter;
mod engine;
mod links;
mod message;
mod orphans;
mod render;
mod sweep;
mod tracking;
mod transport;

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::Parser;
use sluice_shared::{
    config::{DeliveryMode, Role},
    lane::Lane,
    startup::{self, Started},
};

#[derive(Parser)]
#[command(name = "sluice-worker", about = "Sluice worker: claim, render, send, record, ack")]
struct Args {
    /// TOML config file; SLUICE__SECTION__KEY variables override it.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
}

// mimalloc: under glibc's allocator malloc and free were ~28% of a worker's instructions (a
// message's render, MIME and DKIM buffers are short-lived); with it the worker runs ~20% fewer
// (callgrind, docs/performance.md). Its v2 line without transparent huge pages (Cargo.toml):
// v3 grew the peak RSS by ~3 MB, and huge pages cost kernel time at every fault.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    startup::main("sluice-worker", Role::Worker, args.config.as_deref(), run)
}

/// The configured way out, with connections of its own.
fn delivery(
    config: &sluice_shared::config::Config,
    pool: &sluice_shared::redis::Pool,
) -> anyhow::Result<transport::Delivery> {
    Ok(match config.smtp.mode {
        DeliveryMode::Relay => transport::Delivery::Relays(transport::smtp::SmtpRelays::new(
            &config.smtp,
            config.limits.transactional_share,
        )?),
        DeliveryMode::Mx => {
            let dns = sluice_shared::dns::Dns::from_config(&config.dns)
                .map_err(|e| anyhow::anyhow!("config key `dns`: {e}"))?;
            transport::Delivery::Mx(Box::new(transport::mx::MxDelivery::new(config, dns, pool.clone())?))
        }
    })
}

async fn run(started: Started) -> anyhow::Result<()> {
    let Started { config, pool, shutdown } = started;
    let transport = delivery(&config, &pool)?;
    let consumer = config.worker.name.clone().unwrap_or_else(|| startup::host_name("worker"));
    tracing::info!(consumer, metrics = %config.metrics.listen, relays = config.smtp.relays.len(), "worker started");
    if config.public.is_none() {
        tracing::warn!(
            "no [public] section: campaign mail goes without List-Unsubscribe (Gmail and Yahoo require it for bulk senders)"
        );
    }
    for (i, r) in config.smtp.relays.iter().enumerate() {
        if r.allow_plaintext_auth && r.username.is_some() && r.tls == sluice_shared::config::TlsMode::None {
            tracing::warn!(relay = i, host = %r.host, "smtp.relays[{i}]: AUTH over tls = \"none\" (allow_plaintext_auth): the password crosses the network in the clear");
        }
    }
    // The priority lane runs on a thread and runtime of its own, with its own Redis and SMTP
    // connections: a transactional job never waits in a run queue behind thousands of bulk
    // tasks, only for the operating system to give its thread a turn, which it gets before the
    // nicer bulk threads (started from this main thread, it keeps the process's niceness).
    let (lane_config, lane_consumer, lane_shutdown) = (config.clone(), consumer.clone(), shutdown.clone());
    let priority = std::thread::Builder::new().name("priority-lane".into()).spawn(move || -> anyhow::Result<()> {
        // Its blocking threads carry its name: they too keep the process's niceness.
        let runtime =
            tokio::runtime::Builder::new_current_thread().thread_name("priority-lane").enable_all().build()?;
        runtime.block_on(async move {
            let pool = sluice_shared::redis::pool(&lane_config.redis)?;
            let transport = delivery(&lane_config, &pool)?;
            let ctx = Arc::new(context::Ctx::new(pool, lane_config, transport, lane_consumer));
            engine::run(ctx.clone(), Lane::Priority, lane_shutdown).await;
            ctx.transport.close().await;
            Ok(())
        })
    })?;
    let ctx = Arc::new(context::Ctx::new(pool, config, transport, consumer));
    // A task, not this thread: the bulk lane runs on the runtime's nicer threads.
    let bulk = tokio::spawn(engine::run(ctx.clone(), Lane::Bulk, shutdown));
    both_lanes(bulk, tokio::task::spawn_blocking(move || priority.join()), &ctx).await?;
    tracing::info!("worker stopped");
    Ok(())
}

type LaneThread = tokio::task::JoinHandle<std::thread::Result<anyhow::Result<()>>>;

/// Waits for both lanes to drain after shutdown. A lane only ends by itself when it failed (a
/// panic, or the priority lane unable to start): the worker then exits 1 at once, so that its
/// supervisor restarts it, rather than running half a worker that looks alive.
async fn both_lanes(
    mut bulk: tokio::task::JoinHandle<()>,
    mut priority: LaneThread,
    ctx: &context::Ctx<transport::Delivery>,
) -> anyhow::Result<()> {
    let bulk_ended = |ended: Result<(), tokio::task::JoinError>| {
        ended.map_err(|e| anyhow::anyhow!("the bulk lane stopped abnormally: {e}"))
    };
    let priority_ended = |ended: Result<std::thread::Result<anyhow::Result<()>>, tokio::task::JoinError>| match ended {
        Ok(Ok(result)) => result.map_err(|e| e.context("the priority lane stopped")),
        _ => Err(anyhow::anyhow!("the priority lane stopped abnormally")),
    };
    tokio::select! {
        ended = &mut bulk => {
            bulk_ended(ended)?;
            ctx.transport.close().await;
            priority_ended(priority.await)
        }
        ended = &mut priority => {
            priority_ended(ended)?;
            bulk_ended(bulk.await)?;
            ctx.transport.close().await;
            Ok(())
        }
    }
}
