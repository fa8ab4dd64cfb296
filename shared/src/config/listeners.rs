//! The HTTP listeners: `[api]` (the admin API and its keys), `[metrics]` (operations) and `[public]` (links in mail).

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::units::Rate;

/// What an API key may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scope {
    /// Transactional sends.
    #[serde(rename = "send")]
    Send,
    /// Read campaigns, destinations, warm-up progress.
    #[serde(rename = "campaigns:read")]
    CampaignsRead,
    /// Create, upload to, start, pause, resume, cancel campaigns.
    #[serde(rename = "campaigns:write")]
    CampaignsWrite,
    /// Manage the suppression list.
    #[serde(rename = "suppressions")]
    Suppressions,
    /// Erase an address from everything Sluice keeps (`DELETE /v1/recipients/{email}`).
    #[serde(rename = "privacy")]
    Privacy,
    /// Everything, including dead letters, inbound reports and the audit log.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::CampaignsRead => "campaigns:read",
            Scope::CampaignsWrite => "campaigns:write",
            Scope::Suppressions => "suppressions",
            Scope::Privacy => "privacy",
            Scope::Admin => "admin",
        }
    }
}

/// An API key: its id (recorded in the audit log), the SHA-256 of the Bearer token (hex;
/// the token itself is never stored), its scopes, and optionally how fast it may send
/// messages, counted across every scheduler.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// Messages per period (`"50/s"`), in bursts of one second's worth (at least 1).
    #[serde(default)]
    pub send_rate: Option<Rate>,
}

impl ApiKey {
    /// The burst of `send_rate`: one second's worth, at least one message.
    pub fn send_burst(rate: Rate) -> u32 {
        rate.per_second().ceil().clamp(1.0, u32::MAX as f64) as u32
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(default = "defaults::api_listen")]
    pub listen: String,
    /// Scoped keys, stored as token hashes.
    #[serde(default)]
    pub keys: Vec<ApiKey>,
    /// Plaintext Bearer tokens with every scope (audited as `token-N`); kept for old configs,
    /// warned about at startup. Prefer `[[api.keys]]`.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// PEM certificate chain and key: the API is served over HTTPS only.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: defaults::api_listen(),
            keys: Vec::new(),
            tokens: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "defaults::metrics_listen")]
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: defaults::metrics_listen() }
    }
}

/// The public listener (scheduler): one-click unsubscribe now, open and click tracking later.
/// Workers use `base_url` and `secret` to put links in messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    #[serde(default = "defaults::public_listen")]
    pub listen: String,
    /// How recipients reach the listener, e.g. `https://mail.shop.example` (no trailing slash).
    pub base_url: String,
    /// HMAC key for link tokens (at least 32 characters). Changing it breaks links already sent.
    pub secret: String,
    /// Also offer `mailto:` in List-Unsubscribe (processed by whoever reads that mailbox).
    pub unsubscribe_mailto: Option<String>,
    /// PEM certificate chain and key: the listener serves HTTPS only.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

impl ApiConfig {
    /// An address to listen on, and keys that are well formed (scheduler only).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid("api.listen", &self.listen, "must be an address like 127.0.0.1:8025"));
        }
        if self.tokens.is_empty() && self.keys.is_empty() {
            return Err(invalid("api.keys", "[]", "needs at least one [[api.keys]] (or api.tokens)"));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            let id_ok = !k.id.is_empty()
                && k.id.len() <= 64
                && k.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(invalid(format!("api.keys[{i}].id"), &k.id, "1-64 of letters, digits, - and _"));
            }
            if !ids.insert(k.id.as_str()) {
                return Err(invalid(format!("api.keys[{i}].id"), &k.id, "ids must be unique"));
            }
            let hash_ok =
                k.sha256.len() == 64 && k.sha256.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if !hash_ok {
                return Err(invalid(
                    format!("api.keys[{i}].sha256"),
                    "…",
                    "64 lower-case hex digits: printf %s \"$TOKEN\" | sha256sum",
                ));
            }
            if k.scopes.is_empty() {
                return Err(invalid(format!("api.keys[{i}].scopes"), "[]", "needs at least one scope"));
            }
        }
        if let Some(t) = self.tokens.iter().find(|t| t.trim().len() < 8) {
            return Err(invalid(
                "api.tokens",
                format!("{}…", t.chars().take(2).collect::<String>()),
                "each token needs at least 8 characters",
            ));
        }
        Ok(())
    }
}

impl MetricsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid("metrics.listen", &self.listen, "must be an address like 127.0.0.1:9464"));
        }
        Ok(())
    }
}

impl PublicConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid("public.listen", &self.listen, "must be an address like 0.0.0.0:8026"));
        }
        let url_ok = (self.base_url.starts_with("https://") || self.base_url.starts_with("http://"))
            && !self.base_url.ends_with('/')
            && !self.base_url.contains(|c: char| c.is_whitespace() || c.is_control() || c == '>' || c == ',');
        if !url_ok {
            return Err(invalid("public.base_url", &self.base_url, "must be an http(s) URL without a trailing slash"));
        }
        if self.secret.chars().count() < 32 {
            return Err(invalid("public.secret", "…", "needs at least 32 characters"));
        }
        if let Some(m) = &self.unsubscribe_mailto
            && crate::validate::email(m).is_err()
        {
            return Err(invalid("public.unsubscribe_mailto", m, "must be an email address"));
        }
        Ok(())
    }
}

/// Each listener's certificate and key (`section`, cert, key) come together and can be read.
pub(super) fn validate_listener_tls(pairs: [(&str, Option<&String>, Option<&String>); 4]) -> Result<(), ConfigError> {
    for (section, cert, key) in pairs {
        if cert.is_some() != key.is_some() {
            let value = cert.or(key).map_or("", String::as_str);
            return Err(invalid(format!("{section}.tls_cert"), value, "tls_cert and tls_key go together"));
        }
        for (name, file) in [("tls_cert", cert), ("tls_key", key)] {
            if let Some(path) = file
                && let Err(e) = std::fs::read(path)
            {
                return Err(invalid(format!("{section}.{name}"), path, format!("cannot be read: {e}")));
            }
        }
    }
    Ok(())
}

mod defaults {

    pub fn api_listen() -> String {
        "127.0.0.1:8025".into()
    }
    pub fn metrics_listen() -> String {
        "127.0.0.1:9464".into()
    }
    pub fn public_listen() -> String {
        "127.0.0.1:8026".into()
    }
}
