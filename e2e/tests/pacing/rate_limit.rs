//! The token bucket holds for the whole cluster: one domain limited to 50/s receives 1,000
//! messages in 20 s ± 10% with 3 workers running (burst 50, then 950 at 50/s = 19 s).

use crate::common;

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_per_second_across_three_workers() {
    let stack = common::start(
        r#"
[limits.default]
rate = "10000/s"
burst = 10000

[limits.domains."slow.example"]
rate = "50/s"
burst = 50
"#,
        3,
    )
    .await;
    let recipients: Vec<_> = (0..1000).map(|i| serde_json::json!({"email": format!("u{i}@slow.example")})).collect();
    let mut body = common::campaign_body("rated", recipients);
    body["subject"] = "Hello".into();
    body["html"] = "<p>Hello</p>".into();
    body["text"] = "Hello".into();
    let started = Instant::now();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");

    let mut first_half = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.sink.state.accepted() < 1000 {
        assert!(
            Instant::now() < deadline,
            "only {} delivered after 60 s\n{}",
            stack.sink.state.accepted(),
            stack.logs()
        );
        if first_half.is_none() && stack.sink.state.accepted() >= 500 {
            first_half = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!((18.0..=22.0).contains(&elapsed), "1,000 messages at 50/s took {elapsed:.2} s (want 20 s ± 10%)");
    // The rate is steady, not bursty: half the messages arrive around the halfway mark.
    let half = first_half.unwrap().as_secs_f64();
    assert!((8.0..=11.0).contains(&half), "500th message after {half:.2} s");
    stack.wait_status("rated", "completed", Duration::from_secs(10)).await;
    assert_eq!(stack.sink.state.delivered.lock().unwrap().len(), 1000);
}
