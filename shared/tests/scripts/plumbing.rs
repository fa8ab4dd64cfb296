//! The small scripts: due sets, acks and consumer hygiene, templates, feed cursors, warm-up.

use sluice_shared::{
    keys,
    redis::{
        ensure_group,
        scripts::{due, records, stream},
    },
};

use crate::Redis;

#[tokio::test]
async fn a_due_member_changes_only_if_its_score_is_still_the_one_read() {
    let mut redis = Redis::start().await;
    let now = due::mark(&mut redis.conn, "sluice:test:due", &["a", "b"]).await.unwrap();
    assert!(!due::reschedule_if(&mut redis.conn, "sluice:test:due", "a", now - 1, now + 60_000).await.unwrap());
    assert!(due::reschedule_if(&mut redis.conn, "sluice:test:due", "a", now, now + 60_000).await.unwrap());
    let score: i64 = redis.cmd(&["ZSCORE", "sluice:test:due", "a"]).await;
    assert_eq!(score, now + 60_000);
    assert!(!due::remove_if(&mut redis.conn, "sluice:test:due", "b", now + 1).await.unwrap(), "a newer mark wins");
    assert!(due::remove_if(&mut redis.conn, "sluice:test:due", "b", "1e999").await.is_ok_and(|removed| !removed));
    assert!(due::remove_if(&mut redis.conn, "sluice:test:due", "b", now).await.unwrap());
}

#[tokio::test]
async fn acked_entries_are_deleted_and_idle_empty_consumers_pruned() {
    let mut redis = Redis::start().await;
    let s = "sluice:test:stream";
    ensure_group(&mut redis.conn, s, "g").await.unwrap();
    let id: String = redis.cmd(&["XADD", s, "*", "k", "v"]).await;
    let _: redis::Value = redis.cmd(&["XREADGROUP", "GROUP", "g", "busy", "STREAMS", s, ">"]).await;
    let _: i64 = redis.cmd(&["XGROUP", "CREATECONSUMER", s, "g", "idle"]).await;
    assert_eq!(stream::prune_consumers(&mut redis.conn, s, "g", 0).await.unwrap(), 1, "only the one holding nothing");
    assert_eq!(stream::ack(&mut redis.conn, s, "g", &[id]).await.unwrap(), 1);
    let len: i64 = redis.cmd(&["XLEN", s]).await;
    assert_eq!(len, 0);
    assert_eq!(stream::ack(&mut redis.conn, s, "g", &[]).await.unwrap(), 0);
}

#[tokio::test]
async fn templates_feed_cursors_and_warmup_counters() {
    let mut redis = Redis::start().await;
    assert_eq!(records::template_put(&mut redis.conn, "t", r#"{"subject":"a"}"#).await.unwrap(), 1);
    assert_eq!(records::template_put(&mut redis.conn, "t", r#"{"subject":"b"}"#).await.unwrap(), 2);
    let v2: String = redis.cmd(&["HGET", &keys::template("t"), "v2"]).await;
    assert!(v2.contains("\"version\":2") && v2.contains("\"b\""), "{v2}");

    assert!(!records::feed_cursor(&mut redis.conn, "gone", "5-0").await.unwrap(), "no meta is brought back");
    let exists: i64 = redis.cmd(&["EXISTS", &keys::campaign_meta("gone")]).await;
    assert_eq!(exists, 0);
    redis.campaign("c", "running", 0).await;
    assert!(records::feed_cursor(&mut redis.conn, "c", "5-0").await.unwrap());
    let fed: String = redis.cmd(&["HGET", &keys::campaign_meta("c"), "fed"]).await;
    assert_eq!(fed, "5-0");

    let counter = "sluice:test:warmup";
    assert_eq!(records::warmup_take(&mut redis.conn, counter, 5, 3, 60_000).await.unwrap(), (3, 3));
    assert_eq!(records::warmup_take(&mut redis.conn, counter, 5, 3, 60_000).await.unwrap(), (2, 5));
    assert_eq!(records::warmup_take(&mut redis.conn, counter, 5, 3, 60_000).await.unwrap(), (0, 5));
    let ttl: i64 = redis.cmd(&["PTTL", counter]).await;
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
}
