//! The scripts for jobs in flight: decide, record, hold, poison, and a dead letter's requeue.

use sluice_shared::{
    keys,
    model::{Entry, Job, OutcomeKind},
    redis::{
        replicas::ReplicaAcks,
        scripts::{
            campaign::{self, Requeue},
            jobs::{self, Counted, Decision, Outcome, Poisoned, Source},
        },
    },
};

use crate::Redis;

const DAY_MS: u64 = 86_400_000;

/// Replica waits off: these servers have no replica.
pub fn off() -> ReplicaAcks {
    ReplicaAcks::new(std::time::Duration::ZERO)
}

fn entry(id: &str, index: u64, attempt: u32) -> Entry {
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let job = Job {
        campaign: "c".into(),
        index,
        recipient: format!("r{index}@x.example"),
        vars: String::new(),
        attempt,
        queued_at_ms: now,
        parked: false,
    };
    Entry { id: id.into(), job }
}

#[tokio::test]
async fn decide_sends_current_jobs_once_and_parks_them_while_paused() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 2).await;
    let first = [entry("1-0", 0, 0)];
    let decided = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, &first).await.unwrap();
    assert_eq!(decided, [Decision::Send]);
    assert_eq!(redis.state("c", 0).await.as_deref(), Some("q0:1-0"), "in flight under its entry");
    let reclaimed = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, &first).await.unwrap();
    assert_eq!(reclaimed, [Decision::Send], "a reclaimed entry finds its own mark");
    let duplicate =
        jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, &[entry("1-9", 0, 0)]).await.unwrap();
    assert_eq!(duplicate, [Decision::Skip], "another copy of the same job");

    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "paused"]).await;
    let parked = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, &[entry("2-0", 1, 0)]).await.unwrap();
    assert_eq!(parked, [Decision::Parked]);
    let members: Vec<String> = redis.cmd(&["ZRANGE", &keys::campaign_retry("c"), "0", "-1"]).await;
    assert_eq!(members.len(), 1);
    assert!(serde_json::from_str::<Job>(&members[0]).unwrap().parked, "parked: {}", members[0]);

    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "running"]).await;
    let old = Entry { job: Job { queued_at_ms: 1, ..entry("3-0", 1, 0).job }, ..entry("3-0", 1, 0) };
    assert_eq!(
        jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, &[old]).await.unwrap(),
        [Decision::Expired]
    );
    assert_eq!(redis.state("c", 1).await.as_deref(), Some("f"));
}

#[tokio::test]
async fn record_counts_an_outcome_once_and_schedules_a_retry() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 2).await;
    let (sent, deferred) = (entry("1-0", 0, 0), entry("1-1", 1, 0));
    let both = [sent.clone(), deferred.clone()];
    jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, &both).await.unwrap();
    let outcome = |entry, kind| Outcome { entry, kind, retry_delay_ms: 60_000, detail_json: "{}".into() };
    let outcomes = [outcome(&sent, OutcomeKind::Sent), outcome(&deferred, OutcomeKind::Deferred)];
    let counted = jobs::record(&mut redis.conn, &off(), "c", (100, DAY_MS), &outcomes).await.unwrap().0;
    assert_eq!(counted, [Counted::Recorded, Counted::Recorded]);
    let again = jobs::record(&mut redis.conn, &off(), "c", (100, DAY_MS), &outcomes).await.unwrap().0;
    assert_eq!(again, [Counted::Stale, Counted::Stale], "a replay never counts twice");
    let c = redis.counts("c").await;
    assert_eq!((c["queued"], c["sent"], c["deferred"]), (0, 1, 1), "{c:?}");
    assert_eq!((redis.state("c", 0).await.as_deref(), redis.state("c", 1).await.as_deref()), (Some("s"), Some("d0")));
    let members: Vec<String> = redis.cmd(&["ZRANGE", &keys::campaign_retry("c"), "0", "-1"]).await;
    assert_eq!(serde_json::from_str::<Job>(&members[0]).unwrap().attempt, 1, "the retry is the next attempt");
    assert_eq!(redis.event_types("c").await, ["sent", "deferred"]);

    // A deferral whose retry would come after the max age fails now.
    let late = entry("2-0", 2, 0);
    let _: () = redis.cmd(&["HINCRBY", &keys::campaign_counts("c"), "queued", "1"]).await;
    jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, std::slice::from_ref(&late)).await.unwrap();
    let too_late = Outcome { retry_delay_ms: 2 * DAY_MS, ..outcome(&late, OutcomeKind::Deferred) };
    let counted = jobs::record(&mut redis.conn, &off(), "c", (100, DAY_MS), &[too_late]).await.unwrap().0;
    assert_eq!(counted, [Counted::FailedPastMaxAge]);
    assert_eq!(redis.state("c", 2).await.as_deref(), Some("f"));
}

#[tokio::test]
async fn an_outcome_whose_in_flight_mark_a_failover_lost_is_still_counted_once() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 3).await;
    let (first, retry, other) = (entry("1-0", 0, 0), entry("1-1", 1, 1), entry("1-2", 2, 0));
    // Decided on a master that died before its replica had the marks: index 0 has no state,
    // index 1 is still at its deferral; index 2 was taken over by another copy of its job.
    let _: () = redis.cmd(&["HSET", &keys::campaign_state("c"), "1", "d0", "2", "q0:9-9"]).await;
    let outcome = |entry| Outcome { entry, kind: OutcomeKind::Sent, retry_delay_ms: 60_000, detail_json: "{}".into() };
    let outcomes = [outcome(&first), outcome(&retry), outcome(&other)];
    let counted = jobs::record(&mut redis.conn, &off(), "c", (100, DAY_MS), &outcomes).await.unwrap().0;
    assert_eq!(counted, [Counted::Recorded, Counted::Recorded, Counted::Stale]);
    let again = jobs::record(&mut redis.conn, &off(), "c", (100, DAY_MS), &outcomes).await.unwrap().0;
    assert_eq!(again, [Counted::Stale, Counted::Stale, Counted::Stale], "a replay never counts twice");
    assert_eq!(redis.counts("c").await["sent"], 2);
    assert_eq!(redis.state("c", 2).await.as_deref(), Some("q0:9-9"), "the other copy's mark stands");
}

#[tokio::test]
async fn hold_puts_jobs_back_unsent_without_using_an_attempt() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 1).await;
    let held = entry("1-0", 0, 0);
    jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, std::slice::from_ref(&held)).await.unwrap();
    let (n, _) =
        jobs::hold(&mut redis.conn, &off(), "c", 100, 5_000, r#"{"reason":"warmup_cap"}"#, &[&held]).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(redis.state("c", 0).await, None, "as before the first attempt");
    let c = redis.counts("c").await;
    assert_eq!((c["queued"], c["deferred"]), (0, 1), "{c:?}");
    let score: f64 = redis.cmd(&["ZSCORE", &keys::campaign_retry("c"), &held.job.member()]).await;
    assert_eq!(score, 5_000.0);
    assert_eq!(
        jobs::hold(&mut redis.conn, &off(), "c", 100, 5_000, "{}", &[&held]).await.unwrap().0,
        0,
        "no longer in flight"
    );
}

#[tokio::test]
async fn a_poisoned_job_fails_and_a_requeue_gives_it_one_more_chance() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 1).await;
    let poisoned = entry("1-0", 0, 0);
    let marked =
        jobs::poison(&mut redis.conn, "c", 100, &[Poisoned { entry: &poisoned, deliveries: 6, dead_letter_id: "9-0" }])
            .await
            .unwrap();
    assert_eq!(marked, [true]);
    assert_eq!(redis.state("c", 0).await.as_deref(), Some("p0"));
    let c = redis.counts("c").await;
    assert_eq!((c["queued"], c["failed"]), (0, 1), "{c:?}");
    assert_eq!(redis.event_types("c").await, ["failed"]);
    let status: String = redis.cmd(&["HGET", &keys::campaign_meta("c"), "status"]).await;
    assert_eq!(status, "completed", "nothing else was left");

    let member = poisoned.job.member();
    let requeued = campaign::requeue(&mut redis.conn, "c", 0, 0, &member).await.unwrap();
    assert_eq!(requeued, Requeue::Requeued("running".into()), "a completed campaign runs again");
    let c = redis.counts("c").await;
    assert_eq!((c["failed"], c["deferred"]), (0, 1), "{c:?}");
    assert_eq!(campaign::requeue(&mut redis.conn, "c", 0, 0, &member).await.unwrap(), Requeue::NotPoisoned);
    assert_eq!(campaign::requeue(&mut redis.conn, "gone", 0, 0, &member).await.unwrap(), Requeue::Missing);
}

#[tokio::test]
async fn a_sweep_never_sends_and_parks_in_stream_order() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 3).await;
    // Later in the stream but with a smaller index: the stream's order is what counts.
    let swept = [entry("5-1", 9, 0), entry("5-2", 1, 0), entry("6-0", 5, 0)];
    let running = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Swept, &swept).await.unwrap();
    assert_eq!(running, [Decision::Leave; 3], "a running campaign's entries are left to the workers");
    assert_eq!(redis.state("c", 9).await, None, "nothing marked in flight");

    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "paused"]).await;
    let parked = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Swept, &swept).await.unwrap();
    assert_eq!(parked, [Decision::Parked; 3]);
    let members: Vec<String> = redis.cmd(&["ZRANGE", &keys::campaign_retry("c"), "0", "-1"]).await;
    let order: Vec<u64> = members.iter().map(|m| serde_json::from_str::<Job>(m).unwrap().index).collect();
    assert_eq!(order, [9, 1, 5], "parked in stream order");
    let again = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Swept, &swept).await.unwrap();
    assert_eq!(again, [Decision::Parked; 3], "parking twice (two sweepers) keeps one member each");
    let n: i64 = redis.cmd(&["ZCARD", &keys::campaign_retry("c")]).await;
    assert_eq!(n, 3);

    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "cancelled"]).await;
    let dropped = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Swept, &swept).await.unwrap();
    assert_eq!(dropped, [Decision::Dropped; 3]);
    let twice = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Swept, &swept).await.unwrap();
    assert_eq!(twice, [Decision::Skip; 3], "cancelled once");
    let c = redis.counts("c").await;
    assert_eq!((c["queued"], c["cancelled"]), (0, 3), "{c:?}");
    assert_eq!(redis.event_types("c").await, ["cancelled"; 3]);
}

#[tokio::test]
async fn a_campaign_that_completes_lets_its_staged_list_go() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 1).await;
    let _: () = redis.cmd(&["RPUSH", &keys::campaign_staged("c"), r#"{"r":"r0@x.example"}"#]).await;
    let sent = entry("1-0", 0, 0);
    jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, std::slice::from_ref(&sent)).await.unwrap();
    let kept: i64 = redis.cmd(&["EXISTS", &keys::campaign_staged("c")]).await;
    assert_eq!(kept, 1, "kept while the campaign runs");
    let outcome = Outcome { entry: &sent, kind: OutcomeKind::Sent, retry_delay_ms: 0, detail_json: "{}".into() };
    jobs::record(&mut redis.conn, &off(), "c", (100, DAY_MS), &[outcome]).await.unwrap();
    let status: String = redis.cmd(&["HGET", &keys::campaign_meta("c"), "status"]).await;
    assert_eq!(status, "completed");
    let kept: i64 = redis.cmd(&["EXISTS", &keys::campaign_staged("c")]).await;
    assert_eq!(kept, 0, "gone with the last outcome");
}

/// The reconcile script puts a lost job back only where the state is still the one seen, in
/// the retry set with the attempt and park flag that keep the counts whole once promoted.
#[tokio::test]
async fn a_reconciled_job_comes_back_once_and_keeps_the_counts() {
    let mut redis = Redis::start().await;
    redis.campaign("c", "running", 3).await;
    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "updated_at", "5"]).await;
    // 0: pushed, never taken. 1: in flight at attempt 1 from entry 9-1. 2: attempt 0 deferred
    // (counted deferred, not queued). 3: in flight, but the worker recorded it meanwhile.
    let _: () = redis.cmd(&["HSET", &keys::campaign_state("c"), "1", "q1:9-1", "2", "d0", "3", "s"]).await;
    let _: () = redis.cmd(&["HSET", &keys::campaign_counts("c"), "queued", "2", "deferred", "1"]).await;
    let job = |index: u64, attempt: u32, parked: bool| Job { attempt, parked, ..entry("0-0", index, 0).job };
    let lost = |index: u64, seen: &'static str, attempt: u32, parked: bool| campaign::Lost {
        index,
        seen,
        member: job(index, attempt, parked).member(),
        address: "r@x.example",
    };
    let all = [lost(0, "", 0, true), lost(1, "q1:9-1", 1, true), lost(2, "d0", 1, false), lost(3, "q0:9-3", 0, true)];
    let moved = campaign::reconcile(&mut redis.conn, "c", (100, "4"), &all).await.unwrap();
    assert!(moved.is_empty(), "a pause or resume since the look: nothing done");
    let moved = campaign::reconcile(&mut redis.conn, "c", (100, "5"), &all).await.unwrap();
    assert_eq!(moved, [0, 1, 2], "3 moved on since it was seen");
    assert_eq!(redis.state("c", 0).await, None);
    assert_eq!(redis.state("c", 1).await.as_deref(), Some("d0"), "back to before the claim");
    assert_eq!(redis.state("c", 2).await.as_deref(), Some("d0"));
    assert_eq!(redis.event_types("c").await, ["requeued"; 3]);
    let again = campaign::reconcile(&mut redis.conn, "c", (100, "5"), &all).await.unwrap();
    assert_eq!(again, [0, 2], "unchanged states match again: the duty waits before it looks again");
    // Promotion then moves only the deferred one to queued, and each job is current.
    let due = campaign::retry_due(&mut redis.conn, "c", 10).await.unwrap();
    assert_eq!(due.len(), 3, "the same member, not a second one: {due:?}");
    assert_eq!(campaign::retry_done(&mut redis.conn, "c", &due).await.unwrap(), 1);
    let c = redis.counts("c").await;
    assert_eq!((c["queued"], c["deferred"]), (3, 0), "{c:?}");
    let taken: Vec<Entry> = [(0, 0), (1, 1), (2, 1)].iter().map(|(i, a)| entry(&format!("20-{i}"), *i, *a)).collect();
    let decided = jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, &taken).await.unwrap();
    assert_eq!(decided, [Decision::Send; 3], "every job put back is the current one");
}
