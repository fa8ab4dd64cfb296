//! Engagement records: counting sends, the sunset policy, opens and clicks starting the count
//! over; and how many Redis bytes a million addresses take (goal: at most 64 per address).

use sluice_shared::{
    engagement::{self, Record},
    keys,
    redis::scripts::engagement::{Sunset, expand, touch},
};

use crate::Redis;

const TODAY: u16 = 2500;

fn sunset(after_sends: u32, include_dormant: bool) -> Sunset {
    Sunset { after_sends, after_days: 0, include_dormant }
}

async fn record(redis: &mut Redis, address: &str) -> Record {
    let key = keys::engagement_bucket(engagement::bucket(address));
    let bytes: Vec<u8> = redis::cmd("HGET").arg(key).arg(address).query_async(&mut redis.conn).await.unwrap();
    Record::from_bytes(&bytes).unwrap()
}

#[tokio::test]
async fn sends_count_until_the_sunset_and_engagement_starts_over() {
    let mut redis = Redis::start().await;
    let conn = &mut redis.conn;
    let ann = "ann@x.example";
    assert_eq!(expand(conn, TODAY, &sunset(2, false), &[ann]).await.unwrap(), [false]);
    assert_eq!(expand(conn, TODAY + 1, &sunset(2, false), &[ann]).await.unwrap(), [false]);
    assert_eq!(expand(conn, TODAY + 2, &sunset(2, false), &[ann]).await.unwrap(), [true], "two sends, no engagement");
    assert_eq!(expand(conn, TODAY + 2, &sunset(2, true), &[ann]).await.unwrap(), [false], "included: sent and counted");
    let r = record(&mut redis, ann).await;
    assert_eq!((r.first_seen, r.last_sent, r.sends_since_engagement), (TODAY, TODAY + 2, 3));
    touch(&mut redis.conn, ann, true, TODAY + 3).await.unwrap();
    let r = record(&mut redis, ann).await;
    assert_eq!((r.last_click, r.last_open, r.sends_since_engagement), (TODAY + 3, 0, 0));
    assert_eq!(expand(&mut redis.conn, TODAY + 4, &sunset(2, false), &[ann]).await.unwrap(), [false]);
    // Without a policy nobody is dormant, however many sends.
    for _ in 0..5 {
        assert_eq!(expand(&mut redis.conn, TODAY + 5, &sunset(0, false), &[ann]).await.unwrap(), [false]);
    }
}

#[tokio::test]
async fn a_million_addresses_take_at_most_64_bytes_each() {
    const N: usize = 1_000_000;
    let mut redis = Redis::start().await;
    let used = |info: String| -> u64 {
        info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap()
    };
    let before = used(redis::cmd("INFO").arg("memory").query_async(&mut redis.conn).await.unwrap());
    let addresses: Vec<String> = (0..N).map(|i| format!("subscriber{i}@list{}.example", i % 1000)).collect();
    let mut by_group: Vec<Vec<&str>> = vec![Vec::new(); engagement::GROUPS as usize];
    for a in &addresses {
        let group = &mut by_group[engagement::group(engagement::bucket(a)) as usize];
        group.push(a);
        if group.len() == 1000 {
            expand(&mut redis.conn, TODAY, &sunset(0, false), group).await.unwrap();
            group.clear();
        }
    }
    for group in by_group.iter().filter(|g| !g.is_empty()) {
        expand(&mut redis.conn, TODAY, &sunset(0, false), group).await.unwrap();
    }
    let after = used(redis::cmd("INFO").arg("memory").query_async(&mut redis.conn).await.unwrap());
    let per_address = (after - before) as f64 / N as f64;
    println!("engagement records: {per_address:.1} Redis bytes per address over {N} addresses of ~31 characters");
    assert!(per_address <= 64.0, "{per_address:.1} bytes per address");
}
