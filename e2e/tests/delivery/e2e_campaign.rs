//! The core promise, end to end through the real binaries: a 10,000-recipient campaign over
//! 50 domains through 2 workers; every deliverable recipient received exactly once, scripted
//! soft failures arrive on the third try, hard failures bounce and are suppressed (content
//! blocks fail without suppression), and the
//! campaign's counts match what the SMTP server saw.

use crate::common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_recipients_over_fifty_domains() {
    let stack = common::start(
        r#"
[limits.default]
rate = "100000/s"
burst = 100000
connections = 16

[retry]
schedule = ["1s"]
"#,
        2,
    )
    .await;
    // Of every 100 recipients, one soft-fails twice, one is unknown (5.1.1), one is blocked (5.7.1).
    let local = |i: usize| match i % 100 {
        7 => format!("soft2-u{i}"),
        57 => format!("hard-u{i}"),
        77 => format!("block-u{i}"),
        _ => format!("u{i}"),
    };
    let recipients = common::recipients(10_000, 50, local);
    let (status, body) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("big", recipients))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accepted"], 10_000);

    let done = stack.wait_status("big", "completed", Duration::from_secs(60)).await;
    let counts = common::counts(&done);
    let sink = &stack.sink.state;
    let delivered = sink.delivered.lock().unwrap().clone();

    let mut missing = Vec::new();
    let mut duplicated = Vec::new();
    for i in 0..10_000 {
        let address = format!("{}@d{}.example", local(i), i % 50);
        let got = delivered.get(&address).copied().unwrap_or(0);
        if i % 100 == 7 {
            assert_eq!(sink.attempts_for(&address), 3, "{address} arrives on the third try");
        }
        match i % 100 {
            57 | 77 => assert_eq!(got, 0, "{address} must bounce"),
            _ if got == 0 => missing.push(address),
            _ if got > 1 => duplicated.push(address),
            _ => {}
        }
    }
    assert!(missing.is_empty(), "never delivered: {:?}\n{}", &missing[..missing.len().min(10)], stack.logs());
    assert!(duplicated.is_empty(), "delivered twice: {duplicated:?}");

    assert_eq!(counts["total"], 10_000);
    assert_eq!(counts["sent"], sink.accepted(), "sent count matches what the SMTP server accepted");
    // The sink offers PIPELINING: MAIL, RCPT and DATA arrive as one group.
    let pipelined = sink.pipelined.load(std::sync::atomic::Ordering::Relaxed);
    assert!(pipelined * 2 > sink.accepted(), "{pipelined} of {} messages pipelined", sink.accepted());
    assert_eq!(counts["sent"], 9_800);
    assert_eq!(counts["bounced"], 100, "the unknown recipients");
    assert_eq!(counts["failed"], 100, "the content blocks");
    assert_eq!(counts["queued"] + counts["deferred"] + counts["staged"], 0, "{counts:?}");
    assert_eq!(counts["total"], counts["suppressed"] + counts["sent"] + counts["bounced"] + counts["failed"]);

    let (status, body) = stack.call("GET", "/v1/suppressions/hard-u57@d7.example", None).await;
    assert_eq!(status, 200, "hard bounce suppressed: {body}");
    assert_eq!(body["detail"]["enhanced"], "5.1.1");
    assert_eq!(body["detail"]["category"], "invalid_recipient", "{body}");
    // A content block (5.7.1 after DATA) fails but is not the recipient's fault.
    let (status, _) = stack.call("GET", "/v1/suppressions/block-u77@d27.example", None).await;
    assert_eq!(status, 404, "a spam block must not suppress the recipient");

    // Metrics: outcomes, a real latency histogram, claims; queue depth from the scheduler.
    let worker_metrics = format!("{}{}", stack.scrape(1).await, stack.scrape(2).await);
    for needle in [
        "sluice_messages_total{outcome=\"sent\",domain=\"other\"}",
        "sluice_smtp_latency_seconds_bucket{domain=\"other\",le=\"0.005\"}",
        "sluice_claims_total",
    ] {
        assert!(worker_metrics.contains(needle), "{needle} missing from worker metrics:\n{worker_metrics}");
    }
    let sent_metric: f64 = worker_metrics
        .lines()
        .filter(|l| l.starts_with("sluice_messages_total{outcome=\"sent\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(sent_metric as u64, 9_800);
    let scheduler_metrics = sluice_testkit::wait_for("scheduler gauges", Duration::from_secs(15), || async {
        let m = stack.scrape(0).await;
        let wanted = [
            "sluice_queue_depth{domain=\"other\"} 0",
            "sluice_queue_oldest_age_seconds{domain=\"other\"} 0",
            "sluice_live_workers 2",
            "sluice_redis_up 1",
            "sluice_campaign_recipients{campaign=\"big\",state=\"sent\"} 9800",
        ];
        wanted.iter().all(|w| m.lines().any(|l| l == *w)).then_some(m)
    })
    .await;
    assert!(scheduler_metrics.contains("sluice_campaigns_created_total"), "{scheduler_metrics}");

    // Recipient addresses never appear at info level.
    let logs = stack.logs();
    assert!(!logs.contains(".example"), "an address reached the logs:\n{logs}");
}
