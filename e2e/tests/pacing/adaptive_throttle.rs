//! A throttling reply slows the whole destination for every worker, and the rate comes back:
//! the sink answers `421 4.7.28` once; the domain's 100/s drops to 10/s for 3 s, ramps back
//! over 3 s, and the campaign completes. Repeated mailbox-full replies suppress the address.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::json;

const CONFIG: &str = r#"
[limits.default]
rate = "10000/s"
burst = 10000

[limits.domains."t.example"]
rate = "100/s"
burst = 20

[retry]
schedule = ["1s"]

[bounces]
soft_limit = 2

[[bounces.rules]]
name = "test-google-throttle"
enhanced = '^4\.7\.28$'
category = "throttled"
action = "slow"
factor = 0.1
for = "3s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_reply_slows_the_destination_then_it_recovers() {
    let stack = common::start(CONFIG, 2).await;
    let mut recipients = vec![json!({"email": "throttle1-0@t.example", "vars": {"name": "T"}})];
    recipients.extend((1..400).map(|i| json!({"email": format!("u{i}@t.example"), "vars": {"name": "U"}})));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("shaped", recipients))).await;
    assert_eq!(status, 201, "{reply}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while stack.sink.state.attempts_for("throttle1-0@t.example") == 0 {
        assert!(Instant::now() < deadline, "throttle reply never given\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Once the reply's outcome is recorded the destination is shaped; watch the window after.
    let dest = sluice_testkit::wait_for("the destination to be shaped", Duration::from_secs(10), || async {
        let (status, dest) = stack.call("GET", "/v1/destinations/t.example", None).await;
        (status == 200 && dest["throttled"] == true).then_some(dest)
    })
    .await;
    let before = stack.sink.state.accepted();
    assert!(dest["rate_factor"].as_f64().unwrap() <= 0.1 + 1e-9, "{dest}");
    assert!(dest["slowed_until"].is_string() && dest["suspended_until"].is_null(), "{dest}");
    let (_, listed) = stack.call("GET", "/v1/destinations", None).await;
    assert_eq!(listed["destinations"][0]["domain"], "t.example", "{listed}");
    let mut lowest_factor = 1.0_f64;
    let window = Instant::now();
    while window.elapsed() < Duration::from_millis(2500) {
        for i in 1..=2 {
            if let Some(f) =
                common::sample(&stack.scrape(i).await, "sluice_destination_rate_factor{domain=\"t.example\"}")
            {
                lowest_factor = lowest_factor.min(f);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = stack.sink.state.accepted() - before;
    // At 100/s this window would carry ~250 messages; at 10/s (burst 2) about 25.
    assert!(during <= 50, "{during} messages in 2.5 s while the destination was slowed to 10/s");
    assert!(lowest_factor <= 0.11, "rate factor gauge never showed the cut: {lowest_factor}");

    // It recovers: everything arrives, and the last hundred at far more than 10/s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut at_300 = None;
    while stack.sink.state.accepted() < 400 {
        assert!(Instant::now() < deadline, "only {} delivered\n{}", stack.sink.state.accepted(), stack.logs());
        if at_300.is_none() && stack.sink.state.accepted() >= 300 {
            at_300 = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last_hundred = at_300.unwrap().elapsed().as_secs_f64();
    assert!(last_hundred < 4.0, "the last 100 messages took {last_hundred:.1} s: the rate did not come back");
    let view = stack.wait_status("shaped", "completed", Duration::from_secs(10)).await;
    assert_eq!(common::counts(&view)["sent"], 400, "{view}");
    let mut changes = 0.0;
    for i in 1..=2 {
        changes += common::sample(
            &stack.scrape(i).await,
            "sluice_destination_shape_changes_total{action=\"slow\",domain=\"t.example\"}",
        )
        .unwrap_or(0.0);
    }
    assert_eq!(changes, 1.0, "exactly one slow-down recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_mailbox_full_replies_suppress_the_address() {
    let stack = common::start(CONFIG, 1).await;
    let recipients = ["full-1@x.example", "ok@x.example"].map(|e| json!({"email": e, "vars": {"name": "N"}})).to_vec();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("full", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let view = stack.wait_status("full", "completed", Duration::from_secs(20)).await;
    let counts = common::counts(&view);
    assert_eq!((counts["sent"], counts["bounced"], counts["deferred"]), (1, 1, 0), "{view}");
    assert_eq!(stack.sink.state.attempts_for("full-1@x.example"), 2, "suppressed at the second soft bounce");
    let (status, entry) = stack.call("GET", "/v1/suppressions/full-1@x.example", None).await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["reason"], "soft_bounces", "{entry}");
}
