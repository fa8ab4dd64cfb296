//! Pause, resume, cancel and idempotent replay, through the real binaries: nobody is sent
//! twice, pause stops sending within about a second, cancel drops what was not yet sent.

use crate::common;

use std::time::Duration;

use common::Stack;

const LIMITED: &str = r#"
[limits.default]
rate = "10000/s"
burst = 10000

[limits.domains."paced.example"]
rate = "200/s"
burst = 20

[retry]
schedule = ["1s"]
"#;

fn paced(id: &str, n: usize) -> serde_json::Value {
    let recipients =
        (0..n).map(|i| serde_json::json!({"email": format!("u{i}@paced.example"), "vars": {"name": i}})).collect();
    common::campaign_body(id, recipients)
}

fn assert_exactly_once(stack: &Stack, n: usize) {
    let (lost, dups) = stack.losses_and_duplicates((0..n).map(|i| format!("u{i}@paced.example")));
    assert!(lost.is_empty() && dups == 0, "never delivered: {lost:?}; extra copies: {dups}");
}

/// Waits (up to 1.5 s: "within about a second") until the sink's count holds still for
/// 300 ms, the batches in flight when `what` landed being done; returns that count.
async fn sending_stops(stack: &common::Stack, what: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    let mut last = stack.sink.state.accepted();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = stack.sink.state.accepted();
        if now == last {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "messages kept flowing 1.5 s after {what}\n{}", stack.logs());
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_sending_and_resume_sends_nobody_twice() {
    let stack = common::start(LIMITED, 2).await;
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(paced("pr", 2_000))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_accepted(300).await;

    let (status, reply) = stack.call("POST", "/v1/campaigns/pr/pause", None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("paused")), "{reply}");
    // Within about a second nothing more goes out; then nothing for two more seconds.
    let at_pause = sending_stops(&stack, "the pause").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.sink.state.accepted(), at_pause, "messages kept flowing while paused");
    assert!(at_pause < 2_000, "campaign finished before the pause took effect");
    let view = stack.campaign("pr").await;
    assert_eq!(view["status"], "paused");

    let (status, reply) = stack.call("POST", "/v1/campaigns/pr/resume", None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("running")), "{reply}");
    let done = stack.wait_status("pr", "completed", Duration::from_secs(60)).await;
    assert_exactly_once(&stack, 2_000);
    let c = common::counts(&done);
    assert_eq!((c["sent"], c["total"]), (2_000, 2_000), "{c:?}");
    assert_eq!(stack.sink.state.accepted(), 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_drops_everything_not_yet_sent() {
    let stack = common::start(LIMITED, 2).await;
    let (status, _) = stack.call("POST", "/v1/campaigns", Some(paced("cx", 2_000))).await;
    assert_eq!(status, 201);
    stack.wait_accepted(200).await;
    let (status, reply) = stack.call("POST", "/v1/campaigns/cx/cancel", None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("cancelled")), "{reply}");
    let at_cancel = sending_stops(&stack, "the cancel").await;
    // Jobs already in domain streams are dropped by the workers that meet them.
    let settled = sluice_testkit::wait_for("cancel to settle", Duration::from_secs(20), || async {
        let c = common::counts(&stack.campaign("cx").await);
        (c["queued"] == 0).then_some(c)
    })
    .await;
    assert_eq!(stack.sink.state.accepted(), at_cancel, "messages sent after cancel");
    assert_eq!(settled["sent"], at_cancel);
    assert_eq!(settled["sent"] + settled["cancelled"], 2_000, "{settled:?}");
    let (status, reply) = stack.call("POST", "/v1/campaigns/cx/resume", None).await;
    assert_eq!(status, 409, "a cancelled campaign cannot resume: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_id_twice_never_sends_twice() {
    let stack = common::start(LIMITED, 2).await;
    let body = paced("idem", 300);
    let (first, reply) = stack.call("POST", "/v1/campaigns", Some(body.clone())).await;
    assert_eq!(first, 201, "{reply}");
    let (again, reply) = stack.call("POST", "/v1/campaigns", Some(body.clone())).await;
    assert_eq!((again, reply["id"].as_str(), reply["accepted"].as_u64()), (200, Some("idem"), Some(300)), "{reply}");
    let mut changed = body.clone();
    changed["subject"] = "Another subject".into();
    let (conflict, reply) = stack.call("POST", "/v1/campaigns", Some(changed)).await;
    assert_eq!(conflict, 409, "{reply}");
    stack.wait_status("idem", "completed", Duration::from_secs(30)).await;
    // A replay after completion is still a replay.
    let (late, _) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(late, 200);
    // It queued nothing: every recipient is still counted once, as sent.
    let c = common::counts(&stack.campaign("idem").await);
    assert_eq!((c["total"], c["sent"], c["queued"], c["staged"]), (300, 300, 0, 0), "{c:?}");
    assert_exactly_once(&stack, 300);
    assert_eq!(stack.sink.state.accepted(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_intake_stream_works_like_the_api() {
    let stack = common::start(LIMITED, 1).await;
    let mut conn = stack.redis.conn();
    let good = paced("from-stream", 50).to_string();
    let _: String =
        redis::cmd("XADD").arg("sluice:intake").arg("*").arg("campaign").arg(&good).query(&mut conn).unwrap();
    // Added twice (an at-least-once producer): still one campaign, one copy each.
    let _: String =
        redis::cmd("XADD").arg("sluice:intake").arg("*").arg("campaign").arg(&good).query(&mut conn).unwrap();
    let bad =
        serde_json::json!({"id": "bad-one", "from": {"email": "x@y.example"}, "html": "<p>no subject</p>"}).to_string();
    let bad_entry: String =
        redis::cmd("XADD").arg("sluice:intake").arg("*").arg("campaign").arg(&bad).query(&mut conn).unwrap();

    stack.wait_status("from-stream", "completed", Duration::from_secs(30)).await;
    assert_exactly_once(&stack, 50);
    let errors = sluice_testkit::wait_for("intake error record", Duration::from_secs(10), || {
        let mut conn = stack.redis.conn();
        async move {
            let e: Vec<(String, Vec<(String, String)>)> =
                redis::cmd("XRANGE").arg("sluice:intake:errors").arg("-").arg("+").query(&mut conn).unwrap();
            (!e.is_empty()).then_some(e)
        }
    })
    .await;
    let fields: std::collections::HashMap<_, _> = errors[0].1.iter().cloned().collect();
    assert_eq!(fields["entry"], bad_entry);
    assert_eq!(fields["field"], "subject");
    assert!(fields["error"].contains("missing field"), "{fields:?}");
    let (status, _) = stack.call("GET", "/v1/campaigns/bad-one", None).await;
    assert_eq!(status, 404, "a rejected campaign enqueues nothing");
    let pending: (u64,) = redis::cmd("XPENDING")
        .arg("sluice:intake")
        .arg("schedulers")
        .query(&mut conn)
        .map(|v: Vec<redis::Value>| (redis::from_redis_value_ref(&v[0]).unwrap(),))
        .unwrap();
    assert_eq!(pending.0, 0, "every intake entry acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_at_holds_the_campaign_until_its_time() {
    let stack = common::start(LIMITED, 1).await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(2500);
    let mut body = paced("later", 20);
    body["send_at"] = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!((status, reply["status"].as_str()), (201, Some("scheduled")), "{reply}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stack.sink.state.accepted(), 0, "sent before send_at");
    assert_eq!(stack.campaign("later").await["status"], "scheduled");
    stack.wait_status("later", "completed", Duration::from_secs(20)).await;
    let first = stack.sink.state.accepted();
    assert_eq!(first, 20);
    assert!(chrono::Utc::now() >= at);
    assert_exactly_once(&stack, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_paused_campaign_fail_once_past_max_age() {
    let config = r#"
[limits.default]
rate = "10000/s"
burst = 10000

[limits.domains."paced.example"]
rate = "100/s"
burst = 10

[retry]
schedule = ["1s"]
max_age = "3s"
"#;
    let stack = common::start(config, 1).await;
    let (status, _) = stack.call("POST", "/v1/campaigns", Some(paced("old", 1_000))).await;
    assert_eq!(status, 201);
    stack.wait_accepted(50).await;
    stack.call("POST", "/v1/campaigns/old/pause", None).await;
    // Nothing is sent while paused, and nothing waits past max age either.
    let c = sluice_testkit::wait_for("waiting jobs to fail by max age", Duration::from_secs(30), || async {
        let c = common::counts(&stack.campaign("old").await);
        (c["queued"] + c["deferred"] == 0).then_some(c)
    })
    .await;
    assert_eq!(c["sent"] + c["failed"], 1_000, "{c:?}");
    assert!(c["failed"] > 0, "{c:?}");
    assert_eq!(stack.sink.state.accepted(), c["sent"]);
    assert_eq!(stack.campaign("old").await["status"], "paused");
    let (status, reply) = stack.call("POST", "/v1/campaigns/old/resume", None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("completed")), "{reply}");
}
