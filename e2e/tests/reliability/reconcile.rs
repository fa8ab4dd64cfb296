//! The reconcile duty through the real binaries: jobs a failover (or a lost second of AOF)
//! took away are put back once, with a `requeued` event each, and a job whose recipient is
//! already recorded is dropped; the campaign then completes with every recipient sent once.

use crate::common;

use std::{collections::HashMap, time::Duration};

use sluice_shared::{keys, lane::Lane};
use sluice_testkit::{TestRedis, smtp_sink::SmtpSink, wait_for};

const N: usize = 40;

fn address(i: usize) -> String {
    format!("u{i}@lost.example")
}

/// The campaign's entries in its destination stream: index -> entry id.
fn entries(stack: &common::Stack) -> HashMap<usize, String> {
    let stream = keys::lane_stream("lost.example", Lane::Bulk);
    let page: Vec<(String, HashMap<String, String>)> =
        redis::cmd("XRANGE").arg(&stream).arg("-").arg("+").query(&mut stack.redis.conn()).unwrap();
    page.into_iter().map(|(id, f)| (f["i"].parse().unwrap(), id)).collect()
}

fn run(stack: &common::Stack, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<redis::Value>(&mut stack.redis.conn()).unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_jobs_come_back_once_and_stale_ones_go() {
    let env = [("SLUICE__CAMPAIGNS__RECONCILE_AFTER", "1s")];
    let sink = SmtpSink::start(false).await;
    let mut stack = common::start_roles(TestRedis::start(), sink, "", 0, &env, &[]).await;
    // Vars too: a job put back is rebuilt from the staged list, vars and all.
    let recipients = (0..N).map(|i| serde_json::json!({"email": address(i), "vars": {"name": i}})).collect();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("lossy", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let pushed = wait_for("every job pushed", Duration::from_secs(20), || async {
        let e = entries(&stack);
        (e.len() == N).then_some(e)
    })
    .await;
    // A transactional message too (its own lane and due index).
    let message = serde_json::json!({"from": "account@shop.example", "to": "m@lost.example",
        "subject": "Code", "text": "Your code"});
    let (status, _, accepted) = stack.call_with("POST", "/v1/messages", Some(message), &[]).await;
    assert_eq!(status, 202, "{accepted}");
    let message_id = accepted["id"].as_str().unwrap().to_string();
    let priority = keys::lane_stream("lost.example", Lane::Priority);
    let message_entry = wait_for("the message's job", Duration::from_secs(20), || async {
        let page: Vec<(String, HashMap<String, String>)> =
            redis::cmd("XRANGE").arg(&priority).arg("-").arg("+").query(&mut stack.redis.conn()).unwrap();
        page.first().map(|(id, _)| id.clone())
    })
    .await;
    // No worker runs yet. Take away what a failover can take:
    let taken_at_ms = chrono::Utc::now().timestamp_millis() as u64;
    run(&stack, &["XDEL", &priority, &message_entry]);
    let stream = keys::lane_stream("lost.example", Lane::Bulk);
    let (state, counts) = (keys::campaign_state("lossy"), keys::campaign_counts("lossy"));
    // 0-4: pushed jobs (the stream's node lost them);
    for i in 0..5 {
        run(&stack, &["XDEL", &stream, &pushed[&i]]);
    }
    // 5-7: claimed by a worker, whose entries went (the claim's node kept its mark);
    for i in 5..8 {
        run(&stack, &["HSET", &state, &i.to_string(), &format!("q0:{}", pushed[&i])]);
        run(&stack, &["XDEL", &stream, &pushed[&i]]);
    }
    // 8-9: deferred, whose retries went;
    for i in 8..10 {
        run(&stack, &["HSET", &state, &i.to_string(), "d0"]);
        run(&stack, &["HINCRBY", &counts, "queued", "-1"]);
        run(&stack, &["HINCRBY", &counts, "deferred", "1"]);
        run(&stack, &["XDEL", &stream, &pushed[&i]]);
    }
    // 10: recorded sent while its job stayed in the stream (a replay of a lost ack).
    run(&stack, &["HSET", &state, "10", "s"]);
    run(&stack, &["HINCRBY", &counts, "queued", "-1"]);
    run(&stack, &["HINCRBY", &counts, "sent", "1"]);

    let repaired = |text: &str, action: &str| {
        common::sample(text, &format!("sluice_reconciled_jobs_total{{action=\"{action}\"}}")).unwrap_or(0.0)
    };
    wait_for("the duty to repair the campaign", Duration::from_secs(30), || async {
        let text = stack.scrape(0).await;
        (repaired(&text, "requeued") >= 11.0 && repaired(&text, "dropped") >= 1.0).then_some(())
    })
    .await;
    // Put back into the retry set, then pushed by the retry promotion: wait for the streams.
    let back = wait_for("the jobs put back in their stream", Duration::from_secs(20), || async {
        let back = entries(&stack);
        (0..N).filter(|i| *i != 10).all(|i| back.contains_key(&i)).then_some(back)
    })
    .await;
    assert!(!back.contains_key(&10), "the stale job was dropped: {back:?}");
    // A job put back gets a fresh max age: queued again when it was rebuilt.
    let stream_page: Vec<(String, HashMap<String, String>)> =
        redis::cmd("XRANGE").arg(&stream).arg("-").arg("+").query(&mut stack.redis.conn()).unwrap();
    for (_, fields) in stream_page.iter().filter(|(_, f)| f["i"].parse::<usize>().unwrap() < 10) {
        let queued_at: u64 = fields["t"].parse().unwrap();
        assert!(queued_at >= taken_at_ms, "a fresh max age: {fields:?} (lost at {taken_at_ms})");
    }
    let log = stack.scheduler.log_text();
    assert!(log.contains("lost jobs put back"), "{log}");

    stack.add_worker();
    let done = stack.wait_status("lossy", "completed", Duration::from_secs(60)).await;
    let counts = common::counts(&done);
    assert_eq!((counts["sent"], counts["queued"], counts["deferred"]), (N as u64, 0, 0), "{done}");
    let (lost, dups) = stack.losses_and_duplicates((0..N).filter(|i| *i != 10).map(address));
    assert!(lost.is_empty(), "never delivered: {lost:?}");
    assert_eq!(dups, 0, "each lost job came back once");
    assert_eq!(stack.sink.state.delivered_to(&address(10)), 0, "the dropped job was not sent");
    stack.wait_message(&message_id, "sent", Duration::from_secs(30)).await;
    assert_eq!(stack.sink.state.delivered_to("m@lost.example"), 1, "the message came back once");
    // One `requeued` event per job put back, through the events API.
    let (_, page) = stack.call("GET", "/v1/events?campaign=lossy&type=requeued&limit=100", None).await;
    let events = page["events"].as_array().unwrap();
    let mut indexes: Vec<&str> = events.iter().map(|e| e["recipient"].as_str().unwrap()).collect();
    indexes.sort();
    let mut expected: Vec<String> = (0..10).map(address).collect();
    expected.sort();
    assert_eq!(indexes, expected, "{page}");
    assert!(events.iter().all(|e| e["data"]["reason"] == "reconciled"), "{page}");
    let text = stack.scrape(0).await;
    assert_eq!((repaired(&text, "requeued"), repaired(&text, "dropped")), (11.0, 1.0), "repaired once");
}

/// A single Redis that lost its last writes (here: restarted from a snapshot taken while the
/// campaign ran, losing every write after it, as a lost second of AOF does) still completes
/// the campaign with every recipient delivered; the sends after the snapshot may repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_last_writes_still_completes_the_campaign() {
    let env = [("SLUICE__CAMPAIGNS__RECONCILE_AFTER", "2s")];
    let paced = "[limits.default]\nrate = \"400/s\"\nburst = 20\n\n[worker]\nbatch = 20\nreclaim_idle = \"2s\"\n";
    let sink = SmtpSink::start(false).await;
    let redis = sluice_testkit::RedisServer::start();
    let mut stack = common::start_roles(redis, sink, paced, 2, &env, &[]).await;
    let n = 1_500;
    let recipients = (0..n).map(|i| serde_json::json!({"email": address(i), "vars": {"name": i}})).collect();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("rewound", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_accepted(300).await;
    run(&stack, &["SAVE"]);
    let at_snapshot = stack.sink.state.accepted();
    wait_for("sends after the snapshot", Duration::from_secs(20), || async {
        (stack.sink.state.accepted() >= at_snapshot + 200).then_some(())
    })
    .await;
    let after = stack.sink.state.accepted() - at_snapshot;
    stack.redis.restart();
    let done = stack.wait_status("rewound", "completed", Duration::from_secs(90)).await;
    let counts = common::counts(&done);
    assert_eq!(counts["sent"], n as u64, "each recipient counted once: {done}");
    let (lost, dups) = stack.losses_and_duplicates((0..n).map(address));
    assert!(lost.is_empty(), "never delivered: {lost:?}\n{}", stack.logs());
    println!("rewound by {after}+ sends: {dups} duplicates");
}
