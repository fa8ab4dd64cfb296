//! Every dashboard parses, and every metric it queries is one the code exports.

use std::collections::BTreeSet;

use sluice_shared::metrics as m;

const EXPORTED: &[&str] = &[
    m::MESSAGES,
    m::REPLICA_WAITS,
    m::SMTP_LATENCY,
    m::QUEUE_DEPTH,
    m::TOKEN_WAITS,
    m::CLAIMS,
    m::RECLAIMS,
    m::SKIPPED,
    m::INTAKE_RECIPIENTS,
    m::CAMPAIGNS_CREATED,
    m::INTAKE_ERRORS,
    m::RETRIES_PROMOTED,
    m::INFLIGHT,
    m::REDIS_ERRORS,
    m::REPLIES,
    m::SENDER_AUTH_REJECTIONS,
    m::REPUTATION_FINDINGS,
    m::REPUTATION_PAUSES,
    m::SENDER_RATE,
    m::SHAPE_CHANGES,
    m::RATE_FACTOR,
    m::SUSPENDED,
    m::SOFT_BOUNCE_SUPPRESSIONS,
    m::UNSUBSCRIBES,
    m::INBOUND_REPORTS,
    m::WARMUP_SENT,
    m::WARMUP_CAP,
    m::WARMUP_HELD,
    m::QUEUE_OLDEST_AGE,
    m::LIVE_WORKERS,
    m::REDIS_UP,
    m::CAMPAIGN_RECIPIENTS,
    m::MESSAGES_ACCEPTED,
    m::FEED_EVENTS,
    m::WEBHOOK_BACKLOG,
    m::WEBHOOK_DELIVERIES,
    m::WEBHOOK_DROPPED,
    m::WEBHOOK_LAST_SUCCESS,
    m::SUBMISSION_SESSIONS,
    m::SUBMISSION_AUTH_FAILURES,
    m::SUBMISSION_ACCEPTED,
    m::SUBMISSION_REFUSED,
    m::HISTORY_LAG,
    m::HISTORY_BACKLOG,
    m::HISTORY_WRITTEN,
    m::HISTORY_DROPPED,
    m::HISTORY_ERRORS,
];

fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("sluice_") {
        let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        out.insert(name);
    }
    out
}

fn exported(name: &str) -> bool {
    let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
    EXPORTED.contains(&name) || EXPORTED.contains(&base)
}

#[test]
fn dashboards_query_only_exported_metrics() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../grafana/dashboards");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let dashboard: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for panel in dashboard["panels"].as_array().unwrap() {
            // SQL panels read the PostgreSQL history (run for real in e2e/tests/history/dashboard.rs).
            for target in panel["targets"].as_array().unwrap().iter().filter(|t| t.get("rawSql").is_none()) {
                let expr = target["expr"].as_str().unwrap();
                let names = metric_names(expr);
                assert!(!names.is_empty(), "{}: panel {:?} queries no Sluice metric", path.display(), panel["title"]);
                for name in names {
                    assert!(exported(&name), "{}: {name} is not exported by the code", path.display());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn alert_rules_use_only_exported_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../grafana/alerts/sluice.rules.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc = yaml_rust2::YamlLoader::load_from_str(&text).unwrap().remove(0);
    let mut alerts = 0;
    for group in doc["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                assert!(exported(&name), "alert {:?}: {name} is not exported", rule["alert"].as_str());
            }
            assert!(rule["annotations"]["runbook"].as_str().is_some_and(|r| r.len() > 40), "every alert has a runbook");
            alerts += 1;
        }
    }
    assert!(alerts >= 7);
}
