//! Sections for transactional messages, the event feed, webhooks and tracking.

use serde::Deserialize;

use crate::units::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    /// Most `to` addresses of one message.
    #[serde(default = "defaults::max_recipients")]
    pub max_recipients: usize,
    /// How long an `Idempotency-Key` is remembered.
    #[serde(default = "defaults::idempotency_window")]
    pub idempotency_window: Span,
    /// How long a finished message (status and events) is kept.
    #[serde(default = "defaults::message_retention")]
    pub retention: Span,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            max_recipients: defaults::max_recipients(),
            idempotency_window: defaults::idempotency_window(),
            retention: defaults::message_retention(),
        }
    }
}

mod defaults {
    use crate::units::Span;

    pub fn max_recipients() -> usize {
        50
    }
    pub fn idempotency_window() -> Span {
        Span::try_from("24h").unwrap()
    }
    pub fn message_retention() -> Span {
        Span::try_from("7d").unwrap()
    }
}
