//! PostgreSQL is never on the sending path: while it is down campaigns complete as fast as
//! ever, the history routes answer 503, the writers count their failures and their lag; once it
//! is back every event arrives exactly once. Replaying the feed from its start adds nothing.
//! Events the feed trimmed before the writer could read them are counted as dropped.

use std::time::Duration;

use serde_json::json;
use sluice_testkit::{PostgresServer, wait_for};

use super::{common, history_toml, row_counts, wait_events};

async fn run_campaign(stack: &common::Stack, id: &str, n: usize) {
    let body = common::campaign_body(id, common::recipients(n, 4, |i| format!("{id}-{i}")));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status(id, "completed", Duration::from_secs(60)).await;
}

fn metric(text: &str, series: &str) -> f64 {
    common::sample(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_holds_the_writer_and_it_catches_up_without_duplicates() {
    let mut pg = PostgresServer::start();
    let stack = common::start(&history_toml(&pg, ""), 1).await;
    run_campaign(&stack, "before", 20).await;
    wait_events(&stack, "&campaign=before", 40).await;

    pg.stop();
    run_campaign(&stack, "during", 200).await;
    let (status, body) = stack.call("GET", "/v1/history/events", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("history store unavailable"), "{body}");
    let metrics = wait_for("the writer to count a failure and a lag", Duration::from_secs(20), || async {
        let text = stack.scrape(0).await;
        let lag =
            (0..8).map(|s| metric(&text, &format!("sluice_history_lag_seconds{{shard=\"{s}\"}}"))).fold(0.0, f64::max);
        (metric(&text, "sluice_history_write_errors_total") > 0.0 && lag > 0.0).then_some(text)
    })
    .await;
    assert!(metric(&metrics, "sluice_history_written_events_total") >= 40.0);

    pg.restart();
    wait_events(&stack, "&campaign=during", 400).await;
    assert_eq!(row_counts(&pg), (440, 440));
    let text = stack.scrape(0).await;
    assert_eq!(metric(&text, "sluice_history_dropped_events_total"), 0.0);

    // A replay of the whole feed (cursors lost) adds nothing.
    let mut conn = stack.redis.conn();
    for shard in 0..8 {
        let _: () = redis::cmd("DEL").arg(format!("sluice:{{e:{shard}}}:history")).query(&mut conn).unwrap();
    }
    wait_for("the writers to replay the feed", Duration::from_secs(30), || async {
        let mut conn = stack.redis.conn();
        let mut done = 0;
        for shard in 0..8 {
            let seq: Option<i64> = redis::cmd("GET").arg(format!("sluice:{{e:{shard}}}:seq")).query(&mut conn).unwrap();
            let n: Option<i64> =
                redis::cmd("HGET").arg(format!("sluice:{{e:{shard}}}:history")).arg("n").query(&mut conn).unwrap();
            done += usize::from(seq.is_none() || n == seq);
        }
        (done == 8).then_some(())
    })
    .await;
    assert_eq!(row_counts(&pg), (440, 440));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_trimmed_before_the_writer_read_them_are_counted() {
    let mut pg = PostgresServer::start();
    let stack = common::start(&history_toml(&pg, "[events]\nfeed_max_entries = 8"), 1).await;
    run_campaign(&stack, "first", 40).await;
    caught_up(&stack, &pg, 80).await;
    pg.stop();
    // Many small runs, so each shard's one feed entry is replaced while PostgreSQL is down.
    for i in 0..6 {
        let (status, m) = stack
            .call(
                "POST",
                "/v1/messages",
                Some(json!({"from": "a@shop.example", "to": format!("t{i}@x.example"), "subject": "s", "text": "t"})),
            )
            .await;
        assert_eq!(status, 202, "{m}");
        stack.wait_message(m["id"].as_str().unwrap(), "sent", Duration::from_secs(10)).await;
    }
    run_campaign(&stack, "second", 40).await;
    pg.restart();
    // The metric and the shards' recorded counts are read apart, and a shard may drop more in
    // between: they must come to agree, not match at one random instant.
    wait_for("trimmed events to be counted alike in the metric and in Redis", Duration::from_secs(30), || async {
        let mut conn = stack.redis.conn();
        let dropped = metric(&stack.scrape(0).await, "sluice_history_dropped_events_total") as i64;
        let mut recorded = 0;
        for shard in 0..8 {
            let d: Option<i64> = redis::cmd("HGET")
                .arg(format!("sluice:{{e:{shard}}}:history"))
                .arg("dropped")
                .query(&mut conn)
                .unwrap();
            recorded += d.unwrap_or(0);
        }
        (dropped > 0 && recorded == dropped).then_some(())
    })
    .await;
    // What was kept plus what was dropped is everything: nothing vanished uncounted.
    caught_up(&stack, &pg, 80 + 12 + 80).await;
}

/// Waits until the rows written and the events counted as dropped add up to `total`.
async fn caught_up(stack: &common::Stack, pg: &PostgresServer, total: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (rows, _) = row_counts(pg);
        let dropped = metric(&stack.scrape(0).await, "sluice_history_dropped_events_total") as i64;
        if rows + dropped == total {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let by_source = pg.sql("SELECT source, type, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2");
            panic!("{rows} rows + {dropped} dropped != {total} after 30 s:\n{by_source}\n{}", stack.logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
