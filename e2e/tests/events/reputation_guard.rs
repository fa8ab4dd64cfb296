//! The reputation guard through the real binaries: a campaign whose recipients hard-bounce at
//! 6% pauses by itself once the sample is large enough, with the reason; a `campaign_paused`
//! event reaches a webhook; the From domain's rates show in `GET /v1/senders/{domain}`; the
//! campaign stays paused until an operator resumes it, and then sends again.

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};
use sluice_testkit::wait_for;

const RECIPIENTS: usize = 1000;

/// `sluice doctor shop.example` against the stack's API and an empty local DNS server.
async fn doctor(stack: &common::Stack) -> String {
    let dns = sluice_testkit::dns_server::DnsServer::start(vec![]).await;
    let (config, api, nameserver) = (stack.config.clone(), stack.api.clone(), dns.nameserver());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(sluice_testkit::bin_path("sluice"))
            .env("SLUICE_API_URL", api)
            .env("SLUICE_TOKEN", common::TOKEN)
            .arg("--config")
            .arg(config)
            .args(["doctor", "shop.example", "--nameserver", &nameserver])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_bouncing_past_the_threshold_pauses_itself_until_resumed() {
    let (url, received) = crate::webhooks::receiver(0).await;
    let extra = format!(
        "[reputation]\nwindow = 200\nmin_sample = 50\n\n[limits.default]\nrate = \"200/s\"\nburst = 20\n\n\
         [webhooks]\nallow_http = true\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [[webhooks.endpoints]]\nid = \"ops\"\nurl = \"{url}\"\nsecret = \"whsec-0123456789abcdef\"\nevents = [\"campaign_paused\"]\n"
    );
    let stack = common::start(&extra, 1).await;
    // Every 17th address does not exist: 59 of 1,000, about 6%.
    let recipients: Vec<Value> = (0..RECIPIENTS)
        .map(|i| {
            let local = if i % 17 == 0 { format!("hard-{i}") } else { format!("u{i}") };
            json!({"email": format!("{local}@d0.example"), "vars": {"name": "N"}})
        })
        .collect();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("risky", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let paused = stack.wait_status("risky", "paused", Duration::from_secs(30)).await;
    let reason = paused["paused_reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("hard-bounce rate ") && reason.contains("% over the last "), "{paused}");
    let counts = common::counts(&paused);
    assert!(counts["sent"] + counts["bounced"] < RECIPIENTS as u64, "paused before the end: {paused}");

    // The event, in the events API and at the webhook.
    let (_, events) = stack.call("GET", "/v1/events?campaign=risky&type=campaign_paused", None).await;
    let items = events["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{events}");
    assert_eq!(items[0]["data"]["reason"], reason.as_str());
    wait_for("the webhook", Duration::from_secs(20), || async {
        let log = received.lock().unwrap();
        log.iter().any(|(_, body, _)| String::from_utf8_lossy(body).contains("campaign_paused")).then_some(())
    })
    .await;

    // The sender's rates.
    let (status, sender) = stack.call("GET", "/v1/senders/shop.example", None).await;
    assert_eq!(status, 200, "{sender}");
    assert_eq!(sender["status"], "pause", "{sender}");
    assert!(sender["rates_percent"]["hard_bounce"].as_f64().unwrap() >= 5.0, "{sender}");
    assert!(sender["providers"]["other"]["counts"]["attempts"].as_u64().unwrap() > 0, "{sender}");
    let (status, _) = stack.call("GET", "/v1/senders/nobody.example", None).await;
    assert_eq!(status, 404);
    let doctor = doctor(&stack).await;
    assert!(
        doctor.lines().any(|l| l.starts_with("FAIL  guard") && l.contains("hard-bounce rate")),
        "sluice doctor flags the tripped guard:\n{doctor}"
    );

    // Only an operator's resume sends again; the guard then starts its counts over.
    let still = stack.campaign("risky").await;
    assert_eq!(still["status"], "paused", "{still}");
    let attempted = common::counts(&still)["sent"] + common::counts(&still)["bounced"];
    let (status, reply) = stack.call("POST", "/v1/campaigns/risky/resume", None).await;
    assert_eq!(status, 200, "{reply}");
    let resumed = stack.campaign("risky").await;
    assert!(resumed["paused_reason"].is_null(), "a resume clears the reason: {resumed}");
    wait_for("sending again after the resume", Duration::from_secs(20), || async {
        let c = common::counts(&stack.campaign("risky").await);
        (c["sent"] + c["bounced"] >= attempted + 40).then_some(())
    })
    .await;
    let metrics = stack.scrape(1).await;
    assert!(common::sample(&metrics, "sluice_reputation_pauses_total").unwrap_or(0.0) >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_past_the_threshold_pause_a_running_campaign() {
    use crate::inbound_reports::{fixture, head, header};
    let extra = "[bounces]\nreturn_path_domain = \"bounces.shop.example\"\n\n[reputation]\nwindow = 200\nmin_sample = 10\n\n\
                 [limits.default]\nrate = \"20/s\"\nburst = 5\n";
    let stack = common::start_with(extra, 1, true).await;
    let recipients = common::recipients(400, 1, |i| format!("u{i}"));
    let (status, reply) =
        stack.call("POST", "/v1/campaigns", Some(common::campaign_body("annoying", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_accepted(12).await;
    // One recipient of the first dozen complains: 1 in about 12 deliveries, far past 0.3%.
    let first = stack.sink.state.messages.lock().unwrap()[0].clone();
    let raw = String::from_utf8_lossy(&first.1).into_owned();
    let verp = header(&raw, "Return-Path").trim_matches(['<', '>']).to_string();
    let arf = fixture("arf_redacted.eml").replace("{{VERP}}", &verp).replace("{{ORIGINAL_REDACTED}}\r\n", head(&raw));
    let (status, body) = stack.post_raw("/v1/inbound", arf).await;
    assert_eq!((status, body["outcomes"][0]["event"].as_str()), (200, Some("complained")), "{body}");
    let paused = stack.wait_status("annoying", "paused", Duration::from_secs(20)).await;
    let reason = paused["paused_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("complaint rate "), "{paused}");
    assert!(common::counts(&paused)["sent"] < 400, "paused while sending: {paused}");
}
