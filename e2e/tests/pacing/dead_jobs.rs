//! A cancelled or paused campaign's jobs cost their destination nothing: the tokens a worker
//! took for entries it then did not send go back to the bucket at once, so the entries drain
//! at read speed and the next campaign to that destination is not held up behind them.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One destination at 20/s: 900 dead jobs would hold it for 45 s at that rate.
const ONE_DOMAIN: &str = r#"
[limits.default]
rate = "10000/s"
burst = 10000

[limits.domains."one.example"]
rate = "20/s"
burst = 20
"#;

fn to_one_domain(id: &str, prefix: &str, n: usize) -> Value {
    let recipients =
        (0..n).map(|i| json!({"email": format!("{prefix}{i}@one.example"), "vars": {"name": "N"}})).collect();
    common::campaign_body(id, recipients)
}

/// Starts campaign `first` of 1,000 at one.example, applies `action` (cancel or pause) once
/// `sent` went out, then creates `second` of `n`: how long `second` took to complete.
async fn second_behind(stack: &common::Stack, sent: u64, action: &str, expected: &str, n: usize) -> Duration {
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(to_one_domain("first", "a", 1_000))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_accepted(sent).await;
    let (status, reply) = stack.call("POST", &format!("/v1/campaigns/first/{action}"), None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some(expected)), "{reply}");
    let created = Instant::now();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(to_one_domain("second", "b", n))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("second", "completed", Duration::from_secs(120)).await;
    let took = created.elapsed();
    println!("second campaign completed {took:?} after its creation, behind a {expected} one");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_campaign_does_not_hold_up_the_next_one() {
    let stack = common::start(ONE_DOMAIN, 2).await;
    let took = second_behind(&stack, 100, "cancel", "cancelled", 5).await;
    // Before: 46 s (the ~900 dead jobs drained at 20/s).
    // Measured 0.6-1.7 s here (one node and clusters); the bound leaves room for a loaded CI.
    assert!(took < Duration::from_secs(5), "the second campaign took {took:?} behind the cancelled one");
    let c = common::counts(&stack.campaign("first").await);
    assert_eq!(c["queued"], 0, "{c:?}");
    assert_eq!(c["sent"] + c["cancelled"], 1_000, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_campaign_holds_no_place_in_line_and_resumes_whole() {
    let stack = common::start(&ONE_DOMAIN.replace("\"20/s\"", "\"50/s\""), 2).await;
    let took = second_behind(&stack, 50, "pause", "paused", 20).await;
    // Before: the ~950 paused jobs were parked one token each, at 50/s (about 19 s).
    assert!(took < Duration::from_secs(5), "the second campaign took {took:?} behind the paused one");

    let (status, reply) = stack.call("POST", "/v1/campaigns/first/resume", None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("running")), "{reply}");
    let done = stack.wait_status("first", "completed", Duration::from_secs(60)).await;
    let c = common::counts(&done);
    assert_eq!((c["sent"], c["total"]), (1_000, 1_000), "{c:?}");
    let addresses = (0..1_000).map(|i| format!("a{i}@one.example")).chain((0..20).map(|i| format!("b{i}@one.example")));
    let (lost, dups) = stack.losses_and_duplicates(addresses);
    assert!(lost.is_empty() && dups == 0, "never delivered: {lost:?}; extra copies: {dups}");
}
