//! Redis Sentinel through the real binaries: a master with one replica behind three
//! sentinels. The master is killed with -9; once the sentinels promote the replica, the
//! scheduler and the worker follow it by themselves (a new campaign runs end to end), and
//! when the old master comes back the sentinels make it a replica that Sluice never writes to.

use crate::common;

use std::time::Duration;

use sluice_testkit::{RedisSentinel, TestRedis, wait_for};

fn deployment(stack: &mut common::Stack) -> &mut RedisSentinel {
    match &mut stack.redis {
        TestRedis::Sentinel(s) => s,
        _ => unreachable!("this test starts a Sentinel deployment"),
    }
}

/// A campaign of 60 to 3 domains runs to completion and every recipient is delivered. Until
/// every sentinel names the new master, the API may answer 503 (retry later), as documented.
async fn campaign_completes(stack: &common::Stack, id: &str) {
    let recipients = common::recipients(60, 3, |i| format!("{id}-{i}"));
    let body = common::campaign_body(id, recipients);
    // A 503 may come after the campaign was stored (its audit record failed): the retry then
    // finds it there, as a client retrying after a 503 would.
    let refused = std::sync::atomic::AtomicBool::new(false);
    wait_for("the campaign to be accepted", Duration::from_secs(20), || async {
        let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body.clone())).await;
        let stored_before = status == 409 && refused.load(std::sync::atomic::Ordering::SeqCst);
        assert!(status == 201 || status == 503 || stored_before, "{status} {reply}\n{}", stack.logs());
        refused.fetch_or(status == 503, std::sync::atomic::Ordering::SeqCst);
        (status == 201 || stored_before).then_some(())
    })
    .await;
    let done = stack.wait_status(id, "completed", Duration::from_secs(40)).await;
    assert_eq!(common::counts(&done)["sent"], 60, "{done}");
    let (lost, _) = stack.losses_and_duplicates((0..60).map(|i| format!("{id}-{i}@d{}.example", i % 3)));
    assert!(lost.is_empty(), "{id}: never delivered: {lost:?}");
}

fn role(conn: &mut redis::Connection) -> Option<String> {
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(conn).ok()?;
    match role.first()? {
        redis::Value::BulkString(kind) => Some(String::from_utf8_lossy(kind).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_follows_the_master_the_sentinels_promote_and_leaves_the_old_one_alone() {
    let redis = TestRedis::Sentinel(Box::new(RedisSentinel::start(true)));
    let mut stack = common::start_on(redis, "", 1, false).await;
    campaign_completes(&stack, "before").await;

    let sentinel = deployment(&mut stack);
    let synced: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut sentinel.master.conn()).unwrap();
    assert_eq!(synced, 1, "the replica has every write before the kill");
    let (old, promoted) = (sentinel.master.port, sentinel.replica.port);
    sentinel.master.stop();
    let sentinel = deployment(&mut stack);
    wait_for("the sentinels to promote the replica", Duration::from_secs(30), || async {
        (sentinel.master_port() == Some(promoted)).then_some(())
    })
    .await;
    campaign_completes(&stack, "after").await;

    let sentinel = deployment(&mut stack);
    sentinel.master.restart();
    wait_for("the old master to rejoin as a replica", Duration::from_secs(30), || async {
        (role(&mut sentinel.master.conn()).as_deref() == Some("slave")).then_some(())
    })
    .await;
    assert_eq!(sentinel.master_port(), Some(promoted), "port {old} stays a replica");
    campaign_completes(&stack, "rejoined").await;
    let sentinel = deployment(&mut stack);
    let clients: String =
        redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("normal").query(&mut sentinel.master.conn()).unwrap();
    let sluice = clients.lines().filter(|l| !l.contains(" name=sentinel-") && !l.contains("cmd=client|list")).count();
    assert_eq!(sluice, 0, "no Sluice connection to the demoted master:\n{clients}");
}
