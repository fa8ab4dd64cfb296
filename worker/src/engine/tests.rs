//! A worker's visits against a real redis-server: its own orphans are retaken at once.

use std::sync::Arc;

use sluice_shared::{keys, lane::Lane};
use sluice_testkit::RedisServer;
use tokio::sync::Semaphore;

use super::visit;
use crate::batch::{
    self,
    tests::{counts, setup},
};

/// `job` added to x.example's bulk lane and handed to consumer w1 (the test
/// context's name) by a read whose reply nobody used: the state a lost take reply leaves.
async fn orphaned_under_w1(redis: &RedisServer, job: &sluice_shared::model::Job) {
    let stream = keys::lane_stream("x.example", Lane::Bulk);
    let mut conn = redis.conn();
    let _: () =
        redis::cmd("XGROUP").arg(&["CREATE", &stream, keys::WORKER_GROUP, "0", "MKSTREAM"]).query(&mut conn).unwrap();
    let _: String = redis::cmd("XADD").arg(&stream).arg("*").arg(&job.to_fields()).query(&mut conn).unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", keys::WORKER_GROUP, "w1", "STREAMS", &stream, ">"])
        .query(&mut conn)
        .unwrap();
}

#[tokio::test]
async fn a_take_whose_reply_was_lost_is_retaken_at_the_next_visit_not_after_reclaim_idle() {
    let redis = RedisServer::start();
    let (ctx, entries) = setup(&redis, &["ok"]).await;
    orphaned_under_w1(&redis, &entries[0].job).await;
    let inflight = Arc::new(Semaphore::new(10));
    let conn = ctx.conn().await.unwrap();
    let lease = i64::MAX;

    let plain = visit(&ctx, conn.clone(), "x.example".into(), Lane::Bulk, lease, &inflight).await.unwrap();
    assert!(plain.is_none(), "nothing failed here: the entry waits for worker.reclaim_idle (60 s)");

    ctx.orphans.suspect("x.example", Lane::Bulk);
    let busy = ctx.orphans.start("x.example", Lane::Bulk);
    let held = visit(&ctx, conn.clone(), "x.example".into(), Lane::Bulk, lease, &inflight).await.unwrap();
    assert!(held.is_none(), "a batch of ours runs on the lane: its entries are not orphans");
    drop(busy);

    let taken = visit(&ctx, conn, "x.example".into(), Lane::Bulk, lease, &inflight).await.unwrap().expect("retaken");
    assert_eq!(taken.batch.entries.len(), 1);
    assert!(!ctx.orphans.retake("x.example", Lane::Bulk), "the lane was looked at whole");
    batch::process(ctx.clone(), taken.domain, taken.batch).await;
    assert_eq!(counts(&redis)["sent"], 1);
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&[&keys::lane_stream("x.example", Lane::Bulk), keys::WORKER_GROUP, "-", "+", "10"])
        .query(&mut redis.conn())
        .unwrap();
    assert!(pending.is_empty(), "sent, recorded and acked");
}
