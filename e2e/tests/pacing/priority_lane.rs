//! The priority lane through the real binaries: a transactional message to a destination with
//! a deep bulk backlog is delivered at once, not after the backlog; and a flood of messages
//! takes only its reserved share of the destination's rate while bulk is waiting.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::json;

const LIMITS: &str = r#"
[limits.domains."bulk.example"]
rate = "100/s"
burst = 10
"#;

fn bulk_campaign(n: usize) -> serde_json::Value {
    let recipients = (0..n).map(|i| json!({"email": format!("user{i}@bulk.example"), "vars": {"name": "x"}})).collect();
    common::campaign_body("backlog", recipients)
}

async fn sent_of(stack: &common::Stack) -> u64 {
    common::counts(&stack.campaign("backlog").await)["sent"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_mail_overtakes_a_bulk_backlog_and_leaves_bulk_its_share() {
    let stack = common::start(LIMITS, 1).await;
    let (status, body) = stack.call("POST", "/v1/campaigns", Some(bulk_campaign(3000))).await;
    assert_eq!(status, 201, "{body}");
    // Let the backlog build: at 100/s the campaign needs half a minute.
    sluice_testkit::wait_for("bulk sending", Duration::from_secs(10), || async {
        (sent_of(&stack).await >= 50).then_some(())
    })
    .await;

    let accepted = Instant::now();
    let (status, msg) = stack
        .call(
            "POST",
            "/v1/messages",
            Some(json!({"from": "a@shop.example", "to": "reset@bulk.example", "subject": "s", "text": "t"})),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    stack.wait_message(msg["id"].as_str().unwrap(), "sent", Duration::from_secs(5)).await;
    let took = accepted.elapsed();
    let backlog = stack.campaign("backlog").await;
    let c = common::counts(&backlog);
    assert!(took < Duration::from_secs(1), "message took {took:?} behind the backlog");
    assert!(c["queued"] + c["staged"] > 2000, "backlog still deep when the message went: {backlog}");

    // A flood of 60 messages: while bulk waits, they get the reserved 20% (20/s), bulk the rest.
    let bulk_before = sent_of(&stack).await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..60 {
        let body = json!({"from": "a@shop.example", "to": format!("tx{i}@bulk.example"), "subject": "s", "text": "t"});
        let (status, m) = stack.call("POST", "/v1/messages", Some(body)).await;
        assert_eq!(status, 202, "{m}");
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        stack.wait_message(id, "sent", Duration::from_secs(15)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bulk = (sent_of(&stack).await - bulk_before) as f64;
    eprintln!(
        "one message behind the backlog: {took:?}; 60 messages in {elapsed:.2}s; bulk meanwhile {:.0}/s",
        bulk / elapsed
    );
    // 60 messages at ~20/s plus the reserve: about 3 s, never the whole rate.
    assert!(elapsed > 1.5, "60 messages in {elapsed:.2}s: more than the reserved share while bulk waited");
    assert!(bulk / elapsed > 40.0, "bulk got {bulk} in {elapsed:.2}s while messages flowed: starved");

    let (status, _) = stack.call("POST", "/v1/campaigns/backlog/cancel", None).await;
    assert_eq!(status, 200);
}
