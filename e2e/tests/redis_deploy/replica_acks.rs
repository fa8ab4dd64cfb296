//! Hand-offs wait for a replica: with a master and a replica (under Sentinel), an outcome is
//! on the replica before its job is acked, so a failover cannot lose an outcome whose job is
//! gone. Shown by freezing the replica (SIGSTOP): the messages are sent, and their jobs stay
//! pending past `redis.replica_ack_timeout`; the worker then retakes them, finds their
//! outcomes recorded (the master kept them) and acks them, and the campaign completes.

use crate::common;

use std::time::{Duration, Instant};

use sluice_testkit::{RedisSentinel, TestRedis, smtp_sink::SmtpSink, wait_for};

fn replica(stack: &common::Stack) -> &sluice_testkit::RedisServer {
    match &stack.redis {
        TestRedis::Sentinel(s) => &s.replica,
        _ => unreachable!("this test starts a Sentinel deployment"),
    }
}

fn waits(metrics: &str, step: &str, result: &str) -> f64 {
    let series = format!("sluice_redis_replica_waits_total{{step=\"{step}\",result=\"{result}\"}}");
    common::sample(metrics, &series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_the_replica_before_their_jobs_are_acked() {
    let redis = TestRedis::Sentinel(Box::new(RedisSentinel::start(false)));
    let timeout = [("SLUICE__REDIS__REPLICA_ACK_TIMEOUT", "2s")];
    let stack = common::start_roles(redis, SmtpSink::start(false).await, "", 1, &timeout, &timeout).await;
    let recipients = common::recipients(20, 2, |i| format!("a{i}"));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("steady", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("steady", "completed", Duration::from_secs(30)).await;
    // The campaign completes when its outcomes are recorded; the ack that follows may trail.
    let worker = wait_for("the ack step's replica wait", Duration::from_secs(10), || async {
        let worker = stack.scrape(1).await;
        (waits(&worker, "ack", "acked") >= 1.0).then_some(worker)
    })
    .await;
    assert!(waits(&worker, "record", "acked") >= 1.0, "{worker}");
    assert!(waits(&stack.scrape(0).await, "expand", "acked") >= 1.0);

    replica(&stack).freeze(true);
    let recipients = common::recipients(20, 2, |i| format!("b{i}"));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("stalled", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_accepted(40).await;
    let sent_at = Instant::now();
    assert!(stack.pending_jobs(2) > 0, "sent, but not acked while no replica confirms the outcomes");
    // Each unconfirmed step costs the 2 s timeout, and the retake waits for the lane's next
    // visit: on a loaded machine this took over 20 s once (the cluster suite beside it), and
    // over 45 s once (the single suite's parallel tests on a slower VM).
    wait_for("the acks after the timeout", Duration::from_secs(90), || async {
        (stack.pending_jobs(2) == 0).then_some(())
    })
    .await;
    assert!(sent_at.elapsed() >= Duration::from_millis(1500), "acked after {:?}", sent_at.elapsed());
    stack.wait_status("stalled", "completed", Duration::from_secs(30)).await;
    let worker = stack.scrape(1).await;
    assert!(waits(&worker, "record", "timed_out") >= 1.0, "{worker}");
    let retaken = common::sample(&worker, "sluice_reclaims_total").unwrap_or(0.0);
    assert!(retaken >= 1.0, "entries whose outcomes no replica confirmed are retaken, not acked:\n{worker}");
    replica(&stack).freeze(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_without_replicas_is_never_waited_on() {
    let stack = common::start_on(sluice_testkit::RedisServer::start(), "", 1, false).await;
    let recipients = common::recipients(20, 2, |i| format!("a{i}"));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("alone", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("alone", "completed", Duration::from_secs(30)).await;
    for process in [0, 1] {
        let metrics = stack.scrape(process).await;
        assert!(!metrics.contains("sluice_redis_replica_waits_total{"), "process {process} waited:\n{metrics}");
    }
}
