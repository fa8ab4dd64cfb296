//! The `[submission]` section: the SMTP submission listener (RFC 6409) through which any
//! system that speaks SMTP sends transactional mail, bounded like Postfix's smtpd.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

use crate::{netguard::Cidr, units::Span};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionConfig {
    /// Port 587: STARTTLS offered, AUTH accepted only after it (or from `trusted_networks`).
    pub listen: Option<String>,
    /// Port 465: implicit TLS (RFC 8314).
    pub listen_tls: Option<String>,
    /// PEM certificate chain and key for both ports.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// Envelope recipients of one message.
    #[serde(default = "defaults::max_recipients")]
    pub max_recipients: usize,
    /// CIDRs that may send without AUTH (Postfix's `mynetworks`).
    #[serde(default)]
    pub trusted_networks: Vec<String>,
    /// Sessions at once, from everyone.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Sessions at once from one client address.
    #[serde(default = "defaults::max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Longest wait for one command, or for one line of DATA (Postfix's `smtpd_timeout`).
    #[serde(default = "defaults::command_timeout")]
    pub command_timeout: Span,
    /// Longest a session may last, however busy.
    #[serde(default = "defaults::session_timeout")]
    pub session_timeout: Span,
    /// Bytes of messages held in memory by all sessions together; past it 452 (try later).
    #[serde(default = "defaults::max_buffered_bytes")]
    pub max_buffered_bytes: usize,
    /// How much longer each failed AUTH from one address waits for its answer, past the
    /// third (at most five times this; Postfix's `smtpd_error_sleep_time`).
    #[serde(default = "defaults::auth_failure_delay")]
    pub auth_failure_delay: Span,
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        SubmissionConfig {
            listen: None,
            listen_tls: None,
            tls_cert: None,
            tls_key: None,
            max_message_bytes: defaults::max_message_bytes(),
            max_recipients: defaults::max_recipients(),
            trusted_networks: Vec::new(),
            max_connections: defaults::max_connections(),
            max_connections_per_client: defaults::max_connections_per_client(),
            command_timeout: defaults::command_timeout(),
            session_timeout: defaults::session_timeout(),
            max_buffered_bytes: defaults::max_buffered_bytes(),
            auth_failure_delay: defaults::auth_failure_delay(),
        }
    }
}

impl SubmissionConfig {
    /// Is any submission port configured?
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || self.listen_tls.is_some()
    }

    /// The parsed `trusted_networks` (checked by [`SubmissionConfig::validate`]).
    pub fn trusted(&self) -> Vec<Cidr> {
        self.trusted_networks.iter().filter_map(|c| Cidr::try_from(c.as_str()).ok()).collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [("submission.listen", &self.listen), ("submission.listen_tls", &self.listen_tls)] {
            if let Some(l) = value
                && l.parse::<std::net::SocketAddr>().is_err()
            {
                return Err(invalid(key, l, "must be an address like 0.0.0.0:587"));
            }
        }
        for (i, c) in self.trusted_networks.iter().enumerate() {
            Cidr::try_from(c.as_str()).map_err(|e| invalid(format!("submission.trusted_networks[{i}]"), c, e))?;
        }
        if !self.enabled() {
            return Ok(());
        }
        let tls = self.tls_cert.is_some();
        if let (Some(l), false) = (&self.listen_tls, tls) {
            return Err(invalid("submission.listen_tls", l, "needs submission.tls_cert and tls_key"));
        }
        if let (Some(l), false, true) = (&self.listen, tls, self.trusted_networks.is_empty()) {
            return Err(invalid(
                "submission.listen",
                l,
                "needs submission.tls_cert and tls_key (AUTH is taken over TLS only) or trusted_networks",
            ));
        }
        at_least_one("submission.max_recipients", self.max_recipients)?;
        super::inbound::smtp_bounds(
            "submission",
            self.max_connections,
            self.max_connections_per_client,
            self.max_message_bytes,
            self.max_buffered_bytes,
        )
    }
}

mod defaults {
    use super::*;
    pub fn max_message_bytes() -> usize {
        10 * 1024 * 1024
    }
    pub fn max_recipients() -> usize {
        50
    }
    pub fn max_connections() -> usize {
        256
    }
    pub fn max_connections_per_client() -> usize {
        64
    }
    pub fn command_timeout() -> Span {
        Span::try_from("300s").unwrap()
    }
    pub fn session_timeout() -> Span {
        Span::try_from("1h").unwrap()
    }
    pub fn max_buffered_bytes() -> usize {
        256 * 1024 * 1024
    }
    pub fn auth_failure_delay() -> Span {
        Span::try_from("1s").unwrap()
    }
}
