//! A warm-up cap through the real binaries: a From domain on day 0 of a plan capped at 4 sends
//! 4 of 10 messages with two workers, the rest wait for the next day (unsent, counted
//! deferred), and the API and metrics show the progress.

use crate::common;

use std::time::Duration;

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_cap_holds_across_workers_and_shows_in_the_api() {
    let today = chrono::Utc::now().date_naive();
    let extra = format!(
        "[warmup.plans.new-ip]\ndays = [4, 8]\n\n[warmup.senders.\"shop.example\"]\nplan = \"new-ip\"\nstart = \"{today}\"\n"
    );
    let stack = common::start(&extra, 2).await;
    let recipients: Vec<_> =
        (0..10).map(|i| json!({"email": format!("u{i}@x.example"), "vars": {"name": "U"}})).collect();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("warm", recipients))).await;
    assert_eq!(status, 201, "{reply}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let counts = loop {
        let counts = common::counts(&stack.campaign("warm").await);
        if counts["queued"] == 0 && counts["sent"] + counts["deferred"] == 10 {
            break counts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{counts:?}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((counts["sent"], counts["deferred"]), (4, 6), "{counts:?}");
    assert_eq!(stack.sink.state.accepted(), 4);

    let (status, body) = stack.call("GET", "/v1/warmup", None).await;
    assert_eq!(status, 200, "{body}");
    let s = &body["senders"][0];
    assert_eq!(
        (s["sender"].as_str(), s["day"].as_u64(), s["cap"].as_u64()),
        (Some("shop.example"), Some(0), Some(4)),
        "{body}"
    );
    assert_eq!((s["sent_today"].as_u64(), s["remaining_today"].as_u64()), (Some(4), Some(0)), "{body}");
    let metrics = format!("{}{}", stack.scrape(1).await, stack.scrape(2).await);
    assert!(metrics.contains("sluice_warmup_held_total{sender=\"shop.example\"}"), "{metrics}");
    // Nothing more goes out today: the six wait in the retry set until the next UTC midnight.
    let midnight = (today + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let waiting: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(sluice_shared::keys::campaign_retry("warm"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut stack.redis.conn())
        .unwrap();
    assert_eq!(waiting.len(), 6, "{waiting:?}");
    assert!(waiting.iter().all(|(_, due)| *due >= midnight), "due before tomorrow: {waiting:?} < {midnight}");
    assert_eq!(stack.sink.state.accepted(), 4);
}
