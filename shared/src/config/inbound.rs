//! The `[inbound]` section: the SMTP listener for bounces and complaints, and its bounds.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

use crate::units::Span;

/// The optional inbound SMTP listener for the bounce domain (scheduler), bounded like
/// Postfix's smtpd: message size and line length enforced while reading, connection caps in
/// total and per client, a timeout per command and a deadline per session.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// Listen address, e.g. `0.0.0.0:25`; absent: reports come over `POST /v1/inbound` only.
    pub smtp_listen: Option<String>,
    #[serde(default = "defaults::inbound_max_bytes")]
    pub max_message_bytes: usize,
    /// Sessions at once, from everyone.
    #[serde(default = "defaults::inbound_max_connections")]
    pub max_connections: usize,
    /// Sessions at once from one client address (below `max_connections`).
    #[serde(default = "defaults::inbound_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Longest wait for one command, or for one line of DATA.
    #[serde(default = "defaults::inbound_command_timeout")]
    pub command_timeout: Span,
    /// Longest a session may last, however busy.
    #[serde(default = "defaults::inbound_session_timeout")]
    pub session_timeout: Span,
    /// Bytes of DATA held in memory by all sessions together; a message that would pass it
    /// is answered 452 (try later).
    #[serde(default = "defaults::inbound_max_buffered_bytes")]
    pub max_buffered_bytes: usize,
    /// PEM certificate chain and key: STARTTLS is offered.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Messages kept unmatched (`sluice:inbound:unmatched`, at most 2,000) are dropped once
    /// older than this.
    #[serde(default = "defaults::unmatched_retention")]
    pub unmatched_retention: Span,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            smtp_listen: None,
            max_message_bytes: defaults::inbound_max_bytes(),
            max_connections: defaults::inbound_max_connections(),
            max_connections_per_client: defaults::inbound_max_connections_per_client(),
            unmatched_retention: defaults::unmatched_retention(),
            command_timeout: defaults::inbound_command_timeout(),
            session_timeout: defaults::inbound_session_timeout(),
            max_buffered_bytes: defaults::inbound_max_buffered_bytes(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl InboundConfig {
    /// When the listener is on: an address, the domain it receives for, sane bounds.
    pub(super) fn validate(&self, return_path_domain: Option<&String>) -> Result<(), ConfigError> {
        let Some(l) = &self.smtp_listen else { return Ok(()) };
        if l.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("inbound.smtp_listen", l, "must be an address like 0.0.0.0:25"));
        }
        if return_path_domain.is_none() {
            return Err(invalid(
                "inbound.smtp_listen",
                l,
                "needs bounces.return_path_domain (the domain it receives for)",
            ));
        }
        smtp_bounds(
            "inbound",
            self.max_connections,
            self.max_connections_per_client,
            self.max_message_bytes,
            self.max_buffered_bytes,
        )
    }
}

/// The bounds every SMTP listener section (`section`) has: sessions in total and per client,
/// message size, and memory for messages in all sessions.
pub(super) fn smtp_bounds(
    section: &str,
    max_connections: usize,
    per_client: usize,
    max_message_bytes: usize,
    max_buffered_bytes: usize,
) -> Result<(), ConfigError> {
    at_least_one(&format!("{section}.max_connections"), max_connections)?;
    if per_client == 0 || per_client > max_connections {
        let problem = format!("must be 1 to {section}.max_connections");
        return Err(invalid(format!("{section}.max_connections_per_client"), per_client, problem));
    }
    if max_message_bytes < 1024 {
        return Err(invalid(format!("{section}.max_message_bytes"), max_message_bytes, "must be at least 1024"));
    }
    if max_buffered_bytes < max_message_bytes {
        let problem = format!("must be at least {section}.max_message_bytes");
        return Err(invalid(format!("{section}.max_buffered_bytes"), max_buffered_bytes, problem));
    }
    Ok(())
}

mod defaults {
    use super::*;
    pub fn unmatched_retention() -> Span {
        Span::try_from("30d").unwrap()
    }
    pub fn inbound_max_bytes() -> usize {
        10 * 1024 * 1024
    }
    pub fn inbound_max_connections() -> usize {
        64
    }
    pub fn inbound_max_connections_per_client() -> usize {
        8
    }
    pub fn inbound_command_timeout() -> Span {
        Span::try_from("60s").unwrap()
    }
    pub fn inbound_session_timeout() -> Span {
        Span::try_from("10m").unwrap()
    }
    pub fn inbound_max_buffered_bytes() -> usize {
        64 * 1024 * 1024
    }
}
