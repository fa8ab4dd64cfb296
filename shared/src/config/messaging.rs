//! Sections for transactional messages, the event feed, webhooks and tracking.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

use crate::units::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    /// Most `to` addresses of one message.
    #[serde(default = "defaults::max_recipients")]
    pub max_recipients: usize,
    /// How long an `Idempotency-Key` is remembered.
    #[serde(default = "defaults::idempotency_window")]
    pub idempotency_window: Span,
    /// How long a finished message (status and events) is kept.
    #[serde(default = "defaults::message_retention")]
    pub retention: Span,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            max_recipients: defaults::max_recipients(),
            idempotency_window: defaults::idempotency_window(),
            retention: defaults::message_retention(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Events older than this leave the feed (keep it above `webhooks.give_up_after`).
    #[serde(default = "defaults::feed_retention")]
    pub feed_retention: Span,
    /// Approximate cap of the feed's entries (each a run of about 1,000 events, ~100 KB):
    /// the bound on its memory whatever the volume.
    #[serde(default = "defaults::feed_max_entries")]
    pub feed_max_entries: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { feed_retention: defaults::feed_retention(), feed_max_entries: defaults::feed_max_entries() }
    }
}

/// One webhook endpoint from the config file (endpoints made over the API live in Redis).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointConfig {
    pub id: String,
    pub url: String,
    /// HMAC-SHA256 key of the `Sluice-Signature` header.
    pub secret: String,
    /// Event types delivered; empty: every type.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    #[serde(default)]
    pub endpoints: Vec<WebhookEndpointConfig>,
    /// Most events per POST.
    #[serde(default = "defaults::webhook_batch")]
    pub batch: usize,
    /// Bound on one POST (connect, send, answer).
    #[serde(default = "defaults::webhook_timeout")]
    pub timeout: Span,
    /// First wait after a failed delivery; doubled after each further failure...
    #[serde(default = "defaults::retry_initial")]
    pub retry_initial: Span,
    /// ... up to this wait.
    #[serde(default = "defaults::retry_max")]
    pub retry_max: Span,
    /// Events still undelivered this long after they happened are dropped (counted).
    #[serde(default = "defaults::give_up_after")]
    pub give_up_after: Span,
    /// Also accept `http://` endpoint URLs (default: https only).
    #[serde(default)]
    pub allow_http: bool,
    /// Internal address blocks (CIDRs) endpoints may reach; every other loopback, private,
    /// link-local or unique-local address is refused.
    #[serde(default)]
    pub allow_networks: Vec<String>,
}

impl WebhooksConfig {
    /// Where endpoints may be reached (the allowed blocks were checked at startup).
    pub fn address_policy(&self) -> crate::netguard::AddressPolicy {
        crate::netguard::AddressPolicy::new(&self.allow_networks).expect("checked when the config was validated")
    }
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            endpoints: Vec::new(),
            batch: defaults::webhook_batch(),
            timeout: defaults::webhook_timeout(),
            retry_initial: defaults::retry_initial(),
            retry_max: defaults::retry_max(),
            give_up_after: defaults::give_up_after(),
            allow_http: false,
            allow_networks: Vec::new(),
        }
    }
}

impl MessagesConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("messages.max_recipients", self.max_recipients)?;
        Ok(())
    }
}

impl WebhooksConfig {
    /// Networks that parse, endpoints with a valid id, URL, secret and event list.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        crate::netguard::AddressPolicy::new(&self.allow_networks)
            .map_err(|m| invalid("webhooks.allow_networks", self.allow_networks.join(","), m))?;
        for (i, w) in self.endpoints.iter().enumerate() {
            let key = |f: &str| format!("webhooks.endpoints[{i}].{f}");
            crate::validate::webhook_id(&w.id).map_err(|m| invalid(key("id"), &w.id, m))?;
            crate::validate::webhook_url(&w.url, self.allow_http).map_err(|m| invalid(key("url"), &w.url, m))?;
            if w.secret.len() < 16 {
                return Err(invalid(key("secret"), "…", "needs at least 16 characters"));
            }
            crate::validate::event_types(&w.events).map_err(|m| invalid(key("events"), w.events.join(","), m))?;
        }
        at_least_one("webhooks.batch", self.batch)?;
        Ok(())
    }
}

mod defaults {
    use crate::units::Span;

    pub fn max_recipients() -> usize {
        50
    }
    pub fn idempotency_window() -> Span {
        Span::try_from("24h").unwrap()
    }
    pub fn webhook_batch() -> usize {
        100
    }
    pub fn webhook_timeout() -> Span {
        Span::try_from("10s").unwrap()
    }
    pub fn retry_initial() -> Span {
        Span::try_from("5s").unwrap()
    }
    pub fn retry_max() -> Span {
        Span::try_from("1h").unwrap()
    }
    pub fn give_up_after() -> Span {
        Span::try_from("24h").unwrap()
    }
    pub fn feed_max_entries() -> u64 {
        5_000
    }
    pub fn feed_retention() -> Span {
        Span::try_from("48h").unwrap()
    }
    pub fn message_retention() -> Span {
        Span::try_from("7d").unwrap()
    }
}
