//! `sluice-scheduler`: wires the library's parts ([`sluice_scheduler`]) into one process:
//! the admin API on a runtime of its own, the public and inbound listeners, the event pump,
//! the webhooks, the history writers and the housekeeping loop.

use sluice_scheduler::{
    api, events, history, http, inbound,
    pipeline::{duties, enqueue, reconcile},
    public, smtp_server, submission, suppression, tls, webhook,
};

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::Parser;
use sluice_shared::{
    config::Role,
    startup::{self, Started},
};

#[derive(Parser)]
#[command(name = "sluice-scheduler", about = "Sluice scheduler: admin API, intake, expansion, retries")]
struct Args {
    /// TOML config file; SLUICE__SECTION__KEY variables override it.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    startup::main("sluice-scheduler", Role::Scheduler, args.config.as_deref(), run)
}

/// Serves the admin API on threads and a runtime of its own, with its own Redis connections:
/// a transactional send is accepted without waiting behind expansion, the event pump or the
/// webhooks in the scheduler's main runtime, and before them when the cores are busy (called
/// from the main thread, its threads keep the process's niceness; the main runtime's are nicer).
/// The SMTP submission ports run on the same runtime, for the same reason.
fn serve_api(
    listener: tokio::net::TcpListener,
    submission: submission::Listeners,
    history: Option<history::History>,
    config: Arc<sluice_shared::config::Config>,
    shutdown: sluice_shared::shutdown::Shutdown,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let listener = listener.into_std()?;
    let tls = tls::optional("api", config.api.tls_cert.as_ref(), config.api.tls_key.as_ref())?;
    Ok(std::thread::Builder::new().name("api".into()).spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("api-worker")
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let pool = sluice_shared::redis::pool(&config.redis)?;
            let enqueuer = Arc::new(enqueue::Enqueuer::new(config.clone())?);
            let state = api::AppState::new(pool, config.clone(), enqueuer).with_history(history);
            let submission = submission.spawn(&state, &shutdown)?;
            http::serve(listener, api::app(state), &config.http, tls, shutdown).await;
            for task in submission {
                task.await?;
            }
            Ok(())
        })
    })?)
}

async fn run(started: Started) -> anyhow::Result<()> {
    let Started { config, pool, shutdown } = started;
    let consumer = config.scheduler.name.clone().unwrap_or_else(|| startup::host_name("scheduler"));
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .map_err(|e| anyhow::anyhow!("config key `api.listen` = {:?}: {e}", config.api.listen))?;
    tracing::info!(api = %config.api.listen, metrics = %config.metrics.listen, consumer, "scheduler started");
    let enqueuer = Arc::new(enqueue::Enqueuer::new(config.clone())?);
    let links = inbound::InboundParts::from_config(&config);
    let inbound_smtp = match (&config.inbound.smtp_listen, &links) {
        (Some(listen), Some(parts)) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("config key `inbound.smtp_listen` = {listen:?}: {e}"))?;
            tracing::info!(inbound_smtp = %listen, "inbound SMTP listener started");
            let inbound = &config.inbound;
            let tls = tls::optional("inbound", inbound.tls_cert.as_ref(), inbound.tls_key.as_ref())?;
            let reports = inbound::smtp::Reports::new(pool.clone(), config.clone(), parts.clone());
            let server = Arc::new(smtp_server::Server::new(reports, inbound::smtp::Reports::limits(&config), tls));
            Some(server.run(listener, shutdown.clone()))
        }
        _ => None,
    };
    let submission = submission::Listeners::bind(&config).await?;
    let history = history::History::from_config(&config)?;
    let api_history = history.as_ref().map(history::History::for_another_runtime).transpose()?;
    let server = serve_api(listener, submission, api_history, config.clone(), shutdown.clone())?;
    let public = match (&config.public, links) {
        (Some(p), Some(links)) => {
            let listener = tokio::net::TcpListener::bind(&p.listen)
                .await
                .map_err(|e| anyhow::anyhow!("config key `public.listen` = {:?}: {e}", p.listen))?;
            tracing::info!(public = %p.listen, base_url = %p.base_url, "public listener started");
            let tls = tls::optional("public", p.tls_cert.as_ref(), p.tls_key.as_ref())?;
            let app = public::app(public::PublicState::new(pool.clone(), config.clone(), links.tokens.clone()));
            let (config, public_shutdown) = (config.clone(), shutdown.clone());
            Some(async move { http::serve(listener, app, &config.http, tls, public_shutdown).await })
        }
        _ => None,
    };
    tokio::spawn(suppression::migrate::run_until_done(pool.clone(), shutdown.clone()));
    // Tasks, not this thread: they run on the runtime's nicer threads.
    let mut parts = Parts::default();
    parts.add("event pump", events::pump::run(pool.clone(), config.clone(), consumer.clone(), shutdown.clone()));
    parts.add("reconcile duty", reconcile::run(pool.clone(), config.clone(), consumer.clone(), shutdown.clone()));
    parts.add("webhooks", webhook::supervise(pool.clone(), config.clone(), consumer.clone(), shutdown.clone()));
    if let Some(h) = history {
        parts.add("history writers", history::writer::run(pool.clone(), h, consumer.clone(), shutdown.clone()));
    }
    if let Some(public) = public {
        parts.add("public listener", public);
    }
    if let Some(smtp) = inbound_smtp {
        parts.add("inbound SMTP listener", smtp);
    }
    parts.add("housekeeping", duties::Duties { pool, config, consumer, enqueuer }.run(shutdown));
    parts.add_fallible("admin API", async move {
        match tokio::task::spawn_blocking(move || server.join()).await {
            Ok(Ok(result)) => result,
            _ => Err(anyhow::anyhow!("its thread panicked")),
        }
    });
    parts.wait().await?;
    tracing::info!("scheduler stopped");
    Ok(())
}

/// The scheduler's long-running parts, each a task until shutdown. One that fails first (an
/// error, a panic) ends the scheduler with exit 1, for its supervisor to restart it, rather
/// than leaving it half running (say, the API up and the event pump gone).
#[derive(Default)]
struct Parts {
    set: tokio::task::JoinSet<anyhow::Result<()>>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Parts {
    fn add(&mut self, name: &'static str, part: impl Future<Output = ()> + Send + 'static) {
        self.add_fallible(name, async move {
            part.await;
            Ok(())
        });
    }

    fn add_fallible(&mut self, name: &'static str, part: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        let id = self.set.spawn(part).id();
        self.names.insert(id, name);
    }

    /// Waits for every part to end; the first failure ends the wait.
    async fn wait(mut self) -> anyhow::Result<()> {
        while let Some(ended) = self.set.join_next_with_id().await {
            let (id, result) = match ended {
                Ok((id, result)) => (id, result),
                Err(e) => (e.id(), Err(anyhow::anyhow!("{e}"))),
            };
            result.map_err(|e| e.context(format!("the {} stopped abnormally", self.names[&id])))?;
        }
        Ok(())
    }
}
