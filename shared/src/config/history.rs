//! The `[history]` section: the PostgreSQL store that keeps every event past Redis's retention,
//! for search, reports and audits. Absent `url`: no history store (Redis only).

use serde::Deserialize;

use super::{ConfigError, invalid};

use crate::units::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// `postgres://user[:password]@host:port/database` (libpq's URL form).
    pub url: Option<String>,
    /// How long events are kept; whole days are dropped once older than this.
    #[serde(default = "defaults::retention")]
    pub retention: Span,
    /// Events written per `COPY`, at most.
    #[serde(default = "defaults::batch")]
    pub batch: usize,
    /// PostgreSQL connections per scheduler (the writers and the API share them).
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            url: None,
            retention: defaults::retention(),
            batch: defaults::batch(),
            pool_size: defaults::pool_size(),
        }
    }
}

/// The shortest retention: partitions are whole days.
const DAY_MS: u64 = 86_400_000;

impl HistoryConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid("history.url", super::redacted_url(url), "must be a postgres:// URL"));
        }
        if self.retention.as_millis() < DAY_MS {
            return Err(invalid("history.retention", format!("{:?}", self.retention.get()), "must be at least 1d"));
        }
        if !(1..=100_000).contains(&self.batch) {
            return Err(invalid("history.batch", self.batch, "must be 1-100000"));
        }
        if !(2..=256).contains(&self.pool_size) {
            return Err(invalid("history.pool_size", self.pool_size, "must be 2-256"));
        }
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn retention() -> Span {
        Span::try_from("400d").unwrap()
    }
    pub fn batch() -> usize {
        5000
    }
    pub fn pool_size() -> usize {
        4
    }
}
