//! Redis hygiene: after a 50,000-recipient campaign completes and its retention passes, Redis
//! memory is back near its baseline: acked jobs were deleted from the streams and the
//! campaign's keys expired; the event feed holds no more than its cap (`events.feed_max_entries`).
//! Engagement records (off by default) are kept per address by design and measured on their own
//! in `shared/tests/scripts/engagement.rs`; they are explicitly off here.

use crate::common;

use std::time::Duration;

use sluice_testkit::wait_for;

const CONFIG: &str = r#"
[limits.default]
rate = "1000000/s"
burst = 1000000
connections = 16

[campaigns]
retention = "1s"

[scheduler]
consumer_expiry = "2s"

[events]
feed_max_entries = 1

[hygiene]
track = false
"#;

/// Redis memory without client buffers (which depend on what the connections just did) and,
/// with a replica, without the replication backlog (a fixed ring of recent writes), summed
/// over every node of a cluster.
fn used_memory(stack: &common::Stack) -> i64 {
    let node_memory = |conn: &mut redis::Connection| {
        let info: String = redis::cmd("INFO").arg("memory").query(conn).unwrap();
        let field =
            |name: &str| -> i64 { info.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().parse().unwrap() };
        field("used_memory:")
            - field("mem_clients_normal:")
            - field("mem_clients_slaves:")
            - field("mem_replication_backlog:")
    };
    stack.redis.each_node().iter_mut().map(node_memory).sum()
}

/// The ten biggest keys over every node, with their sizes in bytes.
fn biggest_keys(stack: &common::Stack) -> Vec<(String, i64)> {
    let mut sizes = Vec::new();
    for mut node in stack.redis.each_node() {
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut node).unwrap();
        for key in keys {
            let size: Option<i64> = redis::cmd("MEMORY").arg("USAGE").arg(&key).query(&mut node).unwrap();
            sizes.push((key, size.unwrap_or(0)));
        }
    }
    sizes.sort_by_key(|(_, size)| -size);
    sizes.truncate(10);
    sizes
}

async fn run_and_expire(stack: &common::Stack, id: &str, n: usize) {
    let mut body = common::campaign_body(id, Vec::new());
    body["start"] = false.into();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let ndjson: String = (0..n)
        .map(|i| format!("{{\"email\":\"u{i}@d{}.example\",\"vars\":{{\"name\":\"N{i}\"}}}}\n", i % 50))
        .collect();
    let (status, reply) = stack.post_raw(&format!("/v1/campaigns/{id}/recipients"), ndjson).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(n as u64)), "{reply}");
    stack.call("POST", &format!("/v1/campaigns/{id}/start"), None).await;
    stack.wait_status(id, "completed", Duration::from_secs(120)).await;
    let key = format!("sluice:{{c:{id}}}:state");
    wait_for("the campaign's keys to expire", Duration::from_secs(20), || {
        let mut conn = stack.redis.conn();
        let key = key.clone();
        async move { (redis::cmd("EXISTS").arg(&key).query::<i64>(&mut conn).unwrap() == 0).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_near_baseline_after_a_big_campaign() {
    let stack = common::start(CONFIG, 2).await;
    // Warm up: scripts loaded, the 50 domain streams and their groups exist.
    run_and_expire(&stack, "warmup", 100).await;
    let baseline = used_memory(&stack);
    run_and_expire(&stack, "big", 50_000).await;
    let mut conn = stack.redis.conn();
    for d in 0..50 {
        let len: i64 = redis::cmd("XLEN").arg(format!("sluice:{{d:d{d}.example}}:q")).query(&mut conn).unwrap();
        assert_eq!(len, 0, "acked jobs are deleted from d{d}.example's stream");
    }
    // Expired keys are freed by Redis's active expiry cycle within moments. Each node keeps a
    // little residue of its own (table and allocator slack), so a cluster is allowed per node.
    let allowed = 256 * 1024 * stack.redis.each_node().len() as i64;
    let start = std::time::Instant::now();
    let after = loop {
        let now = used_memory(&stack);
        // Redis shrinks its emptied tables in its cron, later under load: poll, with a deadline.
        if now - baseline < allowed || start.elapsed() > Duration::from_secs(30) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("used_memory (without client buffers): baseline {baseline} B, after 50,000 recipients {after} B");
    assert!(
        after - baseline < allowed,
        "Redis kept {} KB after the campaign; biggest keys: {:?}",
        (after - baseline) / 1024,
        biggest_keys(&stack)
    );
    // Consumers idle past scheduler.consumer_expiry with nothing pending are removed (a live
    // worker is simply recreated by its next read).
    wait_for("idle consumers to be pruned", Duration::from_secs(20), || {
        let mut conn = stack.redis.conn();
        async move {
            let consumers: Vec<redis::Value> = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg("sluice:{d:d1.example}:q")
                .arg("workers")
                .query(&mut conn)
                .unwrap();
            consumers.is_empty().then_some(())
        }
    })
    .await;
    let (_, list) = stack.call("GET", "/v1/campaigns", None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "expired campaigns leave the list: {list}");
}
