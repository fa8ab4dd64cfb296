//! The `[smtp]` section: relay or direct MX delivery, TLS, source addresses, connection reuse.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

use crate::units::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    #[serde(default = "defaults::tls")]
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Extra PEM root certificate to trust (private relays, tests).
    pub ca_file: Option<String>,
    /// Allows AUTH over `tls = "none"` (the password crosses the network in the clear); the
    /// worker warns at startup.
    #[serde(default)]
    pub allow_plaintext_auth: bool,
}

/// How workers reach recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// Through the configured `[[smtp.relays]]`.
    Relay,
    /// Straight to each recipient domain's MX hosts.
    Mx,
}

/// A source address for direct delivery, with the name it gives in EHLO (its PTR name).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceIp {
    pub address: std::net::IpAddr,
    pub helo: String,
    /// Addresses in `warmup.spill_pool` are used only when the others are at their warm-up
    /// caps; every other pool takes turns.
    #[serde(default = "defaults::pool_name")]
    pub pool: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    #[serde(default = "defaults::delivery_mode")]
    pub mode: DeliveryMode,
    #[serde(default)]
    pub relays: Vec<RelayConfig>,
    /// mx mode: the port MX hosts listen on (25; tests use their own).
    #[serde(default = "defaults::mx_port")]
    pub mx_port: u16,
    /// mx mode: source addresses used in turn; empty: the system picks, EHLO `hello_name`.
    #[serde(default)]
    pub ip_pool: Vec<SourceIp>,
    /// mx mode: internal address blocks (CIDRs) MX hosts may resolve to. Every other loopback,
    /// private, link-local, unique-local, multicast or unspecified address is never contacted.
    #[serde(default)]
    pub mx_allow_networks: Vec<String>,
    /// mx mode: an extra PEM root trusted when verifying MX certificates (`require_tls`), beside
    /// the Mozilla roots (private MX hosts, tests).
    pub mx_ca_file: Option<String>,
    /// mx mode: honour MTA-STS (RFC 8461) policies: in `enforce` mode, only the listed MX hosts,
    /// over verified TLS.
    #[serde(default = "defaults::yes")]
    pub mta_sts: bool,
    /// mx mode: the HTTPS port of MTA-STS policy hosts (443; tests use their own).
    #[serde(default = "defaults::https_port")]
    pub mta_sts_port: u16,
    /// Name sent in EHLO.
    #[serde(default = "defaults::hello_name")]
    pub hello_name: String,
    /// Bound on every SMTP exchange (connect, each command, the message).
    #[serde(default = "defaults::smtp_timeout")]
    pub timeout: Span,
    /// Concurrent connections a worker opens to one relay.
    #[serde(default = "defaults::relay_connections")]
    pub max_connections_per_relay: usize,
    /// A pooled connection idle this long is closed with QUIT (Postfix:
    /// `smtp_connection_cache_time_limit`, 2s; KumoMTA: `idle_timeout`, 60s).
    #[serde(default = "defaults::smtp_idle_timeout")]
    pub idle_timeout: Span,
    /// A connection this old is closed with QUIT when it comes back to the pool (Postfix:
    /// `smtp_connection_reuse_time_limit`, 300s).
    #[serde(default = "defaults::smtp_max_connection_age")]
    pub max_connection_age: Span,
}

impl SmtpConfig {
    /// The addresses MX hosts may have (the allowed blocks were checked at startup).
    pub fn mx_address_policy(&self) -> crate::netguard::AddressPolicy {
        crate::netguard::AddressPolicy::new(&self.mx_allow_networks).expect("checked when the config was validated")
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            mode: defaults::delivery_mode(),
            relays: Vec::new(),
            mx_port: defaults::mx_port(),
            ip_pool: Vec::new(),
            mx_allow_networks: Vec::new(),
            mx_ca_file: None,
            mta_sts: true,
            mta_sts_port: defaults::https_port(),
            hello_name: defaults::hello_name(),
            timeout: defaults::smtp_timeout(),
            max_connections_per_relay: defaults::relay_connections(),
            idle_timeout: defaults::smtp_idle_timeout(),
            max_connection_age: defaults::smtp_max_connection_age(),
        }
    }
}

impl SmtpConfig {
    /// A way to deliver (relays, or MX without relays) and well-formed relays (worker only).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.mode {
            DeliveryMode::Relay if self.relays.is_empty() => {
                return Err(invalid("smtp.relays", "[]", "relay mode needs at least one [[smtp.relays]]"));
            }
            DeliveryMode::Mx if !self.relays.is_empty() => {
                return Err(invalid(
                    "smtp.relays",
                    "[...]",
                    "mx mode delivers directly; remove [[smtp.relays]] or use mode = \"relay\"",
                ));
            }
            _ => {}
        }
        crate::netguard::AddressPolicy::new(&self.mx_allow_networks)
            .map_err(|m| invalid("smtp.mx_allow_networks", self.mx_allow_networks.join(","), m))?;
        if let Some(ca) = &self.mx_ca_file
            && let Err(e) = std::fs::read(ca)
        {
            return Err(invalid("smtp.mx_ca_file", ca, format!("cannot be read: {e}")));
        }
        if self.mx_port == 0 {
            return Err(invalid("smtp.mx_port", 0, "must be 1-65535"));
        }
        for (i, ip) in self.ip_pool.iter().enumerate() {
            if crate::validate::domain(&ip.helo).is_err() {
                return Err(invalid(
                    format!("smtp.ip_pool[{i}].helo"),
                    &ip.helo,
                    "must be a host name (the address's PTR name)",
                ));
            }
        }
        for (i, r) in self.relays.iter().enumerate() {
            r.validate(i)?;
        }
        at_least_one("smtp.max_connections_per_relay", self.max_connections_per_relay)?;
        for (key, span) in
            [("smtp.idle_timeout", self.idle_timeout), ("smtp.max_connection_age", self.max_connection_age)]
        {
            if span.as_millis() < 100 {
                return Err(invalid(key, format!("{:?}", span.get()), "must be at least 100ms"));
            }
        }
        Ok(())
    }
}

impl RelayConfig {
    fn validate(&self, i: usize) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(invalid(format!("smtp.relays[{i}].host"), &self.host, "must not be empty"));
        }
        if self.port == 0 {
            return Err(invalid(format!("smtp.relays[{i}].port"), 0, "must be 1-65535"));
        }
        if let Some(ca) = &self.ca_file
            && let Err(e) = std::fs::read(ca)
        {
            return Err(invalid(format!("smtp.relays[{i}].ca_file"), ca, format!("cannot be read: {e}")));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(invalid(
                format!("smtp.relays[{i}].username"),
                self.username.as_deref().unwrap_or(""),
                "username and password go together",
            ));
        }
        if let Some(user) = &self.username
            && self.tls == TlsMode::None
            && !self.allow_plaintext_auth
        {
            return Err(invalid(
                format!("smtp.relays[{i}].username"),
                user,
                "AUTH over tls = \"none\" sends the password in the clear; use tls = \"starttls\" or \"tls\", or set allow_plaintext_auth = true for this relay",
            ));
        }
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn tls() -> TlsMode {
        TlsMode::None
    }
    pub fn hello_name() -> String {
        "localhost".into()
    }
    pub fn smtp_timeout() -> Span {
        Span::try_from("30s").unwrap()
    }
    pub fn relay_connections() -> usize {
        64
    }
    pub fn yes() -> bool {
        true
    }
    pub fn https_port() -> u16 {
        443
    }
    pub fn smtp_idle_timeout() -> Span {
        Span::try_from("5s").unwrap()
    }
    pub fn smtp_max_connection_age() -> Span {
        Span::try_from("300s").unwrap()
    }
    pub fn pool_name() -> String {
        "default".into()
    }
    pub fn delivery_mode() -> DeliveryMode {
        DeliveryMode::Relay
    }
    pub fn mx_port() -> u16 {
        25
    }
}
