//! A cancel that lands between a scheduler's peek at the staged recipients and its commit
//! (expand_commit.lua) must leave the counts whole: each recipient counted once, as cancelled,
//! and the jobs already pushed marked so that workers skip them. Found by the CLI test, whose
//! status call once failed on a count of -2.

use std::collections::BTreeMap;

use sluice_shared::{keys, redis::scripts::SCRIPTS};
use sluice_testkit::RedisServer;

const ID: &str = "race";

/// A running campaign with two staged recipients, as after an upload and a start.
fn running_with_two_staged(conn: &mut redis::Connection) {
    let _: () = redis::cmd("HSET")
        .arg(keys::campaign_meta(ID))
        .arg(&[("status", "running"), ("cursor", "0")])
        .query(conn)
        .unwrap();
    let _: () =
        redis::cmd("HSET").arg(keys::campaign_counts(ID)).arg(&[("total", "2"), ("staged", "2")]).query(conn).unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(keys::campaign_staged(ID))
        .arg(&["{\"r\":\"a@x.example\"}", "{\"r\":\"b@x.example\"}"])
        .query(conn)
        .unwrap();
}

fn commit_both(conn: &mut redis::Connection) -> i64 {
    let mut commit = SCRIPTS.expand_commit.prepare_invoke();
    commit
        .key(keys::campaign_meta(ID))
        .key(keys::campaign_counts(ID))
        .key(keys::campaign_staged(ID))
        .key(keys::campaign_state(ID))
        .key(keys::campaign_events(ID));
    commit.arg(0).arg(2).arg(2).arg(100).arg(0).arg(0).arg("a@x.example").arg(1).arg("b@x.example");
    commit.invoke(conn).unwrap()
}

fn counts(conn: &mut redis::Connection) -> BTreeMap<String, i64> {
    redis::cmd("HGETALL").arg(keys::campaign_counts(ID)).query(conn).unwrap()
}

#[test]
fn a_cancel_between_peek_and_commit_counts_each_recipient_once() {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    running_with_two_staged(&mut conn);
    let cancelled: Vec<String> = SCRIPTS
        .transition
        .key(keys::campaign_meta(ID))
        .key(keys::campaign_counts(ID))
        .key(keys::campaign_staged(ID))
        .key(keys::campaign_retry(ID))
        .arg("cancel")
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(cancelled, ["ok", "cancelled"]);
    assert_eq!(commit_both(&mut conn), 1);
    let c = counts(&mut conn);
    assert_eq!((c["staged"], c.get("queued").copied().unwrap_or(0), c["cancelled"]), (0, 0, 2), "{c:?}");
    let states: Vec<Option<String>> =
        redis::cmd("HMGET").arg(keys::campaign_state(ID)).arg(&["0", "1"]).query(&mut conn).unwrap();
    assert_eq!(states, [Some("x".to_string()), Some("x".to_string())], "pushed jobs are skipped by workers");
}

#[test]
fn without_a_cancel_the_commit_moves_staged_to_queued() {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    running_with_two_staged(&mut conn);
    assert_eq!(commit_both(&mut conn), 1);
    let c = counts(&mut conn);
    assert_eq!((c["staged"], c["queued"]), (0, 2), "{c:?}");
}
