//! Crash safety basics through the real binaries: SIGTERM drains and exits 0, a killed
//! worker's pending entries are reclaimed by another, and losing Redis loses no message.

use crate::common;

use std::time::Duration;

use common::Stack;
use sluice_testkit::{RedisServer, free_port};

const PACED: &str = r#"
[limits.default]
rate = "10000/s"
burst = 10000

[limits.domains."paced.example"]
rate = "300/s"
burst = 30

[worker]
batch = 50
reclaim_idle = "2s"
drain_timeout = "10s"

[retry]
schedule = ["1s"]
"#;

async fn post(stack: &Stack, id: &str, n: usize) {
    let recipients =
        (0..n).map(|i| serde_json::json!({"email": format!("u{i}@paced.example"), "vars": {"name": i}})).collect();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body(id, recipients))).await;
    assert_eq!(status, 201, "{reply}");
}

fn paced(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("u{i}@paced.example"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_sends_and_exits_zero() {
    let mut stack = common::start(PACED, 1).await;
    post(&stack, "drain", 1_500).await;
    stack.wait_accepted(200).await;
    let status = stack.workers[0].terminate();
    assert!(status.success(), "worker exit status {status:?}\n{}", stack.logs());
    let log = stack.workers[0].log_text();
    assert!(log.contains("draining"), "{log}");
    // A fresh worker finishes the campaign; the drained one lost and duplicated nothing.
    stack.add_worker();
    stack.wait_status("drain", "completed", Duration::from_secs(60)).await;
    let (lost, dups) = stack.losses_and_duplicates(paced(1_500));
    assert!(lost.is_empty(), "lost {lost:?}");
    assert_eq!(dups, 0, "SIGTERM must not duplicate");
}

/// With Redis gone (or one master of a cluster, so the cluster is down), SIGTERM still ends
/// the worker within
/// `worker.drain_timeout` plus the per-request response timeout: no Redis call may hang it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_redis_gone_still_exits_in_time() {
    let mut stack = common::start(PACED, 1).await;
    post(&stack, "gone", 1_500).await;
    stack.wait_accepted(200).await;
    stack.redis.stop();
    // SIGTERM once the worker is meeting the outage (its Redis error counter moved).
    sluice_testkit::wait_for("the worker to meet Redis gone", Duration::from_secs(20), || async {
        let errors: f64 = stack
            .scrape(1)
            .await
            .lines()
            .filter(|l| l.starts_with("sluice_redis_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (errors > 0.0).then_some(())
    })
    .await;
    stack.workers[0].signal_term();
    let status = stack.workers[0].wait_exit(Duration::from_secs(40));
    assert!(status.is_some(), "the worker was still running 40 s after SIGTERM\n{}", stack.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_entries_are_reclaimed_by_another() {
    let mut stack = common::start(PACED, 1).await;
    post(&stack, "reclaim", 1_500).await;
    stack.wait_accepted(300).await;
    stack.workers[0].kill();
    let pending: Vec<redis::Value> =
        redis::cmd("XPENDING").arg("sluice:{d:paced.example}:q").arg("workers").query(&mut stack.redis.conn()).unwrap();
    let pending_at_kill: u64 = redis::from_redis_value_ref(&pending[0]).unwrap();
    stack.add_worker();
    let done = stack.wait_status("reclaim", "completed", Duration::from_secs(60)).await;
    let (lost, dups) = stack.losses_and_duplicates(paced(1_500));
    assert!(lost.is_empty(), "lost {lost:?}\n{}", stack.logs());
    // Only sends accepted by the relay but not yet recorded at the kill can repeat: at most
    // the jobs one worker holds (batch 50 per visit, a few visits in flight).
    assert!(dups <= 200, "{dups} duplicates");
    let c = common::counts(&done);
    assert_eq!((c["sent"], c["total"]), (1_500, 1_500), "{c:?}");
    if pending_at_kill > 0 {
        assert!(stack.workers[1].log_text().contains("took over entries"), "{}", stack.logs());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_mid_campaign_loses_no_message() {
    let redis = RedisServer::start_on(free_port(), true);
    let mut stack = common::start_on(redis, PACED, 2, false).await;
    post(&stack, "redis-down", 1_500).await;
    stack.wait_accepted(300).await;
    stack.redis.restart();
    let done = stack.wait_status("redis-down", "completed", Duration::from_secs(90)).await;
    let (lost, dups) = stack.losses_and_duplicates(paced(1_500));
    assert!(lost.is_empty(), "lost {} e.g. {:?}\n{}", lost.len(), &lost[..lost.len().min(5)], stack.logs());
    let c = common::counts(&done);
    assert_eq!(c["total"], 1_500);
    assert_eq!(c["sent"] + c["failed"] + c["bounced"], 1_500, "{c:?}");
    println!("duplicates after a Redis restart: {dups}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_worker_is_not_ready_and_finishes_its_sends() {
    let mut stack = common::start(PACED, 1).await;
    let recipients =
        (0..5).map(|i| serde_json::json!({"email": format!("slow-{i}@paced.example"), "vars": {"name": i}})).collect();
    let (status, _) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("slow", recipients))).await;
    assert_eq!(status, 201);
    sluice_testkit::wait_for("slow sends in flight", Duration::from_secs(10), || async {
        (stack.sink.state.attempts_for("slow-0@paced.example") > 0).then_some(())
    })
    .await;
    let ready = stack.metrics[1].replace("/metrics", "/readyz");
    let http = reqwest::Client::new();
    assert_eq!(http.get(&ready).send().await.unwrap().status().as_u16(), 200);
    stack.workers[0].signal_term();
    let status = sluice_testkit::wait_for("readyz to say draining", Duration::from_secs(5), || async {
        let r = http.get(&ready).send().await.ok()?;
        (r.status().as_u16() == 503).then_some(())?;
        Some(r.text().await.unwrap())
    })
    .await;
    assert_eq!(status, "draining");
    let exit = stack.workers[0].wait_exit(Duration::from_secs(15)).expect("the worker exits after draining");
    assert!(exit.success(), "{exit:?}");
    assert_eq!(stack.sink.state.accepted(), 5, "in-flight sends finished before the exit");
    let c = common::counts(&stack.campaign("slow").await);
    assert_eq!(c["sent"], 5, "and their outcomes were recorded: {c:?}");
}
