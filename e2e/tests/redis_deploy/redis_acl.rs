//! The scheduler and the worker run under the least-privilege Redis users of
//! `docker/redis-acl.txt` (applied here exactly as written): a campaign with bounces and a
//! retry, and a transactional message from a stored template, complete with no permission
//! error, and the worker's user cannot create campaigns
//! through the intake stream nor read anything outside Sluice's keys.

use crate::common;

use std::time::Duration;

use serde_json::json;
use sluice_testkit::{TestRedis, smtp_sink::SmtpSink};

/// (role, rules) from the documented file.
fn documented_rules() -> Vec<(String, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/redis-acl.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace().map(String::from);
            (words.next().unwrap(), words.collect())
        })
        .collect()
}

/// `url` (or each seed, or the master's login beside the sentinels) with the role's user and password.
fn as_user(redis: &TestRedis, role: &str) -> (&'static str, String) {
    let with = |url: String| url.replacen("redis://", &format!("redis://sluice-{role}:pw-{role}@"), 1);
    match redis {
        TestRedis::Single(s) => ("SLUICE__REDIS__URL", with(s.url())),
        TestRedis::Sentinel(_) => (
            "SLUICE__REDIS__URL",
            format!("redis://sluice-{role}:pw-{role}@{}/0", sluice_testkit::SENTINEL_MASTER_NAME),
        ),
        TestRedis::Cluster(c) => {
            ("SLUICE__REDIS__SEEDS", c.nodes.iter().map(|n| with(n.url())).collect::<Vec<_>>().join(","))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_binaries_run_under_their_documented_acl_users() {
    let redis = TestRedis::start();
    for mut node in redis.each_node() {
        for (role, rules) in documented_rules() {
            let mut setuser = redis::cmd("ACL");
            setuser.arg("SETUSER").arg(format!("sluice-{role}")).arg("on").arg(format!(">pw-{role}")).arg(&rules);
            let () = setuser.query(&mut node).unwrap_or_else(|e| panic!("{role}: {e}"));
        }
    }
    let (scheduler_key, scheduler_url) = as_user(&redis, "scheduler");
    let (worker_key, worker_url) = as_user(&redis, "worker");
    let extra = "[retry]\nschedule = [\"1s\"]\n\n[limits.default]\nrate = \"1000/s\"\nburst = 1000\n";
    let mut stack = common::start_roles(
        redis,
        SmtpSink::start(false).await,
        extra,
        0,
        &[(scheduler_key, &scheduler_url)],
        &[(worker_key, &worker_url)],
    )
    .await;
    stack.add_worker();
    let recipients = common::recipients(60, 3, |i| match i % 10 {
        0 => format!("hard-{i}"),
        1 => format!("soft1-{i}"),
        2 => format!("block-{i}"),
        _ => format!("u{i}"),
    });
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("acl", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let done = stack.wait_status("acl", "completed", Duration::from_secs(40)).await;
    let counts = common::counts(&done);
    let outcomes = (counts["sent"], counts["bounced"], counts["failed"]);
    assert_eq!(outcomes, (48, 6, 6), "{counts:?}\n{}", stack.logs());
    // A transactional message takes the priority lane, with its own queues.
    let template = json!({"subject": "Code for {{name}}", "text": "Code {{code}}"});
    let (status, body) = stack.call("PUT", "/v1/templates/code", Some(template)).await;
    assert_eq!(status, 201, "{body}");
    let message = json!({"from": "account@shop.example", "to": "ann@x.example", "template": "code", "vars": {"name": "Ann", "code": "1"}});
    let (status, _, sent) =
        stack.call_with("POST", "/v1/messages", Some(message), &[("Idempotency-Key", "acl-1")]).await;
    assert_eq!(status, 202, "{sent}");
    stack.wait_message(sent["id"].as_str().unwrap(), "sent", Duration::from_secs(20)).await;
    let logs = stack.logs();
    let denied = logs.contains("NOPERM") || logs.contains("no permissions");
    let acl_log: Vec<redis::Value> = stack
        .redis
        .each_node()
        .iter_mut()
        .flat_map(|n| redis::cmd("ACL").arg("LOG").query::<Vec<redis::Value>>(n).unwrap())
        .collect();
    assert!(!denied && acl_log.is_empty(), "a permission the documented users lack: {acl_log:?}\n{logs}");
    assert!(!logs.contains("pw-scheduler") && !logs.contains("pw-worker"), "a Redis password in a log line:\n{logs}");

    // What the worker's user may not do.
    let worker =
        redis::Client::open(format!("redis://sluice-worker:pw-worker@127.0.0.1:{}/0", stack.redis.port())).unwrap();
    let mut conn = worker.get_connection().unwrap();
    let refused = |e: redis::RedisError| e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm);
    let intake: redis::RedisResult<String> =
        redis::cmd("XADD").arg("sluice:intake").arg("*").arg("campaign").arg("{}").query(&mut conn);
    assert!(intake.is_err_and(refused), "the worker cannot create campaigns");
    let other: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("not-sluice").query(&mut conn);
    assert!(other.is_err_and(refused), "nor read keys outside Sluice's");
    let flush: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut conn);
    assert!(flush.is_err_and(refused), "nor run dangerous commands");
}
