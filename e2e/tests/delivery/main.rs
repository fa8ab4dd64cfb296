//! Delivery through the real binaries: what reaches the relay or the MX hosts, signed, over TLS, politely, and what happens when they refuse.

#[path = "../common/mod.rs"]
mod common;

mod content;
mod dkim;
mod e2e_campaign;
mod japanese;
mod mta_sts;
mod mx_delivery;
mod polite_smtp;
mod relay_down;
mod starttls;
mod submission;
mod transactional;
mod untrusted_content;
