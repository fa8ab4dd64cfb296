//! The `[reputation]` section: the guard that pauses a campaign on its own when its hard-bounce
//! or complaint rate (or its From domain's, overall or at one provider) passes what mailbox
//! providers tolerate. Defaults follow their published rules: Gmail wants complaints under
//! 0.1% and never 0.3%; SES reviews accounts near 5% bounces.

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReputationConfig {
    /// Off: rates are still kept and shown, nothing is paused.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// Rates are over about the last this many attempts (between one and two windows).
    #[serde(default = "defaults::window")]
    pub window: u64,
    /// No rate is judged before this many attempts (complaints: deliveries) in its scope.
    #[serde(default = "defaults::min_sample")]
    pub min_sample: u64,
    #[serde(default = "defaults::complaint_warn")]
    pub complaint_warn_percent: f64,
    #[serde(default = "defaults::complaint_pause")]
    pub complaint_pause_percent: f64,
    #[serde(default = "defaults::hard_bounce_warn")]
    pub hard_bounce_warn_percent: f64,
    #[serde(default = "defaults::hard_bounce_pause")]
    pub hard_bounce_pause_percent: f64,
    /// Deferrals (throttling, greylisting) only warn by default: they are the providers'
    /// own brake. 100 never pauses.
    #[serde(default = "defaults::deferral_warn")]
    pub deferral_warn_percent: f64,
    #[serde(default = "defaults::deferral_pause")]
    pub deferral_pause_percent: f64,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        ReputationConfig {
            enabled: defaults::enabled(),
            window: defaults::window(),
            min_sample: defaults::min_sample(),
            complaint_warn_percent: defaults::complaint_warn(),
            complaint_pause_percent: defaults::complaint_pause(),
            hard_bounce_warn_percent: defaults::hard_bounce_warn(),
            hard_bounce_pause_percent: defaults::hard_bounce_pause(),
            deferral_warn_percent: defaults::deferral_warn(),
            deferral_pause_percent: defaults::deferral_pause(),
        }
    }
}

impl ReputationConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=10_000_000).contains(&self.window) {
            return Err(invalid("reputation.window", self.window, "must be 10-10000000"));
        }
        if !(1..=self.window).contains(&self.min_sample) {
            return Err(invalid("reputation.min_sample", self.min_sample, "must be 1 to reputation.window"));
        }
        for (name, warn, pause) in [
            ("complaint", self.complaint_warn_percent, self.complaint_pause_percent),
            ("hard_bounce", self.hard_bounce_warn_percent, self.hard_bounce_pause_percent),
            ("deferral", self.deferral_warn_percent, self.deferral_pause_percent),
        ] {
            for (level, value) in [("warn", warn), ("pause", pause)] {
                if !(value > 0.0 && value <= 100.0) {
                    return Err(invalid(
                        format!("reputation.{name}_{level}_percent"),
                        value,
                        "must be above 0, at most 100",
                    ));
                }
            }
            if warn > pause {
                return Err(invalid(
                    format!("reputation.{name}_warn_percent"),
                    warn,
                    format!("must not exceed {name}_pause_percent"),
                ));
            }
        }
        Ok(())
    }
}

mod defaults {
    pub fn enabled() -> bool {
        true
    }
    pub fn window() -> u64 {
        5000
    }
    pub fn min_sample() -> u64 {
        1000
    }
    pub fn complaint_warn() -> f64 {
        0.1
    }
    pub fn complaint_pause() -> f64 {
        0.3
    }
    pub fn hard_bounce_warn() -> f64 {
        2.0
    }
    pub fn hard_bounce_pause() -> f64 {
        5.0
    }
    pub fn deferral_warn() -> f64 {
        20.0
    }
    pub fn deferral_pause() -> f64 {
        100.0
    }
}
