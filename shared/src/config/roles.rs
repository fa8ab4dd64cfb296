//! The `[worker]` and `[scheduler]` sections: how each binary paces itself.

use serde::Deserialize;

use super::{ConfigError, at_least_one, invalid};

use crate::units::Span;

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
    /// Niceness added to the threads doing bulk work (0 to 19); the threads serving
    /// latency-critical work keep the process's own.
    #[serde(default = "defaults::bulk_niceness")]
    pub bulk_niceness: u8,
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
            bulk_niceness: defaults::bulk_niceness(),
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
    /// Dead letters kept at most (the oldest go first); a dropped one can no longer be requeued.
    #[serde(default = "defaults::dead_letters_max")]
    pub dead_letters_max: u64,
    /// Dead letters older than this are dropped.
    #[serde(default = "defaults::dead_letter_retention")]
    pub dead_letter_retention: Span,
    /// Niceness added to the threads doing bulk work (0 to 19); the threads serving
    /// latency-critical work keep the process's own.
    #[serde(default = "defaults::bulk_niceness")]
    pub bulk_niceness: u8,
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
            dead_letters_max: defaults::dead_letters_max(),
            dead_letter_retention: defaults::dead_letter_retention(),
            bulk_niceness: defaults::bulk_niceness(),
        }
    }
}

impl WorkerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("worker.batch", self.batch)?;
        if self.max_inflight < self.batch {
            return Err(invalid("worker.max_inflight", self.max_inflight, "must be at least worker.batch"));
        }
        at_least_one("worker.domains_per_round", self.domains_per_round)?;
        if self.reclaim_idle.as_millis() < 1000 {
            return Err(invalid(
                "worker.reclaim_idle",
                format!("{:?}", self.reclaim_idle.get()),
                "must be at least 1s",
            ));
        }
        if self.max_deliveries < 2 {
            return Err(invalid("worker.max_deliveries", self.max_deliveries, "must be at least 2"));
        }
        if let Some(name) = &self.name {
            crate::validate::consumer_name(name).map_err(|p| invalid("worker.name", name, p))?;
        }
        niceness_in_range("worker.bulk_niceness", self.bulk_niceness)
    }
}

impl SchedulerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("scheduler.expand_chunk", self.expand_chunk)?;
        at_least_one("scheduler.expand_window", self.expand_window)?;
        at_least_one("scheduler.dead_letters_max", self.dead_letters_max)?;
        niceness_in_range("scheduler.bulk_niceness", self.bulk_niceness)
    }
}

fn niceness_in_range(key: &str, value: u8) -> Result<(), ConfigError> {
    if value > crate::niceness::MAX {
        return Err(invalid(key, value, "must be between 0 and 19"));
    }
    Ok(())
}

mod defaults {
    use super::*;
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
    pub fn dead_letters_max() -> u64 {
        10_000
    }
    pub fn dead_letter_retention() -> Span {
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
    pub fn priority_inflight() -> usize {
        200
    }
    /// Measured with scripts/bench-latency.sh (docs/performance.md): 5 cut the p99 of
    /// transactional mail under bulk by a quarter and left bulk throughput as it was; 10 cut
    /// it no further and slowed bulk.
    pub fn bulk_niceness() -> u8 {
        5
    }
    pub fn priority_poll() -> Span {
        Span::try_from("5ms").unwrap()
    }
}
