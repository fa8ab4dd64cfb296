//! A job that keeps killing its worker goes to the dead-letter stream once it was handed out
//! more than `worker.max_deliveries` times, instead of looping forever; the campaign still
//! completes, and the job can be listed and requeued through the API.

use crate::common;

use std::time::Duration;

const CONFIG: &str = r#"
[limits.default]
rate = "10000/s"
burst = 10000

[worker]
max_deliveries = 3
reclaim_idle = "1s"

[retry]
schedule = ["1s"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_kills_its_worker_is_dead_lettered_and_can_be_requeued() {
    let mut stack = common::start(CONFIG, 0).await;
    let recipients = vec![serde_json::json!({"email": "poison-1@p.example", "vars": {"name": "P"}})];
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("pz", recipients))).await;
    assert_eq!(status, 201, "{reply}");

    // Workers armed to die whenever they are about to send to poison-*: each one dies,
    // the next takes the job over, until its delivery count passes the limit.
    let mut crashes = 0;
    let dead = loop {
        assert!(crashes <= 6, "still looping after {crashes} crashes\n{}", stack.logs());
        let w = stack.add_worker_with(&[("FAILPOINTS", "worker::before_send=return(poison)")]);
        let stack_ref = &stack;
        let found = sluice_testkit::wait_for("a crash or a dead letter", Duration::from_secs(20), || {
            let exited = stack_ref.workers[w].log_text().contains("crash point");
            async move {
                let (_, list) = stack_ref.call("GET", "/v1/dead-letters", None).await;
                if !list["items"].as_array().unwrap().is_empty() {
                    Some(Some(list))
                } else if exited {
                    Some(None)
                } else {
                    None
                }
            }
        })
        .await;
        match found {
            Some(list) => break list,
            None => {
                assert!(stack.workers[w].wait_exit(Duration::from_secs(5)).is_some());
                crashes += 1;
            }
        }
    };
    assert_eq!(crashes, 3, "one crash per delivery up to max_deliveries");
    let item = &dead["items"][0];
    assert_eq!(
        (item["recipient"].as_str(), item["campaign"].as_str()),
        (Some("poison-1@p.example"), Some("pz")),
        "{dead}"
    );
    assert!(item["deliveries"].as_u64().unwrap() > 3, "{dead}");

    assert_eq!(dead["items"].as_array().unwrap().len(), 1, "{dead}");
    let done = stack.wait_status("pz", "completed", Duration::from_secs(30)).await;
    let c = common::counts(&done);
    assert_eq!((c["sent"], c["failed"]), (0, 1), "a dead letter counts as failed until requeued: {c:?}");
    // The armed worker that met no poison keeps working: other mail flows.
    let others = common::recipients(20, 2, |i| format!("u{i}"));
    let (status, _) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("ok", others))).await;
    assert_eq!(status, 201);
    stack.wait_status("ok", "completed", Duration::from_secs(30)).await;

    // Requeue with a healthy worker: the job is delivered once and the counts follow.
    for w in &mut stack.workers {
        w.kill();
    }
    stack.add_worker();
    let id = item["id"].as_str().unwrap().to_string();
    let (status, reply) = stack.call("POST", &format!("/v1/dead-letters/{id}/requeue"), None).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("requeued")), "{reply}");
    sluice_testkit::wait_for("the requeued job", Duration::from_secs(30), || async {
        (stack.sink.state.delivered_to("poison-1@p.example") == 1).then_some(())
    })
    .await;
    let done = stack.wait_status("pz", "completed", Duration::from_secs(30)).await;
    let c = common::counts(&done);
    assert_eq!((c["sent"], c["failed"], c["total"]), (1, 0, 1), "{c:?}");
    let (status, _) = stack.call("POST", &format!("/v1/dead-letters/{id}/requeue"), None).await;
    assert_eq!(status, 404, "a requeued dead letter is gone");
    let (status, _) = stack.call("GET", "/v1/dead-letters?limit=0", None).await;
    assert_eq!(status, 422);
}
