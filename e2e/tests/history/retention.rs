//! Retention of what used to live forever: a draft or a paused campaign nobody touches for
//! `campaigns.idle_expiry` is cancelled (then expires like any finished campaign), while one
//! still being given recipients stays; unmatched inbound reports older than
//! `inbound.unmatched_retention` are dropped; dead letters are capped by count
//! (`scheduler.dead_letters_max`) and age (`scheduler.dead_letter_retention`).

use std::time::Duration;

use serde_json::json;
use sluice_testkit::wait_for;

use super::common;

const CONFIG: &str = r#"
[campaigns]
idle_expiry = "2s"

[inbound]
unmatched_retention = "1s"

[scheduler]
consumer_expiry = "2s"
dead_letters_max = 3
dead_letter_retention = "10m"

[limits.domains."slow.example"]
rate = "1/h"
burst = 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_drafts_and_paused_campaigns_are_cancelled() {
    let stack = common::start(CONFIG, 1).await;
    let draft = |id: &str| {
        let mut body = common::campaign_body(id, vec![json!({"email": "a@d0.example", "vars": {"name": "A"}})]);
        body["start"] = false.into();
        body
    };
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(draft("forgotten"))).await.0, 201);
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(draft("in-progress"))).await.0, 201);
    let slow = vec![
        json!({"email": "one@slow.example", "vars": {"name": "1"}}),
        json!({"email": "two@slow.example", "vars": {"name": "2"}}),
    ];
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(common::campaign_body("held", slow))).await.0, 201);
    assert_eq!(stack.call("POST", "/v1/campaigns/held/pause", None).await.0, 200);
    let busy = common::campaign_body("sent", common::recipients(5, 1, |i| format!("s{i}")));
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(busy)).await.0, 201);

    // "in-progress" is given a recipient every 400 ms while the others sit untouched.
    let mut tick = tokio::time::interval(Duration::from_millis(400));
    let start = tokio::time::Instant::now();
    let mut forgotten_cancelled = false;
    for i in 0..40 {
        tick.tick().await;
        let line = format!("{{\"email\":\"u{i}@d1.example\",\"vars\":{{\"name\":\"U\"}}}}\n");
        let (status, reply) = stack.post_raw("/v1/campaigns/in-progress/recipients", line).await;
        assert_eq!(status, 200, "{reply}");
        let forgotten = stack.campaign("forgotten").await;
        let held = stack.campaign("held").await;
        if forgotten["status"] == "cancelled" && held["status"] == "cancelled" {
            forgotten_cancelled = true;
            break;
        }
    }
    assert!(forgotten_cancelled, "the untouched draft and paused campaign were not cancelled\n{}", stack.logs());
    assert!(start.elapsed() >= Duration::from_secs(2), "not before idle_expiry");
    assert_eq!(stack.campaign("in-progress").await["status"], "draft", "a draft being filled is touched");
    assert_eq!(stack.wait_status("sent", "completed", Duration::from_secs(20)).await["status"], "completed");
    assert!(stack.logs().contains("campaign untouched for campaigns.idle_expiry: cancelled"));
    // Once left alone, it goes too.
    stack.wait_status("in-progress", "cancelled", Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_reports_older_than_their_retention_are_dropped() {
    let stack = common::start(CONFIG, 0).await;
    let report = |n: usize| format!("From: a@elsewhere.example\r\nSubject: report {n}\r\n\r\nnothing we sent\r\n");
    assert_eq!(stack.post_raw("/v1/inbound", report(0)).await.0, 202);
    let first: Vec<(String, std::collections::HashMap<String, String>)> =
        redis::cmd("XRANGE").arg("sluice:inbound:unmatched").arg("-").arg("+").query(&mut stack.redis.conn()).unwrap();
    let first = first[0].0.clone();
    let mut n = 0;
    wait_for("the first report to age out", Duration::from_secs(20), || {
        n += 1;
        let body = report(n);
        let stack = &stack;
        let first = first.clone();
        async move {
            assert_eq!(stack.post_raw("/v1/inbound", body).await.0, 202);
            let ids: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
                .arg("sluice:inbound:unmatched")
                .arg("-")
                .arg("+")
                .query(&mut stack.redis.conn())
                .unwrap();
            (ids.first().is_some_and(|(id, _)| *id != first) && !ids.is_empty()).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_capped_by_count_and_age() {
    let stack = common::start(CONFIG, 0).await;
    // Dead letters as workers write them: two from an hour ago and two fresh ones; the old go
    // (age). Then three more fresh ones: the oldest fresh ones go (count).
    let mut conn = stack.redis.conn();
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let fields = |n: usize| {
        let n = n.to_string();
        vec![
            ("c", "news".to_string()),
            ("i", n.clone()),
            ("r", format!("r{n}@d0.example")),
            ("domain", "d0.example".into()),
            ("deliveries", "3".into()),
        ]
    };
    for (k, id) in [format!("{hour_ago}-0"), format!("{hour_ago}-1")].iter().enumerate() {
        let _: String = redis::cmd("XADD").arg("sluice:dead-letters").arg(id).arg(fields(k)).query(&mut conn).unwrap();
    }
    let add = |conn: &mut sluice_testkit::TestConn, k: usize| -> String {
        redis::cmd("XADD").arg("sluice:dead-letters").arg("*").arg(fields(k)).query(conn).unwrap()
    };
    let mut fresh = vec![add(&mut conn, 2), add(&mut conn, 3)];
    let ids = || async {
        let ids: Vec<(String, std::collections::HashMap<String, String>)> =
            redis::cmd("XRANGE").arg("sluice:dead-letters").arg("-").arg("+").query(&mut stack.redis.conn()).unwrap();
        ids.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    let kept = wait_for("dead letters past their age to go", Duration::from_secs(30), || async {
        let now = ids().await;
        (now.len() == 2).then_some(now)
    })
    .await;
    assert_eq!(kept, fresh, "only the old ones went");
    for k in 4..7 {
        fresh.push(add(&mut conn, k));
    }
    let kept = wait_for("dead letters past the cap to go", Duration::from_secs(30), || async {
        let now = ids().await;
        (now.len() <= 3).then_some(now)
    })
    .await;
    assert_eq!(kept, fresh[2..], "the newest three stay");
    let (status, listed) = stack.call("GET", "/v1/dead-letters", None).await;
    assert_eq!(status, 200, "{listed}");
}
