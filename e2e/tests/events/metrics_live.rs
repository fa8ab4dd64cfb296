//! Every metric a dashboard panel or an alert rule queries is really exported: a stack runs a
//! small workload (a rate-limited domain, a throttling reply, an authentication rejection, a
//! campaign the reputation guard pauses, a warm-up sender, a webhook endpoint that is down,
//! the PostgreSQL history), then the scheduler's and workers' `/metrics` are scraped and every
//! name the dashboards and rules use must be in them.

use crate::common;

use std::{collections::BTreeSet, time::Duration};

use serde_json::json;
use sluice_testkit::{PostgresServer, free_port};

/// Exported only where Redis has replicas: `redis_deploy/replica_acks.rs` scrapes it live
/// under Sentinel (and finds it absent on a Redis without replicas).
const WITH_REPLICAS_ONLY: &[&str] = &["sluice_redis_replica_waits_total"];

/// Metric names queried by the dashboards and the alert rules (histogram suffixes dropped),
/// but those only a deployment with replicas exports.
fn queried() -> BTreeSet<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../grafana");
    let mut text = std::fs::read_to_string(format!("{root}/alerts/sluice.rules.yml")).unwrap();
    for entry in std::fs::read_dir(format!("{root}/dashboards")).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let mut names = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("sluice_") {
        let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        names.insert(base(&name).to_string());
    }
    names.retain(|n| !WITH_REPLICAS_ONLY.contains(&n.as_str()));
    names
}

fn base(name: &str) -> &str {
    ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

/// Metric names present in a Prometheus text exposition.
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| base(l.split(['{', ' ']).next().unwrap()).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboards_and_alerts_query_is_exported() {
    let pg = PostgresServer::start();
    let extra = format!(
        r#"
[limits.domains."d0.example"]
rate = "20/s"
burst = 5

[warmup.plans.test]
days = [100000]
[warmup.senders."shop.example"]
plan = "test"
start = "{}"

[submission]
listen = "127.0.0.1:{}"
trusted_networks = ["127.0.0.1"]

[webhooks]
allow_http = true
allow_networks = ["127.0.0.0/8"]

[[webhooks.endpoints]]
id = "down"
url = "http://127.0.0.1:{}/hooks"
secret = "a-secret-for-the-test"

[history]
url = "{}"

[reputation]
min_sample = 10
window = 100
"#,
        chrono::Utc::now().format("%Y-%m-%d"),
        free_port(),
        free_port(),
        pg.url()
    );
    let stack = common::start(&extra, 1).await;
    let mut recipients = common::recipients(40, 2, |i| format!("u{i}"));
    recipients.push(json!({"email": "throttle1-x@d1.example", "vars": {"name": "t"}}));
    recipients.push(json!({"email": "unauth-x@gmail.com", "vars": {"name": "t"}}));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("metrics", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    // A campaign of its own that the reputation guard pauses (a quarter of it hard-bounces).
    let bouncing = common::recipients(20, 1, |i| if i % 4 == 0 { format!("hard-{i}") } else { format!("b{i}") });
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("bouncing", bouncing))).await;
    assert_eq!(status, 201, "{reply}");
    let wanted = queried();
    assert!(wanted.len() >= 20, "{wanted:?}");
    // Gauges sampled by the scheduler appear on its next sweep (every 5 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen = exported(&stack.scrape(0).await);
        for i in 1..stack.metrics.len() {
            seen.extend(exported(&stack.scrape(i).await));
        }
        let missing: Vec<&String> = wanted.iter().filter(|n| !seen.contains(*n)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "queried but never exported: {missing:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anyone who reaches the metrics listener reads no recipient address.
    for i in 0..stack.metrics.len() {
        let text = stack.scrape(i).await;
        assert!(!text.contains("@d0.example") && !text.contains("@d1.example"), "an address in metrics");
    }
}
