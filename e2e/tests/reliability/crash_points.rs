//! What a crash at each exact step of a batch costs, through the real worker binary built with
//! the `failpoints` feature: the only duplicates come from a crash between the relay's 250 and
//! the recording of the outcome; nothing is ever lost.

use crate::common;

use std::time::Duration;

use common::Stack;

const PACED: &str = r#"
[limits.default]
rate = "10000/s"
burst = 10000

[limits.domains."paced.example"]
rate = "400/s"
burst = 50
connections = 16

# One batch in flight at a time, so each test sees exactly one crash point's effect.
[worker]
batch = 50
max_inflight = 50
reclaim_idle = "1s"
"#;

const N: usize = 600;

/// Runs a campaign with a first worker armed to crash at `point`, then a clean one.
/// Returns (lost, duplicates).
async fn crash_at(point: &str) -> (Vec<String>, usize) {
    let mut stack = common::start(PACED, 0).await;
    let recipients =
        (0..N).map(|i| serde_json::json!({"email": format!("u{i}@paced.example"), "vars": {"name": i}})).collect();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("crash", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let armed = format!("{point}=1*return");
    stack.add_worker_with(&[("FAILPOINTS", armed.as_str())]);
    let exit = stack.workers[0].wait_exit(Duration::from_secs(30)).unwrap_or_else(|| {
        let hint = "crash points need the worker built with them: `cargo build --workspace --all-features`";
        panic!("{point} never reached ({hint})\n{}", stack.logs())
    });
    assert_eq!(exit.code(), Some(86), "the worker crashed at {point}");
    assert!(stack.workers[0].log_text().contains(&format!("crash point {point} reached")));
    stack.add_worker();
    let done = stack.wait_status("crash", "completed", Duration::from_secs(60)).await;
    let c = common::counts(&done);
    assert_eq!((c["sent"], c["total"]), (N as u64, N as u64), "counts never double: {c:?}");
    outcome(&stack)
}

fn outcome(stack: &Stack) -> (Vec<String>, usize) {
    stack.losses_and_duplicates((0..N).map(|i| format!("u{i}@paced.example")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_250_and_record_resends_that_batch_only() {
    let (lost, dups) = crash_at("worker::before_record").await;
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!((1..=50).contains(&dups), "{dups} duplicates: the answered part of one batch (at most 50)");
    println!("before_record: {dups} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_record_and_ack_resends_nothing() {
    let (lost, dups) = crash_at("worker::before_ack").await;
    assert!(lost.is_empty(), "lost {lost:?}");
    assert_eq!(dups, 0, "recorded outcomes are never sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_the_middle_of_a_batch_resends_only_what_was_answered() {
    let (lost, dups) = crash_at("worker::mid_batch").await;
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!((1..=50).contains(&dups), "{dups} duplicates: answered, unrecorded sends of one batch");
    println!("mid_batch: {dups} duplicates");
}

/// A lane that fails (here a panic in its scheduling round, as a bug would) ends the whole
/// worker with exit code 1, for its supervisor to restart, instead of leaving half a worker
/// running that looks alive. The other worker keeps both lanes and delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_that_panics_ends_the_worker_for_a_restart() {
    let mut stack = common::start("", 1).await;
    for lane in ["bulk", "priority"] {
        let armed = format!("worker::{lane}_round=panic");
        let n = stack.add_worker_with(&[("FAILPOINTS", armed.as_str())]);
        let exit = stack.workers[n].wait_exit(Duration::from_secs(20)).unwrap_or_else(|| {
            panic!("a worker whose {lane} lane panicked kept running\n{}", stack.workers[n].log_text())
        });
        assert_eq!(exit.code(), Some(1), "{lane}: {}", stack.workers[n].log_text());
        assert!(stack.workers[n].log_text().contains(&format!("the {lane} lane stopped abnormally")));
    }
    stack.send_one_message("x@d.example").await;
}

/// The same for a scheduler: a part that fails (here a panic in an event pump shard) ends the
/// scheduler with exit code 1 instead of leaving the API up with the pump gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_part_that_panics_ends_the_scheduler_for_a_restart() {
    use sluice_testkit::{Process, bin_path, free_port};
    let stack = common::start("", 0).await;
    let listen = |port: u16| format!("127.0.0.1:{port}");
    let (api, metrics, public) = (listen(free_port()), listen(free_port()), listen(free_port()));
    let mut doomed = Process::spawn(
        "scheduler-doomed",
        &bin_path("sluice-scheduler"),
        &["--config", stack.config.to_str().unwrap()],
        &[
            ("FAILPOINTS", "scheduler::pump_round=panic"),
            ("SLUICE__SCHEDULER__NAME", "doomed"),
            ("SLUICE__API__LISTEN", &api),
            ("SLUICE__METRICS__LISTEN", &metrics),
            ("SLUICE__PUBLIC__LISTEN", &public),
        ],
    );
    let exit = doomed
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("a scheduler whose pump panicked kept running\n{}", doomed.log_text()));
    assert_eq!(exit.code(), Some(1), "{}", doomed.log_text());
    assert!(doomed.log_text().contains("the event pump stopped abnormally"), "{}", doomed.log_text());
}
