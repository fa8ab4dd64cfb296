//! A long tail of 10,000 destination domains, one of them throttled hard: every other domain
//! is served promptly, and the throttled one never holds them up.

use crate::common;

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_domain_never_delays_the_others() {
    let stack = common::start(
        r#"
[limits.default]
rate = "1000/s"
burst = 1000

[limits.domains."throttled.example"]
rate = "2/s"
burst = 1
"#,
        2,
    )
    .await;
    // 500 recipients at the throttled domain first, then one at each of 9,999 other domains.
    // 500 recipients at the throttled domain inline, then one at each of 9,999 other domains
    // uploaded as NDJSON to the draft, then started.
    let recipients: Vec<_> =
        (0..500).map(|i| serde_json::json!({"email": format!("t{i}@throttled.example")})).collect();
    let mut body = common::campaign_body("tail", recipients);
    body["subject"] = "Hello".into();
    body["html"] = "<p>Hello</p>".into();
    body["text"] = "Hello".into();
    body["start"] = false.into();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!((status, reply["status"].as_str()), (201, Some("draft")), "{reply}");
    let ndjson: String = (0..9_999).map(|i| format!("{{\"email\":\"u{i}@tail{i}.example\"}}\n")).collect();
    let (status, reply) = stack.post_raw("/v1/campaigns/tail/recipients", ndjson).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(9_999)), "{reply}");
    let started = Instant::now();
    let (status, reply) = stack.call("POST", "/v1/campaigns/tail/start", None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("running")), "{reply}");

    let others_done = |d: &std::collections::HashMap<String, u32>| d.keys().filter(|k| k.contains("@tail")).count();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let delivered = stack.sink.state.delivered.lock().unwrap().clone();
        if others_done(&delivered) == 9_999 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 9,999 tail domains served after 90 s\n{}",
            others_done(&delivered),
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = stack.sink.state.delivered.lock().unwrap().clone();
    let throttled = delivered.keys().filter(|k| k.contains("@throttled")).count();
    // The throttled domain got its rate and no more, while all 9,999 others were served.
    let allowed = 1.0 + 2.0 * elapsed + 1.0;
    assert!(
        (throttled as f64) <= allowed,
        "throttled domain got {throttled} in {elapsed:.1} s (limit allows {allowed:.0})"
    );
    assert!(delivered.values().all(|n| *n == 1), "someone got two copies");
    println!("9,999 tail domains served in {elapsed:.1} s; throttled domain: {throttled} messages meanwhile");
    let (status, c) = stack.call("POST", "/v1/campaigns/tail/cancel", None).await;
    assert_eq!(status, 200, "{c}");
}
