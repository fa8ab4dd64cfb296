//! Bulk threads run nicer than latency-critical ones, in the real binaries: the kernel gives
//! the worker's priority lane and the scheduler's admin API the CPU first when the cores are
//! busy (scripts/bench-latency.sh measures what it is worth).

use crate::common;

use std::time::Duration;

/// Each thread of process `pid`: its name and niceness, from /proc.
fn threads(pid: u32) -> Vec<(String, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let (Ok(name), Ok(stat)) =
            (std::fs::read_to_string(task.path().join("comm")), std::fs::read_to_string(task.path().join("stat")))
        else {
            continue; // the thread ended meanwhile
        };
        // The fields after the name (which may hold spaces or parentheses): state is the 3rd
        // field of stat, niceness the 19th.
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        let nice = after_name.split_whitespace().nth(16).unwrap().parse().unwrap();
        found.push((name.trim().to_string(), nice));
    }
    found
}

/// Waits until `pid` has threads called `name` and every one is at niceness `expected` (a
/// thread just started runs at its creator's until tokio's start hook has run in it).
async fn settle(pid: u32, name: &str, expected: i32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let nice: Vec<i32> = threads(pid).into_iter().filter(|(n, _)| n == name).map(|(_, nice)| nice).collect();
        if !nice.is_empty() && nice.iter().all(|&n| n == expected) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "threads {name} of {pid} at {nice:?}, not {expected}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The niceness the process started with (its main thread's), once it runs our binary (a
/// process just spawned may not have reached exec yet).
async fn base_of(pid: u32) -> i32 {
    sluice_testkit::wait_for(&format!("the main thread of {pid}"), Duration::from_secs(10), || async {
        threads(pid).into_iter().find(|(name, _)| name.starts_with("sluice-")).map(|(_, nice)| nice)
    })
    .await
}

/// What tokio names the threads of a runtime built without a name (its blocking threads too).
const RUNTIME: &str = "tokio-rt-worker";

/// Every thread of the stack at its niceness: the scheduler's runtime threads 5 above its
/// main thread, its API threads at it; each worker's runtime threads `by` above, its priority
/// lane at it.
async fn check(stack: &common::Stack, workers: &[(usize, i32)]) {
    let scheduler = stack.scheduler.pid();
    let base = base_of(scheduler).await;
    settle(scheduler, RUNTIME, (base + 5).min(19)).await;
    settle(scheduler, "api", base).await;
    settle(scheduler, "api-worker", base).await;
    for &(worker, by) in workers {
        let pid = stack.workers[worker].pid();
        let base = base_of(pid).await;
        settle(pid, RUNTIME, (base + by).min(19)).await;
        settle(pid, "priority-lane", base).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_threads_run_nicer_than_the_priority_lane_and_the_api() {
    let mut stack = common::start("", 1).await;
    let shifted = stack.add_worker_with(&[("SLUICE__WORKER__BULK_NICENESS", "12")]);
    let off = stack.add_worker_with(&[("SLUICE__WORKER__BULK_NICENESS", "0")]);
    let workers = [(0, 5), (shifted, 12), (off, 0)];
    check(&stack, &workers).await;

    // Both lanes still deliver; the threads started meanwhile (tokio's blocking threads, by
    // nicer ones) are no nicer than the rest.
    stack.send_one_message("x@d.example").await;
    let body = common::campaign_body("nice", common::recipients(20, 2, |i| format!("u{i}")));
    let (status, body) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    stack.wait_status("nice", "completed", Duration::from_secs(20)).await;
    check(&stack, &workers).await;
}
