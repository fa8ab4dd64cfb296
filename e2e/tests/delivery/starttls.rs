//! TLS to the relay against a real TLS server with a certificate made at test time: STARTTLS
//! on connections the worker opens itself (TCP_NODELAY socket handed to lettre), implicit TLS
//! (`tls = "tls"`), and a relay that does not offer STARTTLS defers the mail instead of
//! sending it in clear.

use crate::common;

use std::time::Duration;

use sluice_testkit::{self as testkit, RedisServer, smtp_sink::SmtpSink, wait_for};

const FAST_RETRY: &str = "[retry]\nschedule = [\"1s\"]\n";

/// Sends a 20-recipient campaign through `sink` and checks every message went over TLS.
async fn all_encrypted_through(sink: SmtpSink) {
    let stack = common::start_full(RedisServer::start(), sink, FAST_RETRY, 1).await;
    let recipients = common::recipients(20, 2, |i| format!("u{i}"));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("tls", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let done = stack.wait_status("tls", "completed", Duration::from_secs(30)).await;
    assert_eq!(common::counts(&done)["sent"], 20, "{done}");
    assert_eq!(stack.sink.state.accepted(), 20);
    let encrypted = stack.sink.state.accepted_encrypted.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(encrypted, 20, "every message went over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls() {
    all_encrypted_through(SmtpSink::start_starttls(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_implicit_tls() {
    all_encrypted_through(SmtpSink::start_implicit_tls(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_starttls_defers_instead_of_sending_in_clear() {
    // The worker is told to use STARTTLS (the stack sees a certificate), but this relay is a
    // plain one that does not offer it.
    let mut sink = SmtpSink::start(false).await;
    sink.ca_pem = SmtpSink::start_starttls(false).await.ca_pem.clone();
    let stack = common::start_full(RedisServer::start(), sink, FAST_RETRY, 1).await;
    let recipients = common::recipients(5, 1, |i| format!("u{i}"));
    let (status, _) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("clear", recipients))).await;
    assert_eq!(status, 201);
    let c = wait_for("deferrals", Duration::from_secs(20), || async {
        let c = common::counts(&stack.campaign("clear").await);
        (c["deferred"] == 5).then_some(c)
    })
    .await;
    assert_eq!(c["sent"] + c["failed"] + c["bounced"], 0, "{c:?}");
    assert_eq!(stack.sink.state.accepted(), 0, "nothing may go out unencrypted");
}

/// Relay AUTH over `tls = "none"` would put the password on the wire in the clear: the worker
/// refuses to start, naming the key, unless the relay says `allow_plaintext_auth = true`, and
/// then it warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_auth_in_the_clear_is_refused_unless_allowed() {
    let redis = RedisServer::start();
    let relay =
        "[[smtp.relays]]\nhost = \"127.0.0.1\"\nport = 2525\nusername = \"crm\"\npassword = \"hunter2-secret\"\n";
    let config = |extra: &str| {
        let path = std::env::temp_dir().join(format!("sluice-auth-{}-{}.toml", std::process::id(), extra.len()));
        let text =
            testkit::config_toml(&redis.url(), testkit::free_port(), testkit::free_port(), "t-0123456789", extra);
        std::fs::write(&path, text).unwrap();
        path
    };
    let refused = config(relay);
    let out =
        std::process::Command::new(testkit::bin_path("sluice-worker")).arg("--config").arg(&refused).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("smtp.relays[0].username") && stderr.contains("in the clear"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");

    let allowed = config(&format!("{relay}allow_plaintext_auth = true\n"));
    let cfg = allowed.to_str().unwrap();
    let mut worker = testkit::Process::spawn("worker", &testkit::bin_path("sluice-worker"), &["--config", cfg], &[]);
    wait_for("the plaintext AUTH warning", Duration::from_secs(20), || async {
        worker.log_text().contains("the password crosses the network in the clear").then_some(())
    })
    .await;
    assert!(!worker.log_text().contains("hunter2"));
    assert!(worker.is_running());
}
