//! Every SQL query of the "Sluice deliverability history" dashboard runs against a real
//! PostgreSQL holding a real campaign's events (sent and hard bounces), with Grafana's macros
//! and variables expanded as Grafana's PostgreSQL data source does, and returns rows. The
//! recipient lookup quotes its variable (`sqlstring`), so a quote in the box cannot end the
//! string.

use std::time::Duration;

use serde_json::Value;
use sluice_testkit::PostgresServer;

use super::{common, history_toml, wait_events};

/// The text inside the parentheses that open at `start` (which points just after `(`).
fn closing(text: &str, start: usize) -> usize {
    let mut depth = 1;
    for (i, c) in text[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return start + i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced macro in {text}");
}

/// `sql` with `$__timeFilter`, `$__timeGroupAlias` and `${recipient:sqlstring}` expanded.
fn expand(sql: &str, recipient: &str) -> String {
    let mut out = sql.replace("${recipient:sqlstring}", &format!("'{}'", recipient.replace('\'', "''")));
    while let Some(at) = out.find("$__timeFilter(") {
        let open = at + "$__timeFilter(".len();
        let close = closing(&out, open);
        let column = out[open..close].trim().to_string();
        let range = format!("{column} BETWEEN '2000-01-01T00:00:00Z' AND now() + interval '1 day'");
        out.replace_range(at..=close, &range);
    }
    while let Some(at) = out.find("$__timeGroupAlias(") {
        let open = at + "$__timeGroupAlias(".len();
        let close = closing(&out, open);
        let args: Vec<String> = out[open..close].split(',').map(|a| a.trim().to_string()).collect();
        let seconds = match args[1].trim_matches('\'') {
            "1h" => 3600,
            "1d" => 86_400,
            other => panic!("interval {other} not expanded by this test"),
        };
        let group = format!("floor(extract(epoch from {})/{seconds})*{seconds} AS \"time\"", args[0]);
        out.replace_range(at..=close, &group);
    }
    assert!(!out.contains('$'), "a macro or variable was left: {out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_on_real_history() {
    let pg = PostgresServer::start();
    let stack = common::start(&history_toml(&pg, ""), 1).await;
    let mut recipients = common::recipients(20, 2, |i| format!("Reader{i}"));
    recipients
        .extend((0..4).map(|i| serde_json::json!({"email": format!("hard-{i}@d0.example"), "vars": {"name": "H"}})));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("digest", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("digest", "completed", Duration::from_secs(30)).await;
    wait_events(&stack, "&campaign=digest", 48).await;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../grafana/dashboards/history.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut ran = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], "sluice-history", "{}", panel["title"]);
        for target in panel["targets"].as_array().unwrap() {
            let sql = expand(target["rawSql"].as_str().unwrap(), "READER3@D1.example");
            let rows = pg.sql(&sql);
            let seen = pg.sql("SELECT type, count(*), min(data::text) FROM events GROUP BY 1");
            assert!(!rows.trim().is_empty(), "{}: no rows from\n{sql}\nin {seen}", panel["title"]);
            ran += 1;
        }
    }
    assert_eq!(ran, 4);
    // The lookup finds the address whatever its case, and a quote typed in the box stays text.
    let lookup = dashboard["panels"][3]["targets"][0]["rawSql"].as_str().unwrap();
    let found = pg.sql(&expand(lookup, "READER3@D1.example"));
    assert_eq!(found.lines().count(), 2, "queued and sent: {found}");
    assert!(pg.sql(&expand(lookup, "x' OR '1'='1")).trim().is_empty());
    let bounces = pg.sql(&expand(dashboard["panels"][0]["targets"][0]["rawSql"].as_str().unwrap(), ""));
    assert!(bounces.contains("invalid_recipient @d0.example|4"), "{bounces}");
}
