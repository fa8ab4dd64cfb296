//! Warm-up caps at send time, for the whole cluster: each sender (a From domain or a sending
//! address) has a counter per UTC date in Redis; sends are taken from it before they happen.

use std::net::IpAddr;

use crate::{
    config::WarmupDay,
    keys, metrics as m,
    redis::{Conn, StoreResult, scripts::records},
};

/// Who is warming up.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    /// A From domain (lower-case).
    Domain(&'a str),
    /// A sending address (mx mode).
    Ip(IpAddr),
}

impl Sender<'_> {
    /// The name in the API and the metrics' `sender` label: the domain, or `ip:ADDRESS`.
    pub fn label(&self) -> String {
        match self {
            Sender::Domain(d) => d.to_string(),
            Sender::Ip(ip) => format!("ip:{ip}"),
        }
    }

    /// The counter of sends on `day`'s date.
    pub fn counter(&self, day: &WarmupDay) -> String {
        let date = day.date.to_string();
        match self {
            Sender::Domain(d) => keys::warmup_sent(d, &date),
            Sender::Ip(ip) => keys::warmup_ip_sent(&ip.to_string(), &date),
        }
    }
}

/// The counter outlives its day long enough for the API to show yesterday.
const COUNTER_TTL_MS: u64 = 3 * 86_400_000;

/// Takes up to `want` sends from `cap` for today; returns how many were granted. Sets the
/// sender's warm-up gauges.
pub async fn take(conn: &mut Conn, sender: Sender<'_>, day: &WarmupDay, cap: u64, want: usize) -> StoreResult<usize> {
    let (granted, sent) = records::warmup_take(conn, &sender.counter(day), cap, want, COUNTER_TTL_MS).await?;
    let label = sender.label();
    metrics::gauge!(m::WARMUP_SENT, "sender" => label.clone()).set(sent as f64);
    metrics::gauge!(m::WARMUP_CAP, "sender" => label).set(cap as f64);
    Ok(granted)
}
