//! The real transport: pooled lettre `AsyncSmtpConnection`s over sockets we own.
//!
//! lettre's own pool neither sets TCP_NODELAY (so Nagle adds ~40 ms per message) nor bounds
//! concurrent opens, and sends a NOOP per checkout. Every mode (plain, STARTTLS, implicit
//! TLS) runs on a socket opened here with TCP_NODELAY. Here each relay has a semaphore of
//! `smtp.max_connections_per_relay`, an idle list, and every exchange runs under `smtp.timeout`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use lettre::{
    Address,
    address::Envelope as LettreEnvelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, Certificate, TlsParameters},
        extension::ClientId,
    },
};
use sluice_shared::{
    config::{RelayConfig, SmtpConfig, TlsMode, split_for_lane},
    lane::Lane,
};
use tokio::{net::TcpStream, sync::Semaphore};

use super::{Envelope, SendError, SmtpReply, Transport, pipelining::Session};

struct Relay {
    config: RelayConfig,
    /// STARTTLS parameters (lettre upgrades the connection).
    tls: Option<TlsParameters>,
    /// Implicit TLS on our own socket.
    smtps: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<Session>>,
    permits: Arc<Semaphore>,
    /// Connections reserved for the priority lane (`limits.transactional_share` of the bound).
    priority_permits: Arc<Semaphore>,
}

/// Every configured relay, used round-robin.
pub struct SmtpRelays {
    relays: Vec<Relay>,
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
                    idle: Mutex::new(Vec::new()),
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
            next: AtomicUsize::new(0),
            hello: ClientId::Domain(config.hello_name.clone()),
            timeout: config.timeout.get(),
        })
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

    async fn send_on(
        &self,
        relay: &Relay,
        lane: Lane,
        envelope: &LettreEnvelope,
        message: &[u8],
    ) -> Result<SmtpReply, SendError> {
        let permits = match lane {
            Lane::Bulk => &relay.permits,
            Lane::Priority => &relay.priority_permits,
        };
        let _permit = permits.acquire().await.map_err(|_| SendError::Connection("relay closed".into()))?;
        let pooled = relay.idle.lock().unwrap().pop();
        let mut session = match pooled {
            Some(s) => s,
            None => self.connect(relay).await?,
        };
        let reply = session.send(envelope, message).await;
        match reply {
            Ok(response) => {
                if !session.conn.has_broken() {
                    relay.idle.lock().unwrap().push(session);
                }
                let text: Vec<&str> = response.message().collect();
                Ok(SmtpReply::parse(code_number(response.code()), &text.join(" ")))
            }
            // An error reply leaves the connection closed (lettre) or out of step (pipelined):
            // it is dropped, and the next send opens a new one.
            Err(e) => Err(classify_error(e)),
        }
    }
}

impl Transport for SmtpRelays {
    async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<SmtpReply, SendError> {
        let from: Address = envelope.from.parse().map_err(|e| SendError::Unsendable(format!("sender address: {e}")))?;
        let to: Address = envelope.to.parse().map_err(|e| SendError::Unsendable(format!("recipient address: {e}")))?;
        let lane = envelope.lane;
        let envelope = LettreEnvelope::new(Some(from), vec![to]).map_err(|e| SendError::Unsendable(e.to_string()))?;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.relays.len();
        let relay = &self.relays[i];
        match tokio::time::timeout(self.timeout, self.send_on(relay, lane, &envelope, message)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Connection(format!(
                "no reply from {}:{} within {:?}",
                relay.config.host, relay.config.port, self.timeout
            ))),
        }
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
        let text = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        return SendError::Rejected(SmtpReply::parse(code_number(code), &text));
    }
    if e.is_client() {
        return SendError::Unsendable(e.to_string());
    }
    SendError::Connection(e.to_string())
}
