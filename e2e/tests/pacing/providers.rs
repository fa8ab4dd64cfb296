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

/// The worker's and scheduler's metrics, concatenated.
async fn all_metrics(stack: &common::Stack) -> String {
    format!("{}{}", stack.scrape(0).await, stack.scrape(1).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carriers_and_icloud_get_their_queues_and_sender_problems_suspend_not_suppress() {
    // A small cap for au so that an ordinary test message can exceed it.
    let stack = common::start("[limits.providers.au]\nmax_message_bytes = 4000\n", 1).await;
    let people = ["ann@icloud.com", "bob@me.com", "cat@docomo.ne.jp", "dan@softbank.ne.jp", "eve@yahoo.co.jp"];
    let body =
        common::campaign_body("carriers", people.iter().map(|r| json!({"email": r, "vars": {"name": "N"}})).collect());
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let view = stack.wait_status("carriers", "completed", Duration::from_secs(20)).await;
    assert_eq!(common::counts(&view)["sent"], 5, "{view}");
    let mut destinations: Vec<String> =
        redis::cmd("SMEMBERS").arg(keys::domains()).query(&mut stack.redis.conn()).unwrap();
    destinations.sort();
    assert_eq!(destinations, ["@docomo", "@icloud", "@softbank", "@yahoo-japan"]);
    let (_, docomo) = stack.call("GET", "/v1/destinations/@docomo", None).await;
    assert_eq!(
        (docomo["limit"]["rate_per_second"].as_f64(), docomo["limit"]["connections"].as_u64()),
        (Some(5.0), Some(2)),
        "{docomo}"
    );

    // au: a message over its size fails unsent; a reset mid-session slows the destination.
    let mut big = common::campaign_body("big", vec![json!({"email": "fay@au.com", "vars": {"name": "F"}})]);
    big["text"] = "x".repeat(5000).into();
    let (status, _) = stack.call("POST", "/v1/campaigns", Some(big)).await;
    assert_eq!(status, 201);
    let view = stack.wait_status("big", "completed", Duration::from_secs(20)).await;
    assert_eq!(common::counts(&view)["failed"], 1, "{view}");
    assert!(stack.event_data("big", "failed", "fay@au.com").contains("max_message_bytes"));
    assert_eq!(stack.sink.state.attempts_for("fay@au.com"), 0, "never offered to the destination");
    let reset = common::campaign_body("reset", vec![json!({"email": "reset1-gus@ezweb.ne.jp", "vars": {"name": "G"}})]);
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(reset)).await.0, 201);
    let au = sluice_testkit::wait_for("@au slowed by the reset", Duration::from_secs(20), || async {
        let (_, au) = stack.call("GET", "/v1/destinations/@au", None).await;
        (au["throttled"] == true).then_some(au)
    })
    .await;
    assert!(au["rate_factor"].as_f64().unwrap() <= 0.1 + 1e-9, "{au}");
    let deferred = stack.event_data("reset", "deferred", "reset1-gus@ezweb.ne.jp");
    assert!(deferred.contains("reset-is-throttling") && deferred.contains("throttled"), "{deferred}");

    // Gmail refusing our DMARC: the destination is suspended, the recipient is not suppressed.
    let unauth = common::campaign_body("unauth", vec![json!({"email": "unauth-hal@gmail.com", "vars": {"name": "H"}})]);
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(unauth)).await.0, 201);
    let google = sluice_testkit::wait_for("@google suspended", Duration::from_secs(20), || async {
        let (_, g) = stack.call("GET", "/v1/destinations/@google", None).await;
        g["suspended_until"].is_string().then_some(g)
    })
    .await;
    assert_eq!(google["throttled"], true, "{google}");
    let deferred = stack.event_data("unauth", "deferred", "unauth-hal@gmail.com");
    assert!(deferred.contains("auth_failure") && deferred.contains("sender-authentication"), "{deferred}");
    let (status, _) = stack.call("GET", "/v1/suppressions/unauth-hal@gmail.com", None).await;
    assert_eq!(status, 404, "a sender problem suppresses nobody");
    let metrics = all_metrics(&stack).await;
    assert_eq!(
        common::sample(&metrics, "sluice_sender_auth_rejections_total{domain=\"google\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(common::sample(&metrics, "sluice_messages_oversize_total{domain=\"au\"}"), Some(1.0));
}
