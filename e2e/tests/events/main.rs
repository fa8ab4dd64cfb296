//! Events through the real binaries: the events API, webhooks (and their abuse), tracking, unsubscribe, late reports and live metrics.

#[path = "../common/mod.rs"]
mod common;

mod events_api;
mod hygiene;
mod inbound_reports;
mod metrics_live;
mod reputation_guard;
mod suppression_scopes;
mod tracking;
mod unsubscribe;
mod unsubscribe_page;
mod webhook_abuse;
mod webhooks;
