//! `[http]`: how the scheduler's two HTTP listeners (admin API, public) hold against slow,
//! many or flooding clients, and whose `X-Forwarded-For` they believe.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

use crate::units::{Rate, Span};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// A request's whole head must arrive within this; it is also how long an idle keep-alive
    /// connection is kept.
    #[serde(default = "defaults::header_timeout")]
    pub header_timeout: Span,
    /// Longest pause while a request body arrives.
    #[serde(default = "defaults::body_timeout")]
    pub body_timeout: Span,
    /// Connections served at once by each listener; more wait to be accepted.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client; from anyone else the socket's
    /// peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Requests one client may make to the public listener (429 past it) ...
    #[serde(default = "defaults::public_rate_per_client")]
    pub public_rate_per_client: Rate,
    /// ... with bursts up to this many.
    #[serde(default = "defaults::public_burst_per_client")]
    pub public_burst_per_client: u32,
    /// A client opening the same pixel or link again within this counts once.
    #[serde(default = "defaults::repeat_window")]
    pub repeat_window: Span,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: defaults::header_timeout(),
            body_timeout: defaults::body_timeout(),
            max_connections: defaults::max_connections(),
            trusted_proxies: Vec::new(),
            public_rate_per_client: defaults::public_rate_per_client(),
            public_burst_per_client: defaults::public_burst_per_client(),
            repeat_window: defaults::repeat_window(),
        }
    }
}

impl HttpConfig {
    /// The trusted proxies (checked when the config was validated).
    pub fn proxies(&self) -> Vec<crate::netguard::Cidr> {
        self.trusted_proxies.iter().filter_map(|c| crate::netguard::Cidr::try_from(c.as_str()).ok()).collect()
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for proxy in &self.trusted_proxies {
            crate::netguard::Cidr::try_from(proxy.as_str()).map_err(|m| invalid("http.trusted_proxies", proxy, m))?;
        }
        at_least_one("http.max_connections", self.max_connections)?;
        at_least_one("http.public_burst_per_client", self.public_burst_per_client)?;
        Ok(())
    }
}

mod defaults {
    use crate::units::{Rate, Span};

    pub fn header_timeout() -> Span {
        Span::try_from("10s").unwrap()
    }
    pub fn body_timeout() -> Span {
        Span::try_from("30s").unwrap()
    }
    pub fn max_connections() -> usize {
        1024
    }
    pub fn public_rate_per_client() -> Rate {
        Rate::try_from("20/s").unwrap()
    }
    pub fn public_burst_per_client() -> u32 {
        40
    }
    pub fn repeat_window() -> Span {
        Span::try_from("60s").unwrap()
    }
}
