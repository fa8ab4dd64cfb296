//! The `[limits]` section: per-destination rates, bursts and connections, and the priority lane's share.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

use crate::{model::Charset, units::Rate};

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
    /// Larger messages fail unsent (the destination would refuse them; au refuses over 3 MB).
    pub max_message_bytes: Option<usize>,
    /// mx mode: a connection the destination resets mid-session is throttling (slow the
    /// destination), as au blocks heavy senders, not a passing network fault.
    pub reset_is_throttling: Option<bool>,
    /// The charset of campaigns that name none (`utf-8`, `iso-2022-jp`).
    pub charset: Option<Charset>,
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
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    #[serde(default)]
    pub reset_is_throttling: bool,
    #[serde(default)]
    pub charset: Option<Charset>,
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
            max_message_bytes: o.max_message_bytes.or(self.max_message_bytes),
            reset_is_throttling: o.reset_is_throttling.unwrap_or(self.reset_is_throttling),
            charset: o.charset.or(self.charset),
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
            max_message_bytes: self.max_message_bytes.or(under.max_message_bytes),
            reset_is_throttling: self.reset_is_throttling.or(under.reset_is_throttling),
            charset: self.charset.or(under.charset),
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
            max_message_bytes: None,
            reset_is_throttling: false,
            charset: None,
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
    pub max_message_bytes: Option<usize>,
    pub reset_is_throttling: bool,
    pub charset: Option<Charset>,
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

impl LimitsConfig {
    /// Positive bursts and connections everywhere, lower-case domains and provider names.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.default;
        at_least_one("limits.default.burst", d.burst)?;
        at_least_one("limits.default.connections", d.connections)?;
        let share = self.transactional_share;
        if !(0.0..=0.9).contains(&share) {
            return Err(invalid("limits.transactional_share", share, "must be between 0 and 0.9"));
        }
        for (domain, o) in &self.domains {
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
        for (name, p) in &self.providers {
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
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn rate() -> Rate {
        Rate::try_from("100/s").unwrap()
    }
    pub fn burst() -> u32 {
        100
    }
    pub fn connections() -> usize {
        10
    }
    pub fn messages_per_connection() -> u32 {
        100
    }
    pub fn transactional_share() -> f64 {
        0.2
    }
}
