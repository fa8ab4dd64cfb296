//! The `[retry]` section: when deferred mail is tried again, and for how long.

use serde::Deserialize;

use super::{ConfigError, invalid};

use crate::units::Span;

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

impl RetryConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.schedule.is_empty() {
            return Err(invalid("retry.schedule", "[]", "needs at least one delay"));
        }
        if let Some(zero) = self.schedule.iter().find(|s| s.as_millis() == 0) {
            return Err(invalid("retry.schedule", format!("{:?}", zero.get()), "delays must be positive"));
        }
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn retry_schedule() -> Vec<Span> {
        ["1m", "5m", "30m", "2h", "6h"].iter().map(|s| Span::try_from(*s).unwrap()).collect()
    }
    pub fn max_age() -> Span {
        Span::try_from("3d").unwrap()
    }
}
