//! The PostgreSQL history through the real binaries, each test with its own PostgreSQL
//! (initdb into a temporary directory): events searched, reported and exported after Redis
//! expired them, and a PostgreSQL outage that sending never notices.

#[path = "../common/mod.rs"]
mod common;

mod dashboard;
mod erase;
mod outage;
mod retention;
mod search_report;

use std::time::Duration;

use serde_json::Value;
use sluice_testkit::PostgresServer;

/// The `[history]` section for `pg`, with `extra` lines.
pub fn history_toml(pg: &PostgresServer, extra: &str) -> String {
    format!("[history]\nurl = \"{}\"\n{extra}\n", pg.url())
}

/// Every event the history query matches, `limit` a page, following `next`.
pub async fn read_all(stack: &common::Stack, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    for _ in 0..1000 {
        let (status, page) = stack.call("GET", &format!("/v1/history/events?limit={limit}{query}{cursor}"), None).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= limit);
        out.extend(events.iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return out,
        }
    }
    panic!("paging never ended");
}

/// Waits until the history holds `n` events matching `query` (the logs on failure).
pub async fn wait_events(stack: &common::Stack, query: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = stack.call("GET", &format!("/v1/history/events?limit=1000{query}"), None).await;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if status == 200 && events.len() >= n {
            return events;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{n} events in the history ({query}) not there after 30 s: {status} {page}\n{}", stack.logs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `SELECT count(*), count(DISTINCT event id) FROM events`.
pub fn row_counts(pg: &PostgresServer) -> (i64, i64) {
    let out = pg.sql("SELECT count(*) || ' ' || count(DISTINCT (source, at, seq)) FROM events");
    let mut parts = out.split_whitespace().map(|n| n.parse::<i64>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}
