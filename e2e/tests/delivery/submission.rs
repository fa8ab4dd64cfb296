//! SMTP submission through the real binaries and real clients: Python's smtplib (STARTTLS then
//! AUTH PLAIN on 587, implicit TLS on 465, both verifying the server against a CA made at test
//! time) and swaks (AUTH LOGIN). Each message arrives at the sink DKIM-signed (verified by
//! dkimpy), its MIME as given but for Bcc and our fields, and `GET /v1/messages/{id}` shows it
//! sent with the tags and metadata the client set. Then every refusal the listener owes.

use crate::{common, dkim};

use std::{path::Path, process::Command, time::Duration};

use serde_json::{Value, json};
use sluice_testkit::{TestRedis, api_key_toml, free_port, smtp_sink::SmtpSink, test_ca::TestCa};

pub const KEY: (&str, &str) = ("crm", "crm-token-0123456789");
const READER: (&str, &str) = ("reader", "reader-token-0123456789");

/// A stack with both submission ports, a DKIM key for shop.example (and no sending without
/// one), and two keys: `crm` may send, `reader` may not. Returns the stack, the two ports,
/// the CA file and the DKIM record.
pub async fn stack(extra: &str) -> (common::Stack, u16, u16, TestCa, (String, String)) {
    let ca = TestCa::new("submission");
    let server = ca.issue("submission", &["127.0.0.1", "localhost"]);
    let (starttls, implicit) = (free_port(), free_port());
    let dkim_key = ca.dir.join("dkim.pem");
    let record = ("s1._domainkey.shop.example".to_string(), dkim::make_key(&dkim_key, "rsa"));
    let config = format!(
        "[submission]\nlisten = \"127.0.0.1:{starttls}\"\nlisten_tls = \"127.0.0.1:{implicit}\"\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"\nmax_recipients = 3\nmax_message_bytes = 20000\n{extra}\n\n\
         [[dkim.keys]]\ndomain = \"shop.example\"\nselector = \"s1\"\nkey_file = \"{}\"\n\n{}\n{}",
        server.cert.display(),
        server.key.display(),
        dkim_key.display(),
        api_key_toml(KEY.0, KEY.1, "\"send\""),
        api_key_toml(READER.0, READER.1, "\"campaigns:read\""),
    );
    let refuse = [("SLUICE__DKIM__MISSING_KEY", "refuse")];
    let stack =
        common::start_roles(TestRedis::start_with_aof(true), SmtpSink::start(true).await, &config, 1, &refuse, &refuse)
            .await;
    (stack, starttls, implicit, ca, record)
}

/// Runs `submission_client.py` with `args`; returns its replies.
pub fn smtplib(args: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/delivery/submission_client.py");
    let out = Command::new("/usr/bin/python3").arg(script).arg(args.to_string()).output().expect("python3");
    assert!(out.status.success(), "smtplib client: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The message id in a `250 2.0.0 Ok: queued as msg_...` reply.
pub fn queued_id(reply: &Value) -> String {
    assert_eq!(reply[0], 250, "{reply}");
    let text = reply[1].as_str().unwrap();
    text.rsplit_once("queued as ").map(|(_, id)| id.trim().to_string()).unwrap_or_else(|| panic!("{text}"))
}

/// The copy the sink kept for `rcpt`, as text.
fn kept_for(stack: &common::Stack, rcpt: &str) -> Vec<u8> {
    let messages = stack.sink.state.messages.lock().unwrap();
    messages.iter().find(|(r, _)| r == rcpt).map(|(_, m)| m.clone()).unwrap_or_else(|| panic!("nothing for {rcpt}"))
}

fn headers_of(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.split("\r\n\r\n").next().unwrap().to_string()
}

const ORDER: &str = "From: Shop <orders@shop.example>\r\nTo: ann@x.example\r\nBcc: bob@y.example\r\n\
    Subject: Your order\r\nX-Sluice-Tags: receipt, eu\r\nX-Sluice-Metadata: {\"order\": 7}\r\n\
    MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
    Thank you for your order.\r\n.A line that starts with a dot.\r\nCaf\u{e9}\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_submit_and_their_mail_arrives_signed() {
    let (stack, starttls, implicit, ca, record) = stack("").await;
    let ca_file = ca.ca_file.to_str().unwrap().to_string();
    let order = json!({"from": "orders@shop.example", "to": ["ann@x.example", "bob@y.example"], "data": ORDER});
    let replies = smtplib(json!({"port": starttls, "mode": "starttls", "ca": ca_file, "user": KEY.0,
        "password": KEY.1, "messages": [order]}));
    assert_eq!(replies["starttls"][0], 220, "{replies}");
    for extension in
        ["PIPELINING", "SIZE 20000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "AUTH PLAIN LOGIN"]
    {
        assert!(replies["ehlo"].as_str().unwrap().contains(extension), "{extension}: {replies}");
    }
    assert_eq!(replies["auth"][0], 235, "{replies}");
    let order_id = queued_id(&replies["results"][0]["data"]);

    let note = "From: alerts@shop.example\r\nSubject: Disk nearly full\r\n\r\nOn host db1.\r\n";
    let replies = smtplib(json!({"port": implicit, "mode": "tls", "ca": ca_file, "user": KEY.0, "password": KEY.1,
        "messages": [{"from": "alerts@shop.example", "to": ["ops@x.example"], "data": note}]}));
    let note_id = queued_id(&replies["results"][0]["data"]);

    let swaks = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &starttls.to_string(), "--tls", "--tls-verify"])
        .args(["--tls-ca-path", &ca_file, "--auth", "LOGIN", "--auth-user", KEY.0, "--auth-password", KEY.1])
        .args(["--from", "news@shop.example", "--to", "dan@y.example", "--helo", "client.example"])
        .args(["--header", "Subject: From swaks", "--body", "Sent by swaks."])
        .output()
        .expect("swaks (scripts/test.sh installs it)");
    let transcript = String::from_utf8_lossy(&swaks.stdout);
    assert!(swaks.status.success(), "{transcript}\n{}", String::from_utf8_lossy(&swaks.stderr));
    assert!(transcript.contains("AUTH LOGIN") && transcript.contains("235 2.7.0"), "{transcript}");
    let swaks_id = transcript.split("queued as ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();

    let view = stack.wait_message(&order_id, "sent", Duration::from_secs(15)).await;
    assert_eq!(
        view["recipients"],
        json!([{"email": "ann@x.example", "status": "sent"}, {"email": "bob@y.example", "status": "sent"}])
    );
    let sent = view["events"].as_array().unwrap().iter().find(|e| e["type"] == "sent").expect("a sent event");
    assert_eq!((&sent["tags"], &sent["metadata"]), (&json!(["receipt", "eu"]), &json!({"order": 7})), "{view}");
    stack.wait_message(&note_id, "sent", Duration::from_secs(15)).await;
    stack.wait_message(&swaks_id, "sent", Duration::from_secs(15)).await;

    for rcpt in ["ann@x.example", "bob@y.example", "ops@x.example", "dan@y.example"] {
        assert_eq!(stack.sink.state.delivered_to(rcpt), 1, "{rcpt}");
        let message = kept_for(&stack, rcpt);
        assert_eq!(dkim::verify(&ca.dir, &message, std::slice::from_ref(&record)), ["pass"], "{rcpt}");
        let headers = headers_of(&message).to_ascii_lowercase();
        for field in ["dkim-signature:", "x-sluice-ref:", "message-id:", "date:"] {
            assert_eq!(headers.matches(&format!("\n{field}")).count(), 1, "{field} once for {rcpt}:\n{headers}");
        }
    }
    let ann = kept_for(&stack, "ann@x.example");
    let headers = headers_of(&ann);
    for gone in ["Bcc:", "X-Sluice-Tags", "X-Sluice-Metadata", "List-Unsubscribe"] {
        assert!(!headers.contains(gone), "{gone} removed:\n{headers}");
    }
    let body = ann.as_slice();
    let wanted = "Thank you for your order.\r\n.A line that starts with a dot.\r\nCaf\u{e9}\r\n".as_bytes();
    assert!(body.ends_with(wanted), "the body as given, dot and 8-bit included: {}", String::from_utf8_lossy(body));
    assert!(
        headers.contains("From: Shop <orders@shop.example>") && headers.contains("Subject: Your order"),
        "{headers}"
    );

    let metrics = stack.scrape(0).await;
    assert_eq!(common::sample(&metrics, "sluice_submission_accepted_total"), Some(3.0), "{metrics}");
    assert_eq!(common::sample(&metrics, "sluice_submission_sessions_total{port=\"submissions\"}"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_nothing_half_written() {
    let (mut stack, starttls, implicit, ca, _) = stack("").await;
    let ca_file = ca.ca_file.to_str().unwrap().to_string();
    let session = |port: u16, mode: &str, user: (&str, &str), messages: Value| {
        smtplib(
            json!({"port": port, "mode": mode, "ca": ca_file, "user": user.0, "password": user.1, "messages": messages}),
        )
    };
    let note = |from: &str| format!("From: {from}\r\nSubject: x\r\n\r\nbody\r\n");

    let wrong = session(implicit, "tls", (KEY.0, "not-the-token"), json!([]));
    assert_eq!(wrong["auth"][0], 535, "{wrong}");
    assert!(wrong["auth"][1].as_str().unwrap().starts_with("5.7.8"), "{wrong}");
    let reader = session(implicit, "tls", READER, json!([]));
    assert_eq!(reader["auth"][0], 535, "{reader}");
    assert!(reader["auth"][1].as_str().unwrap().contains("lacks the send scope"), "{reader}");
    let plaintext = session(starttls, "plain", KEY, json!([]));
    assert!(!plaintext["ehlo"].as_str().unwrap().contains("AUTH"), "AUTH not offered before TLS: {plaintext}");
    assert_eq!(plaintext["auth"][0], 538, "{plaintext}");
    let anonymous = smtplib(json!({"port": starttls, "mode": "starttls", "ca": ca_file,
        "messages": [{"from": "orders@shop.example", "to": ["a@x.example"], "data": note("orders@shop.example")}]}));
    assert_eq!(anonymous["results"][0]["mail"][0], 530, "{anonymous}");

    let foreign = session(
        starttls,
        "starttls",
        KEY,
        json!([
            {"from": "ceo@bank.example", "to": ["a@x.example"], "data": note("ceo@bank.example")},
            {"from": "orders@shop.example", "to": ["a@x.example"], "data": note("ceo@bank.example")},
            {"from": "orders@shop.example", "to": ["a@x.example", "b@x.example", "c@x.example", "d@x.example"],
             "data": note("orders@shop.example")},
            {"from": "orders@shop.example", "to": ["a@x.example"], "options": ["SIZE=30100"],
             "data": format!("{}{}", note("orders@shop.example"), "x".repeat(30_000))},
            {"from": "orders@shop.example", "to": ["not an address"], "data": note("orders@shop.example")},
        ]),
    );
    let results = &foreign["results"];
    assert_eq!(results[0]["mail"][0], 553, "{foreign}");
    assert!(results[0]["mail"][1].as_str().unwrap().contains("\"bank.example\""), "{foreign}");
    assert_eq!(results[1]["data"][0], 553, "the From: field too: {foreign}");
    assert!(results[1]["data"][1].as_str().unwrap().starts_with("5.7.1 From: domain \"bank.example\""), "{foreign}");
    assert_eq!(results[2]["rcpt"][3][0], 452, "{foreign}");
    assert!(results[2]["rcpt"][3][1].as_str().unwrap().starts_with("4.5.3"), "{foreign}");
    let three = queued_id(&results[2]["data"]);
    assert_eq!(results[3]["mail"][0], 552, "SIZE= over the limit, refused at MAIL: {foreign}");
    assert_eq!(results[4]["rcpt"][0][0], 501, "{foreign}");
    let view = stack.wait_message(&three, "sent", Duration::from_secs(15)).await;
    assert_eq!(view["recipients"].as_array().unwrap().len(), 3, "the first three recipients only");

    // Redis stopped mid-session: 451, then the same message (its Message-ID) taken once Redis
    // is back, and delivered exactly once.
    let dir = ca.dir.clone();
    let flag = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let message = "From: orders@shop.example\r\nMessage-ID: <retry-1@shop.example>\r\nSubject: retried\r\n\r\nonce\r\n";
    let retried = json!({"from": "orders@shop.example", "to": ["eve@x.example"], "data": message});
    let mut first = retried.clone();
    first["signal"] = flag("ready").into();
    first["wait"] = flag("redis-down").into();
    let mut second = retried.clone();
    second["signal"] = flag("refused").into();
    second["wait"] = flag("redis-up").into();
    let client = tokio::task::spawn_blocking({
        let args = json!({"port": implicit, "mode": "tls", "ca": ca_file, "user": KEY.0, "password": KEY.1,
            "messages": [first, second]});
        move || smtplib(args)
    });
    sluice_testkit::wait_for("the client ready", Duration::from_secs(20), || async {
        dir.join("ready").exists().then_some(())
    })
    .await;
    stack.redis.stop();
    std::fs::write(dir.join("redis-down"), "").unwrap();
    sluice_testkit::wait_for("the refusal", Duration::from_secs(30), || async {
        dir.join("refused").exists().then_some(())
    })
    .await;
    stack.redis.restart();
    std::fs::write(dir.join("redis-up"), "").unwrap();
    let replies = client.await.unwrap();
    assert_eq!(replies["results"][0]["data"][0], 451, "{replies}");
    assert!(replies["results"][0]["data"][1].as_str().unwrap().starts_with("4.3.0"), "{replies}");
    let id = queued_id(&replies["results"][1]["data"]);
    stack.wait_message(&id, "sent", Duration::from_secs(20)).await;
    assert_eq!(stack.sink.state.delivered_to("eve@x.example"), 1);

    let metrics = stack.scrape(0).await;
    for (reason, at_least) in [
        ("auth_failed", 1.0),
        ("no_send_scope", 1.0),
        ("tls_required", 1.0),
        ("auth_required", 1.0),
        ("sender_domain", 2.0),
        ("too_many_recipients", 1.0),
        ("too_big", 1.0),
        ("recipient", 1.0),
        ("unavailable", 1.0),
    ] {
        let n =
            common::sample(&metrics, &format!("sluice_submission_refused_total{{reason=\"{reason}\"}}")).unwrap_or(0.0);
        assert!(n >= at_least, "{reason}: {n}\n{metrics}");
    }
    assert_eq!(common::sample(&metrics, "sluice_submission_auth_failures_total"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_relays_through_sluice_as_its_smarthost_with_sasl() {
    let (stack, starttls, _, ca, record) = stack("").await;
    let postfix = sluice_testkit::postfix::Postfix::start(&format!(
        "relayhost = [127.0.0.1]:{starttls}\nsmtp_sasl_auth_enable = yes\n\
         smtp_sasl_password_maps = static:{}:{}\nsmtp_sasl_security_options = noanonymous\n\
         smtp_sasl_tls_security_options = noanonymous\nsmtp_tls_security_level = encrypt\n\
         smtp_tls_CAfile = {}\n",
        KEY.0,
        KEY.1,
        ca.ca_file.display()
    ));
    let message = "From: Shop <orders@shop.example>\nTo: fay@x.example\nSubject: Through Postfix\n\nRelayed.\n";
    postfix.sendmail("orders@shop.example", "fay@x.example", message.as_bytes());
    let id = sluice_testkit::wait_for("Postfix to relay into Sluice", Duration::from_secs(30), || async {
        let log = postfix.log();
        log.split("queued as ")
            .nth(1)
            .map(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next().unwrap().to_string())
    })
    .await;
    assert!(postfix.log().contains("status=sent"), "{}", postfix.log());
    let view = stack.wait_message(&id, "sent", Duration::from_secs(15)).await;
    assert_eq!(view["recipients"], json!([{"email": "fay@x.example", "status": "sent"}]));
    let kept = kept_for(&stack, "fay@x.example");
    assert_eq!(dkim::verify(&ca.dir, &kept, std::slice::from_ref(&record)), ["pass"]);
    assert!(headers_of(&kept).contains("Subject: Through Postfix"));
    let metrics = stack.scrape(0).await;
    assert_eq!(common::sample(&metrics, "sluice_submission_auth_failures_total"), Some(0.0), "{metrics}");
}
