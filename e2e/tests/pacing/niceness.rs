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

/// The niceness of every thread of `pid` called `name`; waits until at least one exists.
async fn niceness_of(pid: u32, name: &str) -> Vec<i32> {
    sluice_testkit::wait_for(&format!("thread {name} of {pid}"), Duration::from_secs(10), || async {
        let nice: Vec<i32> = threads(pid).into_iter().filter(|(n, _)| n == name).map(|(_, nice)| nice).collect();
        (!nice.is_empty()).then_some(nice)
    })
    .await
}

/// The niceness the process started with (its main thread's).
fn base_of(pid: u32) -> i32 {
    threads(pid).into_iter().find(|(name, _)| name.starts_with("sluice-")).expect("main thread").1
}

fn all(nice: &[i32], expected: i32) -> bool {
    nice.iter().all(|&n| n == expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_threads_run_nicer_than_the_priority_lane_and_the_api() {
    let mut stack = common::start("", 1).await;
    let shifted = stack.add_worker_with(&[("SLUICE__WORKER__BULK_NICENESS", "12")]);
    let off = stack.add_worker_with(&[("SLUICE__WORKER__BULK_NICENESS", "0")]);
    // What tokio names the threads of a runtime built without a name.
    const RUNTIME: &str = "tokio-rt-worker";

    let scheduler = stack.scheduler.pid();
    let base = base_of(scheduler);
    let bulk = niceness_of(scheduler, RUNTIME).await;
    assert!(all(&bulk, (base + 5).min(19)), "scheduler's runtime threads {bulk:?}, started at {base}");
    for name in ["api", "api-worker"] {
        let nice = niceness_of(scheduler, name).await;
        assert!(all(&nice, base), "scheduler's {name} threads {nice:?}, started at {base}");
    }

    for (worker, by) in [(0, 5), (shifted, 12), (off, 0)] {
        let pid = stack.workers[worker].pid();
        let base = base_of(pid);
        let bulk = niceness_of(pid, RUNTIME).await;
        assert!(all(&bulk, (base + by).min(19)), "worker {worker}'s runtime threads {bulk:?}, started at {base}");
        let lane = niceness_of(pid, "priority-lane").await;
        assert!(all(&lane, base), "worker {worker}'s priority lane {lane:?}, started at {base}");
    }

    // Both lanes still deliver.
    let (status, msg) = stack
        .call(
            "POST",
            "/v1/messages",
            Some(serde_json::json!({"from": "a@shop.example", "to": "x@d.example", "subject": "s", "text": "t"})),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    stack.wait_message(msg["id"].as_str().unwrap(), "sent", Duration::from_secs(10)).await;
    let body = common::campaign_body("nice", common::recipients(20, 2, |i| format!("u{i}")));
    let (status, body) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    stack.wait_status("nice", "completed", Duration::from_secs(20)).await;
}
