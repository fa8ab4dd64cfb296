//! The destination scripts: a visit to a lane, shaping and reading the shape, has-work, picks.

use sluice_shared::{
    classify::DestinationAction,
    keys,
    lane::Lane,
    redis::{
        ensure_group,
        scripts::{destination, due},
    },
    units::Span,
};

use crate::Redis;

fn visit(want: usize) -> destination::Visit<'static> {
    destination::Visit {
        domain: "x.example",
        lane: Lane::Bulk,
        want,
        per_second: 100.0,
        burst: 2,
        group: keys::WORKER_GROUP,
        consumer: "w1",
        reclaim_idle_ms: 60_000,
        reclaim_every_ms: 30_000,
        share: 0.0,
        retake_own: false,
    }
}

/// x.example's bulk lane with its group and one job per entry of `campaigns` (index = position);
/// the stream's key.
async fn bulk_lane_with_jobs(redis: &mut Redis, campaigns: &[&str]) -> String {
    let stream = keys::lane_stream("x.example", Lane::Bulk);
    ensure_group(&mut redis.conn, &stream, keys::WORKER_GROUP).await.unwrap();
    for (i, c) in campaigns.iter().enumerate() {
        let i = i.to_string();
        let _: String =
            redis.cmd(&["XADD", &stream, "*", "c", c, "i", &i, "r", "a@x.example", "v", "", "a", "0", "t", "1"]).await;
    }
    stream
}

#[tokio::test]
async fn a_visit_takes_jobs_within_the_bucket_and_reports_malformed_entries() {
    let mut redis = Redis::start().await;
    let stream = bulk_lane_with_jobs(&mut redis, &["c"; 3]).await;
    let took = destination::take(&mut redis.conn, &visit(10)).await.unwrap();
    assert_eq!(took.entries.len(), 2, "the burst is 2 tokens");
    assert!(took.more, "a third job waits");
    assert_eq!(took.factor_x1000, 1000);
    let (first, deliveries) = &took.entries[0];
    assert_eq!((first.job.campaign.as_str(), first.job.index, *deliveries), ("c", 0, 1));
    let bucket: i64 = redis.cmd(&["EXISTS", &keys::domain_bucket("x.example")]).await;
    assert_eq!(bucket, 1, "tokens are kept in the destination's bucket");

    let _: String = redis.cmd(&["XADD", &stream, "*", "junk", "1"]).await;
    let _: () = redis.cmd(&["DEL", &keys::domain_bucket("x.example")]).await;
    let took = destination::take(&mut redis.conn, &visit(10)).await.unwrap();
    assert_eq!((took.entries.len(), took.malformed.len()), (1, 1), "{took:?}");
    assert_eq!(took.pending, 4);
}

#[tokio::test]
async fn a_consumer_retakes_its_own_orphans_at_once_only_when_asked() {
    let mut redis = Redis::start().await;
    let stream = bulk_lane_with_jobs(&mut redis, &["c"; 4]).await;
    let roomy = |retake_own| destination::Visit { burst: 10, retake_own, ..visit(2) };
    // A take whose reply never came back: two entries pending under w1, not idle for long.
    let lost = destination::take(&mut redis.conn, &roomy(false)).await.unwrap();
    let lost: Vec<String> = lost.entries.iter().map(|(e, _)| e.id.clone()).collect();
    let _: i64 = redis.cmd(&["XDEL", &stream, &lost[1]]).await;

    let plain = destination::take(&mut redis.conn, &destination::Visit { want: 1, ..roomy(false) }).await.unwrap();
    assert_eq!(plain.entries[0].0.job.index, 2, "without asking, a new entry");
    assert_eq!((plain.retaken, plain.reclaimed, plain.own_rest), (0, 0, false));

    let again = destination::take(&mut redis.conn, &destination::Visit { want: 1, ..roomy(true) }).await.unwrap();
    assert_eq!((again.retaken, again.own_rest), (1, true), "one token for two orphans: {again:?}");
    assert_eq!((again.entries[0].0.id.as_str(), again.entries[0].1), (lost[0].as_str(), 2), "handed out twice");

    let rest = destination::take(&mut redis.conn, &destination::Visit { want: 4, ..roomy(true) }).await.unwrap();
    assert_eq!(rest.retaken, 2, "the orphan and the entry taken plainly: {rest:?}");
    assert!(!rest.own_rest, "fewer own entries than tokens: every one was looked at");
    assert_eq!(rest.entries.iter().map(|(e, _)| e.job.index).collect::<Vec<_>>(), [0, 2, 3], "then a new one");
    let left: Vec<redis::Value> = redis.cmd(&["XPENDING", &stream, keys::WORKER_GROUP, "-", "+", "10"]).await;
    assert_eq!(left.len(), 3, "the deleted entry left the pending list");
}

#[tokio::test]
async fn a_lane_without_its_group_answers_nogroup() {
    let mut redis = Redis::start().await;
    let err = destination::take(&mut redis.conn, &visit(1)).await.unwrap_err();
    assert!(err.to_string().contains("NOGROUP"), "{err}");
}

#[tokio::test]
async fn a_shaped_destination_shows_its_cut_and_ramps_back() {
    let mut redis = Redis::start().await;
    let slow = DestinationAction::Slow { factor: 0.1, duration: Span::try_from("10m").unwrap() };
    let (factor, suspended) = destination::shape(&mut redis.conn, "x.example", slow).await.unwrap();
    assert_eq!((factor, suspended), (100, 0));
    let depths =
        destination::depths(&mut redis.conn, &["x.example".to_string(), "y.example".to_string()]).await.unwrap();
    assert_eq!(depths[0].shape.factor_x1000, 100, "within the slow period");
    assert!(depths[0].shape.slowed_until_ms > depths[0].shape.now_ms);
    assert_eq!((depths[1].shape.factor_x1000, depths[1].bulk), (1000, 0), "no shape: full rate");

    // Half way through the ramp back, then past it.
    let now = depths[0].shape.now_ms;
    let shape_key = keys::domain_shape("x.example");
    let set = |until: i64| {
        vec!["HSET".to_string(), shape_key.clone(), "until".into(), until.to_string(), "ramp".into(), "100000".into()]
    };
    let args = set(now - 50_000);
    let _: () = redis.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let half = destination::depths(&mut redis.conn, &["x.example".to_string()]).await.unwrap()[0].shape.factor_x1000;
    assert!((545..=555).contains(&half), "half way through the ramp: {half}");
    let args = set(now - 200_000);
    let _: () = redis.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let after = destination::depths(&mut redis.conn, &["x.example".to_string()]).await.unwrap()[0].shape.factor_x1000;
    assert_eq!(after, 1000, "after the ramp");

    let suspend = DestinationAction::Suspend { duration: Span::try_from("2h").unwrap() };
    let (_, until) = destination::shape(&mut redis.conn, "x.example", suspend).await.unwrap();
    assert!(until > now);
    let took = destination::take(&mut redis.conn, &visit(1)).await;
    assert!(took.is_err() || took.unwrap().suspended_ms > 0, "a suspended destination gives nothing");
}

#[tokio::test]
async fn picks_lease_due_destinations_and_has_work_sees_pending_entries() {
    let mut redis = Redis::start().await;
    let ready = keys::ready_of(Lane::Priority, "x.example");
    due::mark(&mut redis.conn, &ready, &["x.example"]).await.unwrap();
    let picked = destination::pick(&mut redis.conn, Lane::Priority, 0, 5, 5_000).await.unwrap();
    assert_eq!(picked.domains, ["x.example"]);
    assert!(picked.lease_until_ms >= picked.now_ms + 5_000);
    let again = destination::pick(&mut redis.conn, Lane::Priority, 0, 5, 5_000).await.unwrap();
    assert!(again.domains.is_empty(), "leased");
    assert_eq!(again.next_due_ms, Some(picked.lease_until_ms));

    assert!(!destination::has_work(&mut redis.conn, "x.example", Lane::Priority, keys::WORKER_GROUP).await.unwrap());
    let stream = keys::lane_stream("x.example", Lane::Priority);
    ensure_group(&mut redis.conn, &stream, keys::WORKER_GROUP).await.unwrap();
    let _: String = redis.cmd(&["XADD", &stream, "*", "c", "c"]).await;
    assert!(destination::has_work(&mut redis.conn, "x.example", Lane::Priority, keys::WORKER_GROUP).await.unwrap());
}

#[tokio::test]
async fn tokens_given_back_are_spendable_at_once() {
    let mut redis = Redis::start().await;
    bulk_lane_with_jobs(&mut redis, &["c"; 4]).await;
    assert_eq!(destination::give_back(&mut redis.conn, "x.example", Lane::Bulk, 2).await.unwrap(), 0, "no bucket yet");
    let slow = destination::Visit { per_second: 0.001, ..visit(10) };
    assert_eq!(destination::take(&mut redis.conn, &slow).await.unwrap().entries.len(), 2, "the burst");
    assert_eq!(destination::take(&mut redis.conn, &slow).await.unwrap().entries.len(), 0, "spent");
    assert_eq!(destination::give_back(&mut redis.conn, "x.example", Lane::Bulk, 2).await.unwrap(), 2);
    assert_eq!(destination::take(&mut redis.conn, &slow).await.unwrap().entries.len(), 2, "given back, taken again");
}

#[tokio::test]
async fn a_scan_finds_one_campaigns_unhanded_entries_in_order_and_goes_on_from_its_cursor() {
    let mut redis = Redis::start().await;
    // dead, live, dead, live, dead, dead: the first is handed to a worker before the scan.
    bulk_lane_with_jobs(&mut redis, &["dead", "live", "dead", "live", "dead", "dead"]).await;
    let took = destination::take(&mut redis.conn, &visit(1)).await.unwrap();
    assert_eq!(took.entries[0].0.job.index, 0);
    let scan = |after: Option<String>, scan, limit| {
        let mut conn = redis.conn.clone();
        async move {
            let after = after.as_deref();
            destination::scan_campaign(
                &mut conn,
                ("x.example", Lane::Bulk),
                keys::WORKER_GROUP,
                "dead",
                after,
                (scan, limit),
            )
            .await
            .unwrap()
        }
    };
    let indexes = |s: &destination::Scanned| s.entries.iter().map(|e| e.job.index).collect::<Vec<_>>();

    let all = scan(None, 100, 100).await;
    assert_eq!((indexes(&all), all.done), (vec![2, 4, 5], true), "past what the group was handed, this campaign only");

    let first = scan(None, 2, 100).await;
    assert_eq!((indexes(&first), first.done), (vec![2], false), "two entries looked at");
    let rest = scan(Some(first.cursor.clone()), 100, 100).await;
    assert_eq!((indexes(&rest), rest.done), (vec![4, 5], true), "on from the cursor");

    let limited = scan(None, 100, 2).await;
    assert_eq!((indexes(&limited), limited.done), (vec![2, 4], false), "the limit ends a look");
    let rest = scan(Some(limited.cursor.clone()), 100, 2).await;
    assert_eq!((indexes(&rest), rest.done), (vec![5], true));

    let missing = destination::scan_campaign(
        &mut redis.conn,
        ("y.example", Lane::Bulk),
        keys::WORKER_GROUP,
        "dead",
        None,
        (9, 9),
    )
    .await
    .unwrap();
    assert!(missing.entries.is_empty() && missing.done, "a stream that does not exist holds nothing");
}
