//! The sections of the configuration file, with their defaults.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::units::{Rate, Span};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`, or `rediss://` for TLS. In cluster mode, one seed node.
    #[serde(default)]
    pub url: String,
    /// `single` (one Redis, or a primary behind a failover address) or `cluster`.
    #[serde(default)]
    pub mode: RedisMode,
    /// Cluster seed nodes; setting them implies `mode = "cluster"`.
    #[serde(default)]
    pub seeds: Vec<String>,
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
    /// `rediss://`: PEM of the CA that signed the server's certificate, trusted instead of the
    /// system's roots (a private CA); without it, the system's roots.
    pub ca_file: Option<String>,
    /// `rediss://`: PEM client certificate (chain) and key, for servers that require one
    /// (`tls-auth-clients yes`).
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    #[default]
    Single,
    Cluster,
}

impl RedisConfig {
    /// Whether Sluice talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.mode == RedisMode::Cluster || !self.seeds.is_empty()
    }

    /// The URLs to connect to: the seeds, or the one `url`.
    pub fn nodes(&self) -> Vec<&str> {
        if self.seeds.is_empty() { vec![self.url.as_str()] } else { self.seeds.iter().map(String::as_str).collect() }
    }

    /// Whether the connections use TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.nodes().iter().any(|u| u.starts_with("rediss://"))
    }

    /// One line naming where Redis is, without passwords, for logs.
    pub fn describe(&self) -> String {
        let nodes: Vec<String> = self.nodes().into_iter().map(crate::redis::redacted).collect();
        if self.is_cluster() { format!("cluster {}", nodes.join(",")) } else { nodes.join(",") }
    }
}

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
            Scope::Admin => "admin",
        }
    }
}

/// An API key: its id (recorded in the audit log), the SHA-256 of the Bearer token (hex;
/// the token itself is never stored), and its scopes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub sha256: String,
    pub scopes: Vec<Scope>,
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

/// Limits for one destination domain. Unset fields inherit from `[limits.default]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    pub rate: Option<Rate>,
    pub burst: Option<u32>,
    pub connections: Option<usize>,
    /// mx mode: STARTTLS with a certificate verified against the MX host name, or nothing
    /// (Postfix's `verify`); otherwise STARTTLS is used when offered, unchecked (`may`).
    pub require_tls: Option<bool>,
    /// mx mode: a connection is closed after this many messages.
    pub messages_per_connection: Option<u32>,
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
    #[serde(default)]
    pub require_tls: bool,
    #[serde(default = "defaults::messages_per_connection")]
    pub messages_per_connection: u32,
}

impl DefaultLimit {
    /// These limits with `o`'s fields in their place. A `rate` without `burst` gets one
    /// second's worth of burst.
    pub fn with(&self, o: &LimitOverride) -> DomainLimit {
        let burst = match (o.burst, o.rate) {
            (Some(b), _) => b,
            (None, Some(r)) => r.per_second().ceil().max(1.0) as u32,
            (None, None) => self.burst,
        };
        DomainLimit {
            per_second: o.rate.map_or(self.rate.per_second(), Rate::per_second),
            burst,
            connections: o.connections.unwrap_or(self.connections),
            require_tls: o.require_tls.unwrap_or(self.require_tls),
            messages_per_connection: o.messages_per_connection.unwrap_or(self.messages_per_connection),
        }
    }
}

impl LimitOverride {
    /// Each field of `self`, else of `under`.
    pub fn over(&self, under: &LimitOverride) -> LimitOverride {
        LimitOverride {
            rate: self.rate.or(under.rate),
            burst: self.burst.or(under.burst),
            connections: self.connections.or(under.connections),
            require_tls: self.require_tls.or(under.require_tls),
            messages_per_connection: self.messages_per_connection.or(under.messages_per_connection),
        }
    }
}

impl Default for DefaultLimit {
    fn default() -> Self {
        DefaultLimit {
            rate: defaults::rate(),
            burst: defaults::burst(),
            connections: defaults::connections(),
            require_tls: false,
            messages_per_connection: defaults::messages_per_connection(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub default: DefaultLimit,
    #[serde(default)]
    pub domains: BTreeMap<String, LimitOverride>,
    /// Provider groups (see [`super::providers`]); built-in ones exist without configuration.
    #[serde(default)]
    pub providers: BTreeMap<String, super::ProviderConfig>,
    /// Group domains into providers by their MX hosts too (DNS lookups at expansion, cached);
    /// off: by the providers' domain lists only.
    #[serde(default)]
    pub mx_rollup: bool,
    /// Share (0-0.9) of every destination's rate and connections reserved for transactional
    /// messages: bulk cannot starve them, and while bulk waits they use at most this share.
    #[serde(default = "defaults::transactional_share")]
    pub transactional_share: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            default: DefaultLimit::default(),
            domains: BTreeMap::new(),
            providers: BTreeMap::new(),
            mx_rollup: false,
            transactional_share: defaults::transactional_share(),
        }
    }
}

/// The limits that apply to one destination domain, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DomainLimit {
    pub per_second: f64,
    pub burst: u32,
    pub connections: usize,
    pub require_tls: bool,
    pub messages_per_connection: u32,
}

impl LimitsConfig {
    /// Limits for a destination: a provider queue (`@name`) gets its provider's; a domain its
    /// own section if configured, else the default. A section that sets `rate` but not
    /// `burst` gets one second's worth of burst.
    pub fn for_domain(&self, domain: &str) -> DomainLimit {
        if let Some(limit) = domain.strip_prefix('@').and_then(|name| self.provider_limit(name)) {
            return limit;
        }
        self.default.with(self.domains.get(domain).unwrap_or(&LimitOverride::default()))
    }

    /// Concurrent sends to one destination per lane, from its `connections`: the priority lane
    /// gets the reserved share (at least one), bulk the rest (at least one).
    pub fn lane_connections(&self, connections: usize, lane: crate::lane::Lane) -> usize {
        split_for_lane(connections, self.transactional_share, lane)
    }

    /// Bounded metric label for a destination: the provider's name for a provider queue, the
    /// domain itself if configured, else "other".
    pub fn label<'a>(&self, domain: &'a str) -> &'a str {
        match domain.strip_prefix('@') {
            Some(name) => name,
            None if self.domains.contains_key(domain) => domain,
            None => "other",
        }
    }
}

/// Splits `total` concurrent slots between the lanes by `share`; each lane keeps at least one.
pub fn split_for_lane(total: usize, share: f64, lane: crate::lane::Lane) -> usize {
    let priority = ((total as f64 * share).ceil() as usize).max(1);
    match lane {
        crate::lane::Lane::Priority => priority,
        crate::lane::Lane::Bulk => total.saturating_sub(priority).max(1),
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
    /// A job handed out more often than this (its worker kept dying or stalling) goes to the
    /// dead-letter stream instead of looping forever.
    #[serde(default = "defaults::max_deliveries")]
    pub max_deliveries: u64,
    /// Most transactional jobs one worker holds at once (the priority lane's own bound).
    #[serde(default = "defaults::priority_inflight")]
    pub priority_inflight: usize,
    /// How often an idle priority lane looks for work: the floor of transactional latency.
    #[serde(default = "defaults::priority_poll")]
    pub priority_poll: Span,
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
            max_deliveries: defaults::max_deliveries(),
            priority_inflight: defaults::priority_inflight(),
            priority_poll: defaults::priority_poll(),
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
    /// Intake entries a crashed scheduler held are taken over after this long.
    #[serde(default = "defaults::scheduler_reclaim_idle")]
    pub reclaim_idle: Span,
    /// Consumers (workers, schedulers) idle this long with nothing pending are removed.
    #[serde(default = "defaults::consumer_expiry")]
    pub consumer_expiry: Span,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            name: None,
            tick: defaults::tick(),
            expand_chunk: defaults::expand_chunk(),
            expand_window: defaults::expand_window(),
            reclaim_idle: defaults::scheduler_reclaim_idle(),
            consumer_expiry: defaults::consumer_expiry(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Largest subject + html + text + headers a campaign may carry, in bytes.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest rendered subject, html or text of one message, in bytes: a render that grows
    /// past it fails that recipient.
    #[serde(default = "defaults::max_rendered_bytes")]
    pub max_rendered_bytes: usize,
    /// Most recipients inline in `POST /v1/campaigns`.
    #[serde(default = "defaults::max_inline_recipients")]
    pub max_inline_recipients: usize,
    /// Approximate cap on each campaign's event stream.
    #[serde(default = "defaults::events_maxlen")]
    pub events_maxlen: u64,
    /// A completed or cancelled campaign's data (counts, events, states) is kept this long.
    #[serde(default = "defaults::retention")]
    pub retention: Span,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            max_body_bytes: defaults::max_body_bytes(),
            max_rendered_bytes: defaults::max_rendered_bytes(),
            max_inline_recipients: defaults::max_inline_recipients(),
            events_maxlen: defaults::events_maxlen(),
            retention: defaults::retention(),
        }
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
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            smtp_listen: None,
            max_message_bytes: defaults::inbound_max_bytes(),
            max_connections: defaults::inbound_max_connections(),
            max_connections_per_client: defaults::inbound_max_connections_per_client(),
            command_timeout: defaults::inbound_command_timeout(),
            session_timeout: defaults::inbound_session_timeout(),
            max_buffered_bytes: defaults::inbound_max_buffered_bytes(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkimAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

/// What happens to a message whose From domain has no DKIM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingKey {
    /// Campaigns are refused at creation; a message that still meets no key fails.
    Refuse,
    /// Sent unsigned.
    Send,
}

/// One signing key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    /// The From domain the key signs for (`d=`).
    pub domain: String,
    /// `s=`: the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    #[serde(default = "defaults::dkim_algorithm")]
    pub algorithm: DkimAlgorithm,
    /// PEM private key: PKCS#8 (`PRIVATE KEY`) or, for RSA, PKCS#1 (`RSA PRIVATE KEY`).
    pub key_file: String,
    /// Rotation: the key signs from this time on (RFC 3339), replacing an older key of the
    /// same domain and algorithm. Absent: from the start.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    #[serde(default)]
    pub keys: Vec<DkimKeyConfig>,
    #[serde(default = "defaults::missing_key")]
    pub missing_key: MissingKey,
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig { keys: Vec::new(), missing_key: defaults::missing_key() }
    }
}

impl DkimConfig {
    /// Whether a message from `domain` may be sent: it has a key, or unsigned mail is allowed.
    pub fn allows(&self, domain: &str) -> bool {
        self.missing_key == MissingKey::Send || self.keys.iter().any(|k| k.domain.eq_ignore_ascii_case(domain))
    }
}

/// How replies are read ([`crate::classify`]) and what repeated soft bounces lead to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// Rules checked before the built-in ones, in order.
    #[serde(default)]
    pub rules: Vec<crate::classify::RuleSpec>,
    /// A TOML file of more rules (`[[rule]]` tables), checked after `rules`, before the built-ins.
    pub rules_file: Option<String>,
    /// Reply categories that count as soft bounces of the address.
    #[serde(default = "defaults::soft_categories")]
    pub soft_categories: Vec<crate::classify::Category>,
    /// Soft bounces within `soft_window` after which the address is suppressed (0: never).
    #[serde(default = "defaults::soft_limit")]
    pub soft_limit: u32,
    #[serde(default = "defaults::soft_window")]
    pub soft_window: Span,
    /// Envelope senders become VERP addresses at this domain (point its MX at the inbound
    /// listener); needs `[public]` for the signing secret. Absent: the From address.
    pub return_path_domain: Option<String>,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            rules: Vec::new(),
            rules_file: None,
            soft_categories: defaults::soft_categories(),
            soft_limit: defaults::soft_limit(),
            soft_window: defaults::soft_window(),
            return_path_domain: None,
        }
    }
}

impl BouncesConfig {
    /// The operator's rules ahead of the built-in ones.
    pub fn classifier(&self) -> Result<crate::classify::Classifier, crate::classify::RuleError> {
        crate::classify::Classifier::new(&self.rules, self.rules_file.as_deref())
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
    pub fn consumer_expiry() -> Span {
        Span::try_from("1h").unwrap()
    }
    pub fn retention() -> Span {
        Span::try_from("30d").unwrap()
    }
    pub fn scheduler_reclaim_idle() -> Span {
        Span::try_from("30s").unwrap()
    }
    pub fn max_deliveries() -> u64 {
        5
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
    pub fn max_rendered_bytes() -> usize {
        2 * 1024 * 1024
    }
    pub fn max_inline_recipients() -> usize {
        10_000
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
    pub fn messages_per_connection() -> u32 {
        100
    }
    pub fn dns_timeout() -> Span {
        Span::try_from("5s").unwrap()
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
    pub fn public_listen() -> String {
        "127.0.0.1:8026".into()
    }
    pub fn dkim_algorithm() -> DkimAlgorithm {
        DkimAlgorithm::RsaSha256
    }
    pub fn missing_key() -> MissingKey {
        MissingKey::Refuse
    }
    pub fn soft_categories() -> Vec<crate::classify::Category> {
        vec![crate::classify::Category::MailboxFull]
    }
    pub fn soft_limit() -> u32 {
        5
    }
    pub fn soft_window() -> Span {
        Span::try_from("7d").unwrap()
    }
    pub fn transactional_share() -> f64 {
        0.2
    }
    pub fn priority_inflight() -> usize {
        200
    }
    pub fn priority_poll() -> Span {
        Span::try_from("5ms").unwrap()
    }
    pub fn events_maxlen() -> u64 {
        1_000_000
    }
}
