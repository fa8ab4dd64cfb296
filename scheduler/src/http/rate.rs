//! A token bucket per client address, in this process: a flood from one client is answered
//! 429 while everyone else is served. Buckets of clients gone quiet are dropped, so the table
//! stays bounded however many addresses call.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Clients remembered before quiet ones are dropped.
const MAX_CLIENTS: usize = 100_000;

pub struct PerClient {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl PerClient {
    pub fn new(per_second: f64, burst: u32) -> PerClient {
        PerClient { rate: per_second, burst: f64::from(burst), buckets: Mutex::default() }
    }

    /// Takes one request's token for `client`; false when its bucket is empty.
    pub fn allow(&self, client: IpAddr) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() >= MAX_CLIENTS {
            let full = Duration::from_secs_f64(self.burst / self.rate.max(f64::MIN_POSITIVE));
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_runs_dry_while_another_is_served() {
        let limit = PerClient::new(1.0, 3);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!((0..10).filter(|_| limit.allow(a)).count(), 3, "the burst, then nothing");
        assert!(limit.allow(b));
    }
}
