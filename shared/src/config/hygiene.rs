//! The `[hygiene]` section: engagement records per address, and the sunset policy that skips
//! dormant addresses at expansion (see `engagement`).

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HygieneConfig {
    /// Keep an engagement record per campaign recipient (10 bytes plus the address); default:
    /// on when a sunset policy is set. It costs Redis about 15 µs per message to an address
    /// seen for the first time (docs/deliverability/hygiene.md), so it is not on for everyone.
    pub track: Option<bool>,
    /// Dormant once it got this many campaign sends since its last real open or click.
    pub sunset_after_sends: Option<u32>,
    /// ... and this many days passed since that engagement (since its first send if none).
    pub sunset_after_days: Option<u32>,
}

impl HygieneConfig {
    /// Whether engagement records are kept.
    pub fn tracks(&self) -> bool {
        self.track.unwrap_or_else(|| self.sunsets())
    }

    /// Whether a sunset policy is set.
    pub fn sunsets(&self) -> bool {
        self.sunset_after_sends.is_some() || self.sunset_after_days.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(n) = self.sunset_after_sends
            && !(1..=65_000).contains(&n)
        {
            return Err(invalid("hygiene.sunset_after_sends", n, "must be 1-65000"));
        }
        if let Some(d) = self.sunset_after_days
            && !(1..=10_000).contains(&d)
        {
            return Err(invalid("hygiene.sunset_after_days", d, "must be 1-10000"));
        }
        if self.sunsets() && self.track == Some(false) {
            return Err(invalid("hygiene.track", false, "a sunset policy needs the engagement records (track = true)"));
        }
        Ok(())
    }
}
