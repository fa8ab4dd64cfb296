//! A relay that refuses connections defers the mail (a connection failure is the
//! destination's problem, not the recipient's); once it is back, everything is delivered once.

use crate::common;

use std::time::Duration;

use sluice_testkit::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_relay_defers_and_recovery_delivers_everyone_once() {
    let stack = common::start(
        r#"
[limits.default]
rate = "10000/s"
burst = 10000

[retry]
schedule = ["1s"]
max_age = "1h"
"#,
        2,
    )
    .await;
    stack.sink.state.set_refusing(true);
    let recipients = common::recipients(500, 5, |i| format!("u{i}"));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("down", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let deferred = wait_for("deferrals while the relay refuses", Duration::from_secs(20), || async {
        let c = common::counts(&stack.campaign("down").await);
        (c["deferred"] > 0).then_some(c)
    })
    .await;
    assert_eq!(deferred["bounced"] + deferred["failed"] + deferred["sent"], 0, "{deferred:?}");
    let mut conn = stack.redis.conn();
    let events: Vec<(String, std::collections::HashMap<String, String>)> =
        redis::cmd("XRANGE").arg("sluice:{c:down}:events").arg("-").arg("+").query(&mut conn).unwrap();
    let first_outcome = events.iter().map(|(_, f)| f).find(|f| f["type"] != "queued").unwrap();
    assert_eq!(first_outcome["type"], "deferred", "{first_outcome:?}");

    stack.sink.state.set_refusing(false);
    let done = stack.wait_status("down", "completed", Duration::from_secs(60)).await;
    let c = common::counts(&done);
    assert_eq!(c["sent"], 500, "{c:?}");
    let delivered = stack.sink.state.delivered.lock().unwrap();
    assert_eq!(delivered.len(), 500);
    assert!(delivered.values().all(|n| *n == 1));
}
