//! Typed configuration: a TOML file plus `SLUICE__SECTION__KEY` environment overrides.
//!
//! Every section rejects unknown keys, and [`Config::validate`] names the bad key and value,
//! so a typo stops the process at startup instead of being silently ignored.

mod bounces;
mod campaigns;
mod dkim;
mod dns;
mod history;
mod http;
mod hygiene;
mod inbound;
mod limits;
mod listeners;
mod messaging;
mod providers;
mod redis;
mod reputation;
mod retry;
mod roles;
mod smtp;
mod submission;
mod warmup;

use std::path::Path;

use serde::Deserialize;

pub use bounces::*;
pub use campaigns::*;
pub use dkim::*;
pub use dns::*;
pub use history::*;
pub use http::*;
pub use hygiene::*;
pub use inbound::*;
pub use limits::*;
pub use listeners::*;
pub use messaging::*;
pub use providers::*;
pub use redis::*;
pub use reputation::*;
pub use retry::*;
pub use roles::*;
pub use smtp::*;
pub use submission::*;
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
    /// SMTP submission (scheduler); no port configured: off.
    #[serde(default)]
    pub submission: SubmissionConfig,
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
    /// The PostgreSQL history store (scheduler); no `url`: none.
    #[serde(default)]
    pub history: HistoryConfig,
    /// The reputation guard (workers and schedulers).
    #[serde(default)]
    pub reputation: ReputationConfig,
    /// Engagement records and the sunset policy (schedulers).
    #[serde(default)]
    pub hygiene: HygieneConfig,
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

/// A count or size that must not be zero.
fn at_least_one<T: Default + PartialEq + ToString>(key: &str, value: T) -> Result<(), ConfigError> {
    if value == T::default() {
        return Err(invalid(key, value, "must be at least 1"));
    }
    Ok(())
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
                .with_list_parse_key("retry.schedule")
                .with_list_parse_key("submission.trusted_networks"),
        );
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate(role)?;
        Ok(config)
    }

    /// How much nicer than the process the threads doing `role`'s bulk work run.
    pub fn bulk_niceness(&self, role: Role) -> u8 {
        match role {
            Role::Scheduler => self.scheduler.bulk_niceness,
            Role::Worker => self.worker.bulk_niceness,
        }
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

    /// Checks every value that serde alone cannot, naming the key on failure. Each section
    /// checks itself; the sections one role does not use are not checked for it.
    pub fn validate(&self, role: Role) -> Result<(), ConfigError> {
        self.redis.validate()?;
        let public = self.public.as_ref();
        listeners::validate_listener_tls([
            ("api", self.api.tls_cert.as_ref(), self.api.tls_key.as_ref()),
            ("public", public.and_then(|p| p.tls_cert.as_ref()), public.and_then(|p| p.tls_key.as_ref())),
            ("inbound", self.inbound.tls_cert.as_ref(), self.inbound.tls_key.as_ref()),
            ("submission", self.submission.tls_cert.as_ref(), self.submission.tls_key.as_ref()),
        ])?;
        self.metrics.validate()?;
        self.limits.validate()?;
        at_least_one("worker.priority_inflight", self.worker.priority_inflight)?;
        self.retry.validate()?;
        self.dkim.validate()?;
        if let Some(p) = public {
            p.validate()?;
        }
        self.bounces.validate(public.is_some())?;
        self.dns.validate()?;
        self.warmup.validate(&self.smtp.ip_pool)?;
        self.inbound.validate(self.bounces.return_path_domain.as_ref())?;
        self.reputation.validate()?;
        self.hygiene.validate()?;
        match role {
            Role::Scheduler => {
                self.api.validate()?;
                self.scheduler.validate()?;
                self.http.validate()?;
                self.webhooks.validate()?;
                self.messages.validate()?;
                self.submission.validate()?;
                self.history.validate()?;
                self.campaigns.validate()
            }
            Role::Worker => {
                self.smtp.validate()?;
                self.worker.validate()
            }
        }
    }
}

#[cfg(test)]
mod tests;
