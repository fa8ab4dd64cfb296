//! SMTP submission (RFC 6409, `[submission]`): any system that speaks SMTP sends through
//! Sluice. Port 587 offers STARTTLS and takes AUTH only after it; port 465 is TLS from the
//! first byte (RFC 8314). The user name is an API key's id, the password its token, and the
//! key needs the `send` scope; `trusted_networks` may send without AUTH. Each message becomes
//! a transactional message ([`accept`]), its MIME sent as given ([`mime`]).
//!
//! Sessions, their caps and deadlines and STARTTLS are the shared [`crate::smtp_server`]'s;
//! the conversation is [`session`]'s. Both listeners run on the admin API's runtime, with its
//! Redis connections, so a campaign draining in the scheduler's own runtime delays a
//! submission no more than it delays `POST /v1/messages`.

pub mod accept;
pub mod command;
pub mod mime;
pub mod sasl;
mod session;

use std::sync::Arc;

use sluice_shared::{config::Config, metrics as m, netguard::Cidr, redis::Pool};
use tokio::sync::Semaphore;

use crate::{api::auth::Keys, inbound::command::BUDGET_STEP, pipeline::enqueue::Enqueuer, smtp_server};

/// Which port a listener serves, as the metrics name it.
#[derive(Debug, Clone, Copy)]
pub enum Port {
    /// 587, STARTTLS.
    Submission,
    /// 465, implicit TLS.
    Submissions,
}

impl Port {
    fn label(self) -> &'static str {
        match self {
            Port::Submission => "submission",
            Port::Submissions => "submissions",
        }
    }
}

/// The bound ports of `[submission]`, bound at startup so that a port in use stops the
/// process with the key named; served on the admin API's runtime by [`Listeners::spawn`].
pub struct Listeners {
    starttls: Option<std::net::TcpListener>,
    implicit: Option<std::net::TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let s = &config.submission;
        let bind = |key: &'static str, listen: Option<String>| async move {
            let Some(listen) = listen else { return anyhow::Ok(None) };
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| anyhow::anyhow!("config key `{key}` = {listen:?}: {e}"))?;
            tracing::info!(listen = %listen, key, "SMTP submission listener started");
            Ok(Some(listener.into_std()?))
        };
        let starttls = bind("submission.listen", s.listen.clone()).await?;
        let implicit = bind("submission.listen_tls", s.listen_tls.clone()).await?;
        Ok(Listeners { starttls, implicit })
    }

    /// Serves the bound ports until `shutdown`; called inside the runtime that runs them.
    pub fn spawn(
        self,
        state: &crate::api::AppState,
        shutdown: &sluice_shared::shutdown::Shutdown,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let config = &state.config;
        let s = &config.submission;
        let tls = crate::tls::optional("submission", s.tls_cert.as_ref(), s.tls_key.as_ref())?;
        let shared = Shared::new(config);
        let limits = Submission::limits(config);
        let conversation = |port| {
            Submission::new(
                state.pool.clone(),
                config.clone(),
                state.keys.clone(),
                state.enqueuer.clone(),
                &shared,
                port,
            )
        };
        let mut tasks = Vec::new();
        if let Some(listener) = self.starttls {
            let server = smtp_server::Server::new(conversation(Port::Submission), limits, tls.clone());
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tasks.push(tokio::spawn(Arc::new(server).run(listener, shutdown.clone())));
        }
        if let (Some(listener), Some(tls)) = (self.implicit, tls) {
            let server = smtp_server::Server::implicit_tls(conversation(Port::Submissions), limits, tls);
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tasks.push(tokio::spawn(Arc::new(server).run(listener, shutdown.clone())));
        }
        Ok(tasks)
    }
}

/// One submission listener's conversation and what it needs.
pub struct Submission {
    pool: Pool,
    config: Arc<Config>,
    keys: Arc<Keys>,
    enqueuer: Arc<Enqueuer>,
    trusted: Vec<Cidr>,
    failures: Arc<sasl::Failures>,
    /// Permits of [`BUDGET_STEP`] bytes of messages held in memory, shared by every session.
    budget: Arc<Semaphore>,
    port: Port,
    host: String,
}

/// What both listeners of one process share: the AUTH failure counts and the memory budget.
#[derive(Clone)]
pub struct Shared {
    failures: Arc<sasl::Failures>,
    budget: Arc<Semaphore>,
}

impl Shared {
    pub fn new(config: &Config) -> Shared {
        let steps = config.submission.max_buffered_bytes.div_ceil(BUDGET_STEP);
        let failures = Arc::new(sasl::Failures::new(config.submission.auth_failure_delay.get()));
        Shared { failures, budget: Arc::new(Semaphore::new(steps)) }
    }
}

impl Submission {
    pub fn new(
        pool: Pool,
        config: Arc<Config>,
        keys: Arc<Keys>,
        enqueuer: Arc<Enqueuer>,
        shared: &Shared,
        port: Port,
    ) -> Submission {
        let trusted = config.submission.trusted();
        let host = sluice_shared::startup::host_name("sluice");
        let (failures, budget) = (shared.failures.clone(), shared.budget.clone());
        Submission { pool, config, keys, enqueuer, trusted, failures, budget, port, host }
    }

    /// The session limits of `[submission]`.
    pub fn limits(config: &Config) -> smtp_server::Limits {
        let s = &config.submission;
        smtp_server::Limits {
            max_connections: s.max_connections,
            max_connections_per_client: s.max_connections_per_client,
            session_timeout: s.session_timeout.get(),
        }
    }
}

/// A command or message refused: the reply and the reason the metrics count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Reply code and enhanced status code, e.g. `550 5.6.0`.
    pub code: &'static str,
    pub reason: &'static str,
    pub text: String,
}

impl Refusal {
    fn new(code: &'static str, reason: &'static str, text: impl Into<String>) -> Refusal {
        Refusal { code, reason, text: text.into() }
    }

    /// Something wrong with the message itself.
    pub fn content(text: impl Into<String>) -> Refusal {
        Refusal::new("550 5.6.0", "content", text)
    }

    /// `what` (the envelope sender or `From:`) is in a domain we cannot sign for.
    pub fn sender_domain(what: &str, domain: &str) -> Refusal {
        Refusal::new(
            "553 5.7.1",
            "sender_domain",
            format!("{what} domain {domain:?} is not a sending domain here (no DKIM key for it)"),
        )
    }

    /// Redis could not take the message: the client keeps it and retries.
    pub fn unavailable(error: &dyn std::fmt::Display) -> Refusal {
        tracing::warn!(error = %error, "submitted message not stored; asking the client to retry");
        Refusal::new("451 4.3.0", "unavailable", "Temporary failure storing the message, try again later")
    }

    /// The key is over its `send_rate` (`text` says which and for how long).
    pub fn rate_limited(text: String) -> Refusal {
        Refusal::new("451 4.7.1", "rate_limited", text)
    }

    /// The reply line, counted.
    pub fn reply(&self) -> String {
        metrics::counter!(m::SUBMISSION_REFUSED, "reason" => self.reason).increment(1);
        let text: String = self.text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("{} {text}\r\n", self.code)
    }
}
