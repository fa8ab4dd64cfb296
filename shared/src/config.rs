//! Typed configuration: a TOML file plus `SLUICE__SECTION__KEY` environment overrides.
//!
//! Every section rejects unknown keys, and [`Config::validate`] names the bad key and value,
//! so a typo stops the process at startup instead of being silently ignored.

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use serde::Deserialize;

use crate::units::{Rate, Span};

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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `rediss://` for TLS.
    pub url: String,
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(default = "defaults::api_listen")]
    pub listen: String,
    #[serde(default)]
    pub tokens: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { listen: defaults::api_listen(), tokens: Vec::new() }
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    #[serde(default)]
    pub relays: Vec<RelayConfig>,
    /// Name sent in EHLO.
    #[serde(default = "defaults::hello_name")]
    pub hello_name: String,
    /// Bound on every SMTP exchange (connect, each command, the message).
    #[serde(default = "defaults::smtp_timeout")]
    pub timeout: Span,
    /// Concurrent connections a worker opens to one relay.
    #[serde(default = "defaults::relay_connections")]
    pub max_connections_per_relay: usize,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            relays: Vec::new(),
            hello_name: defaults::hello_name(),
            timeout: defaults::smtp_timeout(),
            max_connections_per_relay: defaults::relay_connections(),
        }
    }
}

/// Limits for one destination domain. Unset fields inherit from `[limits.default]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    pub rate: Option<Rate>,
    pub burst: Option<u32>,
    pub connections: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultLimit {
    #[serde(default = "defaults::rate")]
    pub rate: Rate,
    #[serde(default = "defaults::burst")]
    pub burst: u32,
    #[serde(default = "defaults::connections")]
    pub connections: usize,
}

impl Default for DefaultLimit {
    fn default() -> Self {
        DefaultLimit { rate: defaults::rate(), burst: defaults::burst(), connections: defaults::connections() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub default: DefaultLimit,
    #[serde(default)]
    pub domains: BTreeMap<String, LimitOverride>,
}

/// The limits that apply to one destination domain, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DomainLimit {
    pub per_second: f64,
    pub burst: u32,
    pub connections: usize,
}

impl LimitsConfig {
    /// Limits for `domain`: its own section if configured, else the default.
    /// A domain section that sets `rate` but not `burst` gets one second's worth of burst.
    pub fn for_domain(&self, domain: &str) -> DomainLimit {
        let d = &self.default;
        match self.domains.get(domain) {
            None => DomainLimit { per_second: d.rate.per_second(), burst: d.burst, connections: d.connections },
            Some(o) => {
                let per_second = o.rate.map_or(d.rate.per_second(), Rate::per_second);
                let burst = match (o.burst, o.rate) {
                    (Some(b), _) => b,
                    (None, Some(r)) => r.per_second().ceil().max(1.0) as u32,
                    (None, None) => d.burst,
                };
                DomainLimit { per_second, burst, connections: o.connections.unwrap_or(d.connections) }
            }
        }
    }

    /// Bounded metric label for a domain: the domain itself if configured, else "other".
    pub fn label<'a>(&self, domain: &'a str) -> &'a str {
        if self.domains.contains_key(domain) { domain } else { "other" }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Delay before each retry; the last one repeats until `max_age`.
    #[serde(default = "defaults::retry_schedule")]
    pub schedule: Vec<Span>,
    /// A message still deferred this long after it was first queued fails.
    #[serde(default = "defaults::max_age")]
    pub max_age: Span,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { schedule: defaults::retry_schedule(), max_age: defaults::max_age() }
    }
}

impl RetryConfig {
    /// Delay before attempt number `next_attempt` (1 = first retry).
    pub fn delay_before(&self, next_attempt: u32) -> Span {
        let i = (next_attempt.max(1) as usize - 1).min(self.schedule.len() - 1);
        self.schedule[i]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Stable consumer name; defaults to the host name. Two workers on one host need two names.
    pub name: Option<String>,
    /// Most jobs taken from one domain per visit.
    #[serde(default = "defaults::batch")]
    pub batch: usize,
    /// Most jobs one worker holds at once (claimed and not yet acked).
    #[serde(default = "defaults::inflight")]
    pub max_inflight: usize,
    /// Domains looked at per scheduling round.
    #[serde(default = "defaults::domains_per_round")]
    pub domains_per_round: usize,
    /// Pending entries idle this long are taken over from a worker presumed dead.
    #[serde(default = "defaults::reclaim_idle")]
    pub reclaim_idle: Span,
    /// Longest wait for in-flight sends after SIGTERM.
    #[serde(default = "defaults::drain_timeout")]
    pub drain_timeout: Span,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            name: None,
            batch: defaults::batch(),
            max_inflight: defaults::inflight(),
            domains_per_round: defaults::domains_per_round(),
            reclaim_idle: defaults::reclaim_idle(),
            drain_timeout: defaults::drain_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Stable consumer name on the intake stream; defaults to the host name.
    pub name: Option<String>,
    /// Pause between housekeeping rounds when there was nothing to do.
    #[serde(default = "defaults::tick")]
    pub tick: Span,
    /// Recipients moved from a campaign into domain streams per round.
    #[serde(default = "defaults::expand_chunk")]
    pub expand_chunk: usize,
    /// A campaign is expanded only while fewer than this many of its jobs are queued.
    #[serde(default = "defaults::expand_window")]
    pub expand_window: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            name: None,
            tick: defaults::tick(),
            expand_chunk: defaults::expand_chunk(),
            expand_window: defaults::expand_window(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Largest subject + html + text + headers a campaign may carry, in bytes.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most recipients inline in `POST /v1/campaigns`.
    #[serde(default = "defaults::max_inline_recipients")]
    pub max_inline_recipients: usize,
    /// Approximate cap on each campaign's event stream.
    #[serde(default = "defaults::events_maxlen")]
    pub events_maxlen: u64,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            max_body_bytes: defaults::max_body_bytes(),
            max_inline_recipients: defaults::max_inline_recipients(),
            events_maxlen: defaults::events_maxlen(),
        }
    }
}

mod defaults {
    use super::*;
    pub fn pool_size() -> usize {
        32
    }
    pub fn api_listen() -> String {
        "127.0.0.1:8025".into()
    }
    pub fn metrics_listen() -> String {
        "127.0.0.1:9464".into()
    }
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
    pub fn rate() -> Rate {
        Rate::try_from("100/s").unwrap()
    }
    pub fn burst() -> u32 {
        100
    }
    pub fn connections() -> usize {
        10
    }
    pub fn retry_schedule() -> Vec<Span> {
        ["1m", "5m", "30m", "2h", "6h"].iter().map(|s| Span::try_from(*s).unwrap()).collect()
    }
    pub fn max_age() -> Span {
        Span::try_from("3d").unwrap()
    }
    pub fn batch() -> usize {
        200
    }
    pub fn inflight() -> usize {
        2000
    }
    pub fn domains_per_round() -> usize {
        32
    }
    pub fn reclaim_idle() -> Span {
        Span::try_from("60s").unwrap()
    }
    pub fn drain_timeout() -> Span {
        Span::try_from("30s").unwrap()
    }
    pub fn tick() -> Span {
        Span::try_from("100ms").unwrap()
    }
    pub fn expand_chunk() -> usize {
        1000
    }
    pub fn expand_window() -> u64 {
        20_000
    }
    pub fn max_body_bytes() -> usize {
        1024 * 1024
    }
    pub fn max_inline_recipients() -> usize {
        10_000
    }
    pub fn events_maxlen() -> u64 {
        1_000_000
    }
}

/// A configuration problem, naming the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Load(#[from] config::ConfigError),
    #[error("config key `{key}` = {value:?}: {problem}")]
    Invalid { key: String, value: String, problem: String },
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
        let url = &self.redis.url;
        if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://")) {
            return Err(invalid("redis.url", url, "must start with redis:// or rediss://"));
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
        if self.retry.schedule.is_empty() {
            return Err(invalid("retry.schedule", "[]", "needs at least one delay"));
        }
        if let Some(zero) = self.retry.schedule.iter().find(|s| s.as_millis() == 0) {
            return Err(invalid("retry.schedule", format!("{:?}", zero.get()), "delays must be positive"));
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
        if self.api.tokens.is_empty() {
            return Err(invalid("api.tokens", "[]", "needs at least one Bearer token"));
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
        if self.campaigns.max_inline_recipients == 0 {
            return Err(invalid("campaigns.max_inline_recipients", 0, "must be at least 1"));
        }
        Ok(())
    }

    fn validate_worker(&self) -> Result<(), ConfigError> {
        if self.smtp.relays.is_empty() {
            return Err(invalid("smtp.relays", "[]", "a worker needs at least one [[smtp.relays]]"));
        }
        for (i, r) in self.smtp.relays.iter().enumerate() {
            if r.host.trim().is_empty() {
                return Err(invalid(format!("smtp.relays[{i}].host"), &r.host, "must not be empty"));
            }
            if r.port == 0 {
                return Err(invalid(format!("smtp.relays[{i}].port"), 0, "must be 1-65535"));
            }
            if r.username.is_some() != r.password.is_some() {
                return Err(invalid(
                    format!("smtp.relays[{i}].username"),
                    r.username.as_deref().unwrap_or(""),
                    "username and password go together",
                ));
            }
        }
        if self.smtp.max_connections_per_relay == 0 {
            return Err(invalid("smtp.max_connections_per_relay", 0, "must be at least 1"));
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
        if let Some(name) = &w.name {
            crate::validate::consumer_name(name).map_err(|p| invalid("worker.name", name, p))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
[redis]
url = "redis://127.0.0.1:6379/0"

[api]
listen = "127.0.0.1:8025"
tokens = ["change-me"]

[metrics]
listen = "127.0.0.1:9464"

[[smtp.relays]]
host = "127.0.0.1"
port = 2525
tls = "none"

[limits.default]
rate = "100/s"
burst = 100
connections = 10

[limits.domains."gmail.com"]
rate = "20/s"
"#;

    #[test]
    fn the_documented_example_loads_for_both_roles() {
        let c = Config::from_toml(ISSUE_EXAMPLE, Role::Scheduler).unwrap();
        Config::from_toml(ISSUE_EXAMPLE, Role::Worker).unwrap();
        assert_eq!(c.smtp.relays[0].port, 2525);
        let g = c.limits.for_domain("gmail.com");
        assert_eq!((g.per_second, g.burst, g.connections), (20.0, 20, 10));
        let o = c.limits.for_domain("example.org");
        assert_eq!((o.per_second, o.burst, o.connections), (100.0, 100, 10));
        assert_eq!(c.limits.label("gmail.com"), "gmail.com");
        assert_eq!(c.limits.label("example.org"), "other");
    }

    fn error_of(text: &str, role: Role) -> String {
        Config::from_toml(text, role).unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_the_key() {
        let base = "[redis]\nurl = \"redis://x\"\n[api]\ntokens=[\"long-enough\"]\n";
        let cases = [
            (format!("{base}[limits.default]\nrate = \"fast\"\n"), "rate"),
            (format!("{base}[limits.default]\nburst = 0\n"), "limits.default.burst"),
            (format!("{base}[limits.domains.\"gmail.com\"]\nconnections = 0\n"), "connections"),
            (format!("{base}[metrics]\nlisten = \"nowhere\"\n"), "metrics.listen"),
            (format!("{base}[retry]\nschedule = []\n"), "retry.schedule"),
            ("[redis]\nurl = \"http://x\"\n[api]\ntokens=[\"long-enough\"]\n".to_string(), "redis.url"),
            ("[redis]\nurl = \"redis://x\"\n".to_string(), "api.tokens"),
            (format!("{base}[api.extra]\n"), "extra"),
            (format!("{base}[limits.default]\nrte = \"1/s\"\n"), "rte"),
        ];
        for (text, needle) in cases {
            let err = error_of(&text, Role::Scheduler);
            assert!(err.contains(needle), "expected {needle:?} in {err:?}");
        }
    }

    #[test]
    fn worker_needs_a_relay() {
        let err = error_of("[redis]\nurl = \"redis://x\"\n", Role::Worker);
        assert!(err.contains("smtp.relays"), "{err}");
        let err =
            error_of("[redis]\nurl = \"redis://x\"\n[[smtp.relays]]\nhost=\"h\"\nport=25\ntls=\"ssl\"\n", Role::Worker);
        assert!(err.contains("tls") || err.contains("ssl"), "{err}");
    }

    #[test]
    fn retry_schedule_repeats_its_last_step() {
        let r = RetryConfig::default();
        let secs: Vec<u64> = (1..=7).map(|n| r.delay_before(n).as_millis() / 1000).collect();
        assert_eq!(secs, vec![60, 300, 1800, 7200, 21600, 21600, 21600]);
    }
}
