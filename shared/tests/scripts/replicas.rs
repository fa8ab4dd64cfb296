//! Replica waits against a real master and replica: the WAIT rides behind the write in one
//! pipeline (a script's, a plain pipeline's, a sweep's decisions), a script the master forgot
//! is loaded again, and a replica that does not answer is never taken for one that has the
//! write.

use std::time::Duration;

use sluice_shared::{
    keys,
    model::{Entry, Job, OutcomeKind},
    redis::{
        Conn,
        replicas::{ReplicaAcks, Replicated},
        scripts::{
            due,
            jobs::{self, Counted, Decision, Outcome, Source},
        },
    },
};
use sluice_testkit::{RedisServer, wait_for};

use crate::Redis;

const DAY_MS: u64 = 86_400_000;

fn entry(index: u64) -> Entry {
    let job = Job {
        campaign: "c".into(),
        index,
        recipient: format!("r{index}@x.example"),
        vars: String::new(),
        attempt: 0,
        queued_at_ms: chrono::Utc::now().timestamp_millis() as u64,
        parked: false,
    };
    Entry { id: format!("1-{index}"), job }
}

/// Sends entry `index`'s job and records it sent; what was counted and what the wait found.
async fn send(redis: &mut Redis, replicas: &ReplicaAcks, index: u64) -> (Vec<Counted>, Replicated) {
    let e = entry(index);
    jobs::decide(&mut redis.conn, "c", 100, DAY_MS, Source::Taken, std::slice::from_ref(&e)).await.unwrap();
    let sent = Outcome { entry: &e, kind: OutcomeKind::Sent, retry_delay_ms: 0, detail_json: "{}".into() };
    jobs::record(&mut redis.conn, replicas, "c", (100, DAY_MS), &[sent]).await.unwrap()
}

/// A sweep's decision on entry `index`'s job (parked while the campaign is paused).
async fn sweep(redis: &mut Redis, replicas: &ReplicaAcks, index: u64) -> (Vec<Decision>, Replicated) {
    let swept = [entry(index)];
    let waited = (replicas, "sweep");
    jobs::decide_replicated(&mut redis.conn, waited, "c", (100, DAY_MS), Source::Swept, &swept).await.unwrap()
}

async fn replica_state(replica: &mut Conn, index: u64) -> Option<String> {
    let state = redis::cmd("HGET").arg(keys::campaign_state("c")).arg(index).query_async(replica).await;
    state.unwrap()
}

#[tokio::test]
async fn a_write_is_confirmed_only_once_a_replica_has_it() {
    let master = RedisServer::start();
    let replica = RedisServer::start_replica(master.port, false);
    let mut from_replica = Conn::connect(&replica.url()).await.unwrap();
    let conn = Conn::connect(&master.url()).await.unwrap();
    wait_for("the master to list its replica online", Duration::from_secs(10), || {
        let mut conn = conn.clone();
        async move {
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.ok()?;
            info.contains("state=online").then_some(())
        }
    })
    .await;
    let mut redis = Redis { server: master, conn };
    redis.campaign("c", "running", 4).await;
    let replicas = ReplicaAcks::new(Duration::from_millis(300));

    assert_eq!(send(&mut redis, &replicas, 0).await, (vec![Counted::Recorded], Replicated::Acked));
    assert_eq!(replica_state(&mut from_replica, 0).await.as_deref(), Some("s"), "on the replica once acked");

    let _: () = redis.cmd(&["SCRIPT", "FLUSH"]).await;
    let after_flush = send(&mut redis, &replicas, 1).await;
    assert_eq!(after_flush, (vec![Counted::Recorded], Replicated::Acked), "a forgotten script is loaded again");

    let mut pipe = redis::pipe();
    pipe.xadd("{d:x}:bulk", "*", &[("job", "1")]).ignore();
    assert_eq!(replicas.write(&mut redis.conn, "{d:x}:bulk", "expand", pipe).await.unwrap(), Replicated::Acked);
    let marked = due::mark_replicated(&mut redis.conn, (&replicas, "expand"), "{r:0}:ready", &["x"]).await.unwrap();
    assert_eq!(marked, Replicated::Acked);
    let len: u64 = redis::cmd("XLEN").arg("{d:x}:bulk").query_async(&mut from_replica).await.unwrap();
    assert_eq!(len, 1, "the jobs reached the replica before the write was confirmed");

    // A node that answers ROLE as a replica (a partitioned master that rejoined) confirms
    // nothing: its writes die at its resync.
    let fresh = ReplicaAcks::new(Duration::from_millis(300));
    let demoted = fresh.wait(&mut from_replica, &keys::campaign_state("c"), "ack").await.unwrap();
    assert_eq!(demoted, Replicated::Demoted);

    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "paused"]).await;
    let parked = sweep(&mut redis, &replicas, 9).await;
    assert_eq!(parked, (vec![Decision::Parked], Replicated::Acked), "a sweep's park, confirmed");
    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "running"]).await;

    replica.freeze(true);
    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "paused"]).await;
    let parked = sweep(&mut redis, &replicas, 8).await;
    assert_eq!(parked, (vec![Decision::Parked], Replicated::TimedOut), "a sweep keeps these entries");
    let _: () = redis.cmd(&["HSET", &keys::campaign_meta("c"), "status", "running"]).await;
    let frozen = send(&mut redis, &replicas, 2).await;
    assert_eq!(frozen, (vec![Counted::Recorded], Replicated::TimedOut), "recorded on the master, not confirmed");
    let mut pipe = redis::pipe();
    pipe.xadd("{d:x}:bulk", "*", &[("job", "2")]).ignore();
    assert_eq!(replicas.write(&mut redis.conn, "{d:x}:bulk", "expand", pipe).await.unwrap(), Replicated::TimedOut);
    replica.freeze(false);

    let off = ReplicaAcks::new(Duration::ZERO);
    assert_eq!(send(&mut redis, &off, 3).await.1, Replicated::NoReplica, "waiting off: nothing waited on");
}
