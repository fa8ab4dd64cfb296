//! Any number of schedulers may run: after a kill -9 of one, the others do all its work
//! (expansion, retries, intake it had read) within `scheduler.reclaim_idle`.

use crate::common;

use std::time::Duration;

use sluice_testkit::wait_for;

const CONFIG: &str = r#"
[limits.default]
rate = "2000/s"
burst = 200

[scheduler]
expand_chunk = 100
expand_window = 300
reclaim_idle = "1s"

[retry]
schedule = ["1s"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_scheduler_leaves_nothing_undone() {
    let mut stack = common::start(CONFIG, 2).await;
    let mut second = stack.add_scheduler_with("scheduler-b", &[]).await;
    let local = |i: usize| if i % 50 == 3 { format!("soft1-u{i}") } else { format!("u{i}") };
    let recipients = common::recipients(3_000, 10, local);
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("ha", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_accepted(300).await;
    // The first scheduler dies mid-campaign; the second one expands the rest and retries.
    stack.scheduler.kill();
    let done = stack.wait_status("ha", "completed", Duration::from_secs(60)).await;
    let (lost, dups) = stack.losses_and_duplicates((0..3_000).map(|i| format!("{}@d{}.example", local(i), i % 10)));
    assert!(lost.is_empty(), "lost {} e.g. {:?}\n{}", lost.len(), &lost[..lost.len().min(5)], stack.logs());
    assert_eq!(dups, 0);
    let c = common::counts(&done);
    assert_eq!(c["sent"], 3_000, "{c:?}");
    assert!(second.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_entries_held_by_a_dead_scheduler_are_taken_over() {
    let mut stack = common::start(CONFIG, 1).await;
    stack.scheduler.kill();
    let mut doomed =
        stack.add_scheduler_with("scheduler-doomed", &[("FAILPOINTS", "scheduler::intake_read=return")]).await;
    let body = common::campaign_body("from-intake", common::recipients(50, 5, |i| format!("u{i}"))).to_string();
    let mut conn = stack.redis.conn();
    let _: String =
        redis::cmd("XADD").arg("sluice:intake").arg("*").arg("campaign").arg(&body).query(&mut conn).unwrap();
    let exit = doomed.wait_exit(Duration::from_secs(10)).expect("the scheduler died after reading the entry");
    assert_eq!(exit.code(), Some(86));
    let pending: Vec<redis::Value> =
        redis::cmd("XPENDING").arg("sluice:intake").arg("schedulers").query(&mut conn).unwrap();
    assert_eq!(
        redis::from_redis_value_ref::<u64>(&pending[0]).unwrap(),
        1,
        "the entry is pending to the dead scheduler"
    );
    let mut rescuer = stack.add_scheduler_with("scheduler-rescuer", &[]).await;
    stack.wait_status("from-intake", "completed", Duration::from_secs(20)).await;
    let (lost, dups) = stack.losses_and_duplicates((0..50).map(|i| format!("u{i}@d{}.example", i % 5)));
    assert!(lost.is_empty() && dups == 0, "lost {lost:?}, {dups} duplicates");
    wait_for("the intake entry acked", Duration::from_secs(5), || {
        let mut conn = stack.redis.conn();
        async move {
            let p: Vec<redis::Value> =
                redis::cmd("XPENDING").arg("sluice:intake").arg("schedulers").query(&mut conn).unwrap();
            (redis::from_redis_value_ref::<u64>(&p[0]).unwrap() == 0).then_some(())
        }
    })
    .await;
    assert!(rescuer.terminate().success());
}
