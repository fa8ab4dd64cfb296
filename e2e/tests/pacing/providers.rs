//! Provider shaping through the real binaries: gmail.com (by the built-in domain list) and a
//! company domain hosted by Google (by MX rollup against a local DNS server) share one queue,
//! `@google`, and one rate; a domain with its own MX keeps its own queue, and so does a
//! provider's domain with a `[limits.domains]` section of its own.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::json;
use sluice_shared::keys;
use sluice_testkit::dns_server::{DnsServer, Entry, ip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_hosted_by_one_provider_share_its_queue_and_rate() {
    let dns = DnsServer::start(vec![
        Entry::Mx { name: "brand.example".into(), preference: 1, exchange: "aspmx.l.google.com".into() },
        Entry::A { name: "aspmx.l.google.com".into(), address: ip("127.0.0.1") },
        Entry::Mx { name: "own.example".into(), preference: 10, exchange: "mx.own.example".into() },
    ])
    .await;
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\n\n[limits]\nmx_rollup = true\n\n[limits.default]\nrate = \"10000/s\"\nburst = 10000\n\n\
         [limits.providers.google]\nrate = \"50/s\"\nburst = 50\n\n[limits.domains.\"googlemail.com\"]\nrate = \"1000/s\"\n",
        dns.nameserver()
    );
    let stack = common::start(&extra, 2).await;
    let mut recipients: Vec<_> = (0..75).map(|i| format!("g{i}@gmail.com")).collect();
    recipients.extend((0..75).map(|i| format!("b{i}@brand.example")));
    recipients.extend((0..10).map(|i| format!("o{i}@own.example")));
    recipients.extend((0..5).map(|i| format!("m{i}@googlemail.com")));
    let body = common::campaign_body(
        "shaped",
        recipients.iter().map(|r| json!({"email": r, "vars": {"name": "N"}})).collect(),
    );
    let started = Instant::now();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("shaped", "completed", Duration::from_secs(30)).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(stack.sink.state.accepted(), 165);
    // One bucket: 50 at once, then 100 at 50/s = 2 s. Two buckets would take about 0.5 s.
    assert!(elapsed >= 1.7, "150 messages to Google in {elapsed:.2} s: the provider rate was not shared");

    let mut destinations: Vec<String> =
        redis::cmd("SMEMBERS").arg(keys::domains()).query(&mut stack.redis.conn()).unwrap();
    destinations.sort();
    assert_eq!(destinations, ["@google", "googlemail.com", "own.example"]);
    let metrics = format!("{}{}", stack.scrape(1).await, stack.scrape(2).await);
    assert!(metrics.contains("sluice_messages_total{outcome=\"sent\",domain=\"google\"}"), "{metrics}");
    let (status, google) = stack.call("GET", "/v1/destinations/@google", None).await;
    assert_eq!(status, 200, "{google}");
    assert_eq!(
        (google["limit"]["rate_per_second"].as_f64(), google["limit"]["connections"].as_u64()),
        (Some(50.0), Some(5))
    );
}
