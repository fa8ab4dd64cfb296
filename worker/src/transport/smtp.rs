//! The real transport: pooled lettre `AsyncSmtpConnection`s over sockets we own.
//!
//! lettre's own pool neither sets TCP_NODELAY (so Nagle adds ~40 ms per message) nor bounds
//! concurrent opens, and sends a NOOP per checkout. Every mode (plain, STARTTLS, implicit
//! TLS) runs on a socket opened here with TCP_NODELAY. Here each relay has a semaphore of
//! `smtp.max_connections_per_relay`, idle connections wait in an [`IdlePool`], and every
//! exchange runs under `smtp.timeout`. A pooled connection found dead on first use is replaced
//! at once: the message goes out on another connection and no attempt is counted. Messages
//! given together ([`Transport::send_all`]) go out on one connection, pipelined.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use lettre::transport::smtp::{
    authentication::{Credentials, Mechanism},
    client::{AsyncSmtpConnection, Certificate, TlsParameters},
    extension::ClientId,
};
use sluice_shared::{
    config::{RelayConfig, SmtpConfig, TlsMode, split_for_lane},
    lane::Lane,
};
use tokio::{net::TcpStream, sync::Semaphore};

use super::{
    Envelope, SendError, SmtpReply, Transport,
    pool::IdlePool,
    session::{Outgoing, Session},
};

struct Relay {
    config: RelayConfig,
    /// STARTTLS parameters (lettre upgrades the connection).
    tls: Option<TlsParameters>,
    /// Implicit TLS on our own socket.
    smtps: Option<tokio_rustls::TlsConnector>,
    permits: Arc<Semaphore>,
    /// Connections reserved for the priority lane (`limits.transactional_share` of the bound).
    priority_permits: Arc<Semaphore>,
}

/// Every configured relay, used round-robin.
pub struct SmtpRelays {
    relays: Vec<Relay>,
    /// Idle connections by relay index.
    pool: Arc<IdlePool<usize>>,
    next: AtomicUsize,
    hello: ClientId,
    timeout: Duration,
}

impl SmtpRelays {
    /// `share`: `limits.transactional_share`, the priority lane's extra connections per relay.
    pub fn new(config: &SmtpConfig, share: f64) -> anyhow::Result<SmtpRelays> {
        let relays = config
            .relays
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let key = |e: anyhow::Error| anyhow::anyhow!("config key `smtp.relays[{i}]`: {e}");
                let smtps = match r.tls {
                    TlsMode::Tls => Some(super::tls::connector(r.ca_file.as_deref()).map_err(key)?),
                    _ => None,
                };
                Ok(Relay {
                    tls: tls_parameters(r).map_err(key)?,
                    smtps,
                    config: r.clone(),
                    permits: Arc::new(Semaphore::new(config.max_connections_per_relay)),
                    priority_permits: Arc::new(Semaphore::new(split_for_lane(
                        config.max_connections_per_relay,
                        share,
                        Lane::Priority,
                    ))),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SmtpRelays {
            relays,
            pool: IdlePool::new(config),
            next: AtomicUsize::new(0),
            hello: ClientId::Domain(config.hello_name.clone()),
            timeout: config.timeout.get(),
        })
    }

    /// Says QUIT on every idle connection (shutdown).
    pub async fn close(&self) {
        self.pool.close_all().await;
    }

    async fn connect(&self, relay: &Relay) -> Result<Session, SendError> {
        let r = &relay.config;
        let tcp = TcpStream::connect((r.host.as_str(), r.port))
            .await
            .map_err(|e| SendError::Connection(format!("connect {}:{}: {e}", r.host, r.port)))?;
        tcp.set_nodelay(true).map_err(|e| SendError::Connection(e.to_string()))?;
        let mut conn = match &relay.smtps {
            Some(connector) => {
                let stream = super::tls::handshake(connector, &r.host, tcp)
                    .await
                    .map_err(|e| SendError::Connection(format!("TLS with {}:{}: {e}", r.host, r.port)))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                    .await
                    .map_err(connection_error)?
            }
            None => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(connection_error)?,
        };
        if r.tls == TlsMode::Starttls {
            let params = relay.tls.clone().expect("starttls relays have TLS parameters");
            conn.starttls(params, &self.hello).await.map_err(connection_error)?;
        }
        if let (Some(user), Some(pass)) = (&r.username, &r.password) {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &Credentials::new(user.clone(), pass.clone()))
                .await
                .map_err(connection_error)?;
        }
        Session::start(conn, &self.hello).await.map_err(connection_error)
    }

    /// Sends messages of one lane on relay `i`, on one connection while it lasts. Waiting for
    /// one of the relay's connections is bounded by `smtp.timeout`, as is each exchange.
    async fn send_on(&self, i: usize, lane: Lane, messages: &[Outgoing<'_>]) -> Vec<Result<SmtpReply, SendError>> {
        let relay = &self.relays[i];
        let permits = match lane {
            Lane::Bulk => &relay.permits,
            Lane::Priority => &relay.priority_permits,
        };
        let sent = async {
            let _permit = match tokio::time::timeout(self.timeout, permits.acquire()).await {
                Ok(permit) => permit.map_err(|_| SendError::Connection("relay closed".into()))?,
                Err(_) => {
                    let (host, port) = (&relay.config.host, relay.config.port);
                    let why = format!("no free connection to {host}:{port} within {:?}", self.timeout);
                    return Err(SendError::Connection(why));
                }
            };
            let (pooled, answers) = self.pool.send_all(&i, || self.connect(relay), messages).await?;
            if let Some(pooled) = pooled {
                self.pool.put(i, pooled);
            }
            Ok(answers)
        };
        sent.await.unwrap_or_else(|e| vec![Err(e); messages.len()])
    }
}

impl Transport for SmtpRelays {
    async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<SmtpReply, SendError> {
        let (from, to) = envelope.addresses()?;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.relays.len();
        let outgoing = Outgoing { from: from.as_ref(), to: to.as_ref(), message };
        self.send_on(i, envelope.lane, &[outgoing]).await.pop().expect("one answer per message")
    }

    async fn send_all(&self, messages: &[(Envelope, Vec<u8>)]) -> Vec<Result<SmtpReply, SendError>> {
        let Some((first, _)) = messages.first() else { return Vec::new() };
        let mut answers: Vec<Option<Result<SmtpReply, SendError>>> = vec![None; messages.len()];
        let mut addressed = Vec::with_capacity(messages.len());
        for (k, (envelope, message)) in messages.iter().enumerate() {
            match envelope.addresses() {
                Ok((from, to)) => addressed.push((k, from, to, message.as_slice())),
                Err(e) => answers[k] = Some(Err(e)),
            }
        }
        let outgoing: Vec<Outgoing> = addressed
            .iter()
            .map(|(_, from, to, message)| Outgoing { from: from.as_ref(), to: to.as_ref(), message })
            .collect();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.relays.len();
        for ((k, ..), answer) in addressed.iter().zip(self.send_on(i, first.lane, &outgoing).await) {
            answers[*k] = Some(answer);
        }
        answers.into_iter().map(|a| a.expect("every message answered")).collect()
    }
}

/// lettre's parameters for the STARTTLS upgrade (implicit TLS uses [`super::tls`]).
fn tls_parameters(r: &RelayConfig) -> anyhow::Result<Option<TlsParameters>> {
    if r.tls != TlsMode::Starttls {
        return Ok(None);
    }
    let mut builder = TlsParameters::builder(r.host.clone());
    if let Some(path) = &r.ca_file {
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("ca_file {path:?}: {e}"))?;
        builder = builder
            .add_root_certificate(Certificate::from_pem(&pem).map_err(|e| anyhow::anyhow!("ca_file {path:?}: {e}"))?);
    }
    Ok(Some(builder.build_rustls().map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?))
}

pub(super) fn code_number(code: lettre::transport::smtp::response::Code) -> u16 {
    code.to_string().parse().unwrap_or(0)
}

/// The text of the reply an error carries (lettre keeps it as the error's source).
pub(super) fn reply_text(e: &lettre::transport::smtp::Error) -> String {
    std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default()
}

/// While connecting, anything but an SMTP reply (refused, TLS, no STARTTLS offered) is a
/// problem of the connection, to retry later, never of the message.
pub(super) fn connection_error(e: lettre::transport::smtp::Error) -> SendError {
    match classify_error(e) {
        SendError::Unsendable(why) => SendError::Connection(why),
        other => other,
    }
}

/// 4xx/5xx replies keep their code and text; client-side refusals cannot succeed on retry;
/// everything else (network, TLS, timeouts) is a connection problem.
pub(super) fn classify_error(e: lettre::transport::smtp::Error) -> SendError {
    if let Some(code) = e.status() {
        return SendError::Rejected(SmtpReply::parse(code_number(code), &reply_text(&e)));
    }
    if e.is_client() {
        return SendError::Unsendable(e.to_string());
    }
    SendError::Connection(e.to_string())
}
