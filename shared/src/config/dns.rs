//! The `[dns]` section: which nameservers MX, TXT and PTR lookups ask.

use serde::Deserialize;

use super::{ConfigError, invalid};

use crate::units::Span;

/// DNS for direct MX delivery, MX rollup and doctor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// `host:port` of each nameserver; empty: the system's (/etc/resolv.conf).
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default = "defaults::dns_timeout")]
    pub timeout: Span,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { nameservers: Vec::new(), timeout: defaults::dns_timeout() }
    }
}

impl DnsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, ns) in self.nameservers.iter().enumerate() {
            if ns.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(format!("dns.nameservers[{i}]"), ns, "must be an address like 127.0.0.1:53"));
            }
        }
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn dns_timeout() -> Span {
        Span::try_from("5s").unwrap()
    }
}
