//! The `[campaigns]` section: bounds on what a campaign may hold and how long it is kept.

use serde::Deserialize;

use super::{ConfigError, at_least_one};

use crate::units::Span;

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
    /// A draft or paused campaign nobody touched (created, given recipients, started, paused
    /// or resumed) for this long is cancelled; its data then expires after `retention`.
    #[serde(default = "defaults::idle_expiry")]
    pub idle_expiry: Span,
    /// A running campaign whose counts did not move for this long is checked for lost jobs
    /// (the reconcile duty), and again after each further such stretch.
    #[serde(default = "defaults::reconcile_after")]
    pub reconcile_after: Span,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            max_body_bytes: defaults::max_body_bytes(),
            max_rendered_bytes: defaults::max_rendered_bytes(),
            max_inline_recipients: defaults::max_inline_recipients(),
            events_maxlen: defaults::events_maxlen(),
            retention: defaults::retention(),
            idle_expiry: defaults::idle_expiry(),
            reconcile_after: defaults::reconcile_after(),
        }
    }
}

impl CampaignConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("campaigns.max_inline_recipients", self.max_inline_recipients)?;
        at_least_one("campaigns.idle_expiry", self.idle_expiry.as_millis())?;
        at_least_one("campaigns.reconcile_after", self.reconcile_after.as_millis())?;
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn retention() -> Span {
        Span::try_from("30d").unwrap()
    }
    pub fn idle_expiry() -> Span {
        Span::try_from("30d").unwrap()
    }
    pub fn reconcile_after() -> Span {
        Span::try_from("10m").unwrap()
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
    pub fn events_maxlen() -> u64 {
        1_000_000
    }
}
