//! Typed configuration: a TOML file plus `SLUICE__SECTION__KEY` environment overrides.
//!
//! Every section rejects unknown keys, and [`Config::validate`] names the bad key and value,
//! so a typo stops the process at startup instead of being silently ignored.

mod http;
mod messaging;
mod providers;
mod sections;
mod warmup;

use std::{net::SocketAddr, path::Path};

use serde::Deserialize;

pub use http::*;
pub use messaging::*;
pub use providers::*;
pub use sections::*;
pub use warmup::*;

/// Which binary is loading the config; some sections matter to one role only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Scheduler,
    Worker,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub redis: RedisConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub smtp: SmtpConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    #[serde(default)]
    pub campaigns: CampaignConfig,
    #[serde(default)]
    pub bounces: BouncesConfig,
    #[serde(default)]
    pub dkim: DkimConfig,
    /// Absent: no public listener, and bulk mail goes without List-Unsubscribe (warned).
    pub public: Option<PublicConfig>,
    #[serde(default)]
    pub inbound: InboundConfig,
    #[serde(default)]
    pub warmup: WarmupConfig,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default)]
    pub messages: MessagesConfig,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    #[serde(default)]
    pub http: HttpConfig,
}

/// A configuration problem, naming the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read as a config; the message has every URL's
    /// password replaced (the config crate quotes the offending value).
    #[error("config: {0}")]
    Load(String),
    #[error("config key `{key}` = {value:?}: {problem}")]
    Invalid { key: String, value: String, problem: String },
}

impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        ConfigError::Load(redacted_urls_in(&e.to_string()))
    }
}

/// `text` with the credentials of every `scheme://user:password@` in it replaced by `***`.
pub fn redacted_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after.find(['/', '"', '\'', ' ', ',', ']', '\n']).unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(credentials_end) => {
                out.push_str("***");
                rest = &after[credentials_end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// `url` with any password replaced by `***`, so a config error never prints a secret.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "***".into() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

fn invalid(key: impl Into<String>, value: impl ToString, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), value: value.to_string(), problem: problem.into() }
}

impl Config {
    /// Reads `path` (TOML) if given, then `SLUICE__SECTION__KEY` variables, then validates for `role`.
    pub fn load(path: Option<&Path>, role: Role) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("SLUICE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("api.tokens")
                .with_list_parse_key("redis.seeds")
                .with_list_parse_key("retry.schedule"),
        );
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate(role)?;
        Ok(config)
    }

    /// Parses a TOML string without environment overrides (tests, tooling).
    pub fn from_toml(text: &str, role: Role) -> Result<Config, ConfigError> {
        let config: Config = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        config.validate(role)?;
        Ok(config)
    }

    /// Checks every value that serde alone cannot, naming the key on failure.
    pub fn validate(&self, role: Role) -> Result<(), ConfigError> {
        let redis = &self.redis;
        if redis.url.is_empty() && redis.seeds.is_empty() {
            return Err(invalid("redis.url", "", "is required (or `redis.seeds` for a cluster)"));
        }
        let urls = std::iter::once(("redis.url", &redis.url)).filter(|(_, u)| !u.is_empty());
        for (key, url) in urls.chain(redis.seeds.iter().map(|u| ("redis.seeds", u))) {
            if !["redis://", "rediss://", "redis+unix://"].iter().any(|scheme| url.starts_with(scheme)) {
                return Err(invalid(key, redacted_url(url), "must start with redis://, rediss:// or redis+unix://"));
            }
        }
        if redis.is_tls() && !redis.nodes().iter().all(|u| u.starts_with("rediss://")) {
            return Err(invalid("redis.seeds", redis.describe(), "mix rediss:// and redis:// nodes"));
        }
        self.validate_redis_tls()?;
        self.validate_listener_tls()?;
        if redis.is_cluster() && redis.nodes().iter().any(|u| u.starts_with("redis+unix://")) {
            return Err(invalid("redis.mode", "cluster", "cluster nodes are reached over TCP, not unix sockets"));
        }
        if self.redis.pool_size == 0 {
            return Err(invalid("redis.pool_size", 0, "must be at least 1"));
        }
        if self.metrics.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid("metrics.listen", &self.metrics.listen, "must be an address like 127.0.0.1:9464"));
        }
        let d = &self.limits.default;
        if d.burst == 0 {
            return Err(invalid("limits.default.burst", 0, "must be at least 1"));
        }
        if d.connections == 0 {
            return Err(invalid("limits.default.connections", 0, "must be at least 1"));
        }
        let share = self.limits.transactional_share;
        if !(0.0..=0.9).contains(&share) {
            return Err(invalid("limits.transactional_share", share, "must be between 0 and 0.9"));
        }
        if self.worker.priority_inflight == 0 {
            return Err(invalid("worker.priority_inflight", 0, "must be at least 1"));
        }
        for (domain, o) in &self.limits.domains {
            if domain != &domain.to_ascii_lowercase() || domain.is_empty() {
                return Err(invalid(
                    format!("limits.domains.{domain}"),
                    domain,
                    "domain must be lower-case and non-empty",
                ));
            }
            if o.burst == Some(0) {
                return Err(invalid(format!("limits.domains.\"{domain}\".burst"), 0, "must be at least 1"));
            }
            if o.connections == Some(0) {
                return Err(invalid(format!("limits.domains.\"{domain}\".connections"), 0, "must be at least 1"));
            }
        }
        for (name, p) in &self.limits.providers {
            let name_ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !name_ok {
                return Err(invalid(
                    format!("limits.providers.{name}"),
                    name,
                    "provider names are lower-case letters, digits and -",
                ));
            }
            let lists = p.domains.iter().flatten().chain(p.mx_suffixes.iter().flatten());
            if let Some(bad) = lists.into_iter().find(|d| d.is_empty() || **d != d.to_ascii_lowercase()) {
                return Err(invalid(
                    format!("limits.providers.{name}"),
                    bad,
                    "domains and MX suffixes must be lower-case and non-empty",
                ));
            }
            if p.burst == Some(0) || p.connections == Some(0) || p.messages_per_connection == Some(0) {
                return Err(invalid(
                    format!("limits.providers.{name}"),
                    name,
                    "burst, connections and messages_per_connection must be at least 1",
                ));
            }
        }
        if self.retry.schedule.is_empty() {
            return Err(invalid("retry.schedule", "[]", "needs at least one delay"));
        }
        if let Some(zero) = self.retry.schedule.iter().find(|s| s.as_millis() == 0) {
            return Err(invalid("retry.schedule", format!("{:?}", zero.get()), "delays must be positive"));
        }
        if let Err(e) = self.bounces.classifier() {
            return Err(invalid(e.location, "", e.problem));
        }
        for (i, k) in self.dkim.keys.iter().enumerate() {
            if crate::validate::domain(&k.domain).is_err() || k.domain != k.domain.to_ascii_lowercase() {
                return Err(invalid(format!("dkim.keys[{i}].domain"), &k.domain, "must be a lower-case domain"));
            }
            let selector_ok = !k.selector.is_empty()
                && k.selector
                    .split('.')
                    .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            if !selector_ok {
                return Err(invalid(
                    format!("dkim.keys[{i}].selector"),
                    &k.selector,
                    "must be DNS labels (letters, digits, -)",
                ));
            }
        }
        if let Some(p) = &self.public {
            if p.listen.parse::<SocketAddr>().is_err() {
                return Err(invalid("public.listen", &p.listen, "must be an address like 0.0.0.0:8026"));
            }
            let url_ok = (p.base_url.starts_with("https://") || p.base_url.starts_with("http://"))
                && !p.base_url.ends_with('/')
                && !p.base_url.contains(|c: char| c.is_whitespace() || c.is_control() || c == '>' || c == ',');
            if !url_ok {
                return Err(invalid("public.base_url", &p.base_url, "must be an http(s) URL without a trailing slash"));
            }
            if p.secret.chars().count() < 32 {
                return Err(invalid("public.secret", "…", "needs at least 32 characters"));
            }
            if let Some(m) = &p.unsubscribe_mailto
                && crate::validate::email(m).is_err()
            {
                return Err(invalid("public.unsubscribe_mailto", m, "must be an email address"));
            }
        }
        if let Some(d) = &self.bounces.return_path_domain {
            if crate::validate::domain(d).is_err() || d != &d.to_ascii_lowercase() {
                return Err(invalid("bounces.return_path_domain", d, "must be a lower-case domain"));
            }
            if self.public.is_none() {
                return Err(invalid(
                    "bounces.return_path_domain",
                    d,
                    "needs a [public] section (its secret signs VERP addresses)",
                ));
            }
        }
        for (i, ns) in self.dns.nameservers.iter().enumerate() {
            if ns.parse::<SocketAddr>().is_err() {
                return Err(invalid(format!("dns.nameservers[{i}]"), ns, "must be an address like 127.0.0.1:53"));
            }
        }
        for (name, plan) in &self.warmup.plans {
            plan.check().map_err(|p| invalid(format!("warmup.plans.{name}"), name, p))?;
        }
        for (domain, sender) in &self.warmup.senders {
            if !self.warmup.plans.contains_key(&sender.plan) {
                return Err(invalid(
                    format!("warmup.senders.\"{domain}\".plan"),
                    &sender.plan,
                    "no such plan in [warmup.plans]",
                ));
            }
            if domain != &domain.to_ascii_lowercase() {
                return Err(invalid(format!("warmup.senders.\"{domain}\""), domain, "From domains are lower-case"));
            }
        }
        for (address, sender) in &self.warmup.ips {
            if !self.warmup.plans.contains_key(&sender.plan) {
                return Err(invalid(
                    format!("warmup.ips.\"{address}\".plan"),
                    &sender.plan,
                    "no such plan in [warmup.plans]",
                ));
            }
            if !self.smtp.ip_pool.iter().any(|s| s.address == *address) {
                return Err(invalid(format!("warmup.ips.\"{address}\""), address, "not an smtp.ip_pool address"));
            }
        }
        if let Some(pool) = &self.warmup.spill_pool
            && !self.smtp.ip_pool.iter().any(|s| &s.pool == pool)
        {
            return Err(invalid("warmup.spill_pool", pool, "no smtp.ip_pool entry has this pool"));
        }
        if let Some(l) = &self.inbound.smtp_listen {
            if l.parse::<SocketAddr>().is_err() {
                return Err(invalid("inbound.smtp_listen", l, "must be an address like 0.0.0.0:25"));
            }
            if self.bounces.return_path_domain.is_none() {
                return Err(invalid(
                    "inbound.smtp_listen",
                    l,
                    "needs bounces.return_path_domain (the domain it receives for)",
                ));
            }
            let i = &self.inbound;
            if i.max_connections == 0 {
                return Err(invalid("inbound.max_connections", 0, "must be at least 1"));
            }
            if i.max_connections_per_client == 0 || i.max_connections_per_client > i.max_connections {
                return Err(invalid(
                    "inbound.max_connections_per_client",
                    i.max_connections_per_client,
                    "must be 1 to inbound.max_connections",
                ));
            }
            if i.max_message_bytes < 1024 {
                return Err(invalid("inbound.max_message_bytes", i.max_message_bytes, "must be at least 1024"));
            }
            if i.max_buffered_bytes < i.max_message_bytes {
                return Err(invalid(
                    "inbound.max_buffered_bytes",
                    i.max_buffered_bytes,
                    "must be at least inbound.max_message_bytes",
                ));
            }
        }
        if self.bounces.soft_window.as_millis() == 0 {
            return Err(invalid("bounces.soft_window", "0", "must be positive"));
        }
        match role {
            Role::Scheduler => self.validate_scheduler(),
            Role::Worker => self.validate_worker(),
        }
    }

    fn validate_scheduler(&self) -> Result<(), ConfigError> {
        if self.api.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid("api.listen", &self.api.listen, "must be an address like 127.0.0.1:8025"));
        }
        if self.api.tokens.is_empty() && self.api.keys.is_empty() {
            return Err(invalid("api.keys", "[]", "needs at least one [[api.keys]] (or api.tokens)"));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, k) in self.api.keys.iter().enumerate() {
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
        if let Some(t) = self.api.tokens.iter().find(|t| t.trim().len() < 8) {
            return Err(invalid(
                "api.tokens",
                format!("{}…", t.chars().take(2).collect::<String>()),
                "each token needs at least 8 characters",
            ));
        }
        let s = &self.scheduler;
        if s.expand_chunk == 0 {
            return Err(invalid("scheduler.expand_chunk", 0, "must be at least 1"));
        }
        if s.expand_window == 0 {
            return Err(invalid("scheduler.expand_window", 0, "must be at least 1"));
        }
        let h = &self.http;
        for proxy in &h.trusted_proxies {
            crate::netguard::Cidr::try_from(proxy.as_str()).map_err(|m| invalid("http.trusted_proxies", proxy, m))?;
        }
        if h.max_connections == 0 {
            return Err(invalid("http.max_connections", 0, "must be at least 1"));
        }
        if h.public_burst_per_client == 0 {
            return Err(invalid("http.public_burst_per_client", 0, "must be at least 1"));
        }
        crate::netguard::AddressPolicy::new(&self.webhooks.allow_networks)
            .map_err(|m| invalid("webhooks.allow_networks", self.webhooks.allow_networks.join(","), m))?;
        for (i, w) in self.webhooks.endpoints.iter().enumerate() {
            let key = |f: &str| format!("webhooks.endpoints[{i}].{f}");
            crate::validate::webhook_id(&w.id).map_err(|m| invalid(key("id"), &w.id, m))?;
            crate::validate::webhook_url(&w.url, self.webhooks.allow_http)
                .map_err(|m| invalid(key("url"), &w.url, m))?;
            if w.secret.len() < 16 {
                return Err(invalid(key("secret"), "…", "needs at least 16 characters"));
            }
            crate::validate::event_types(&w.events).map_err(|m| invalid(key("events"), w.events.join(","), m))?;
        }
        if self.webhooks.batch == 0 {
            return Err(invalid("webhooks.batch", 0, "must be at least 1"));
        }
        if self.messages.max_recipients == 0 {
            return Err(invalid("messages.max_recipients", 0, "must be at least 1"));
        }
        if self.campaigns.max_inline_recipients == 0 {
            return Err(invalid("campaigns.max_inline_recipients", 0, "must be at least 1"));
        }
        Ok(())
    }

    /// Each listener's certificate and key come together and can be read.
    fn validate_listener_tls(&self) -> Result<(), ConfigError> {
        let public = self.public.as_ref();
        let pairs = [
            ("api", self.api.tls_cert.as_ref(), self.api.tls_key.as_ref()),
            ("public", public.and_then(|p| p.tls_cert.as_ref()), public.and_then(|p| p.tls_key.as_ref())),
            ("inbound", self.inbound.tls_cert.as_ref(), self.inbound.tls_key.as_ref()),
        ];
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

    /// The TLS files exist, come in pairs, and go with `rediss://` only.
    fn validate_redis_tls(&self) -> Result<(), ConfigError> {
        let redis = &self.redis;
        let files = [
            ("redis.ca_file", &redis.ca_file),
            ("redis.client_cert", &redis.client_cert),
            ("redis.client_key", &redis.client_key),
        ];
        for (key, file) in files {
            let Some(path) = file else { continue };
            if !redis.is_tls() {
                return Err(invalid(key, path, "is used only with rediss:// URLs"));
            }
            if let Err(e) = std::fs::read(path) {
                return Err(invalid(key, path, format!("cannot be read: {e}")));
            }
        }
        if redis.client_cert.is_some() != redis.client_key.is_some() {
            return Err(invalid(
                "redis.client_cert",
                redis.client_cert.as_deref().unwrap_or(""),
                "client_cert and client_key go together",
            ));
        }
        Ok(())
    }

    fn validate_worker(&self) -> Result<(), ConfigError> {
        if let Err(e) = crate::dkim::Signer::from_config(&self.dkim) {
            return Err(match e {
                crate::dkim::DkimError::Key { index, path, problem } => {
                    invalid(format!("dkim.keys[{index}].key_file"), path, problem)
                }
                other => invalid("dkim.keys", "", other.to_string()),
            });
        }
        match self.smtp.mode {
            DeliveryMode::Relay if self.smtp.relays.is_empty() => {
                return Err(invalid("smtp.relays", "[]", "relay mode needs at least one [[smtp.relays]]"));
            }
            DeliveryMode::Mx if !self.smtp.relays.is_empty() => {
                return Err(invalid(
                    "smtp.relays",
                    "[...]",
                    "mx mode delivers directly; remove [[smtp.relays]] or use mode = \"relay\"",
                ));
            }
            _ => {}
        }
        crate::netguard::AddressPolicy::new(&self.smtp.mx_allow_networks)
            .map_err(|m| invalid("smtp.mx_allow_networks", self.smtp.mx_allow_networks.join(","), m))?;
        if let Some(ca) = &self.smtp.mx_ca_file
            && let Err(e) = std::fs::read(ca)
        {
            return Err(invalid("smtp.mx_ca_file", ca, format!("cannot be read: {e}")));
        }
        if self.smtp.mx_port == 0 {
            return Err(invalid("smtp.mx_port", 0, "must be 1-65535"));
        }
        for (i, ip) in self.smtp.ip_pool.iter().enumerate() {
            if crate::validate::domain(&ip.helo).is_err() {
                return Err(invalid(
                    format!("smtp.ip_pool[{i}].helo"),
                    &ip.helo,
                    "must be a host name (the address's PTR name)",
                ));
            }
        }
        for (i, r) in self.smtp.relays.iter().enumerate() {
            if r.host.trim().is_empty() {
                return Err(invalid(format!("smtp.relays[{i}].host"), &r.host, "must not be empty"));
            }
            if r.port == 0 {
                return Err(invalid(format!("smtp.relays[{i}].port"), 0, "must be 1-65535"));
            }
            if let Some(ca) = &r.ca_file
                && let Err(e) = std::fs::read(ca)
            {
                return Err(invalid(format!("smtp.relays[{i}].ca_file"), ca, format!("cannot be read: {e}")));
            }
            if r.username.is_some() != r.password.is_some() {
                return Err(invalid(
                    format!("smtp.relays[{i}].username"),
                    r.username.as_deref().unwrap_or(""),
                    "username and password go together",
                ));
            }
            if let Some(user) = &r.username
                && r.tls == TlsMode::None
                && !r.allow_plaintext_auth
            {
                return Err(invalid(
                    format!("smtp.relays[{i}].username"),
                    user,
                    "AUTH over tls = \"none\" sends the password in the clear; use tls = \"starttls\" or \"tls\", or set allow_plaintext_auth = true for this relay",
                ));
            }
        }
        if self.smtp.max_connections_per_relay == 0 {
            return Err(invalid("smtp.max_connections_per_relay", 0, "must be at least 1"));
        }
        for (key, span) in
            [("smtp.idle_timeout", self.smtp.idle_timeout), ("smtp.max_connection_age", self.smtp.max_connection_age)]
        {
            if span.as_millis() < 100 {
                return Err(invalid(key, format!("{:?}", span.get()), "must be at least 100ms"));
            }
        }
        let w = &self.worker;
        if w.batch == 0 {
            return Err(invalid("worker.batch", 0, "must be at least 1"));
        }
        if w.max_inflight < w.batch {
            return Err(invalid("worker.max_inflight", w.max_inflight, "must be at least worker.batch"));
        }
        if w.domains_per_round == 0 {
            return Err(invalid("worker.domains_per_round", 0, "must be at least 1"));
        }
        if w.reclaim_idle.as_millis() < 1000 {
            return Err(invalid("worker.reclaim_idle", format!("{:?}", w.reclaim_idle.get()), "must be at least 1s"));
        }
        if w.max_deliveries < 2 {
            return Err(invalid("worker.max_deliveries", w.max_deliveries, "must be at least 2"));
        }
        if let Some(name) = &w.name {
            crate::validate::consumer_name(name).map_err(|p| invalid("worker.name", name, p))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
