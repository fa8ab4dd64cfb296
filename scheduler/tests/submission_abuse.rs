//! The submission listener against the real scheduler, spoken to byte by byte: a pipelined
//! transaction is answered in order and stored; BDAT chunks make one message; a stranger
//! outside `trusted_networks` must authenticate and cannot over plaintext; AUTH failures are
//! slowed, then the address is locked out (another address is not); an endless command line,
//! an oversized DATA, twenty unknown commands and an idle client end their sessions; one
//! client at its connection cap leaves room for others; the null sender is refused, and a
//! resubmitted Message-ID is the same message.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    Api,
    smtp::{connect, reply, say},
};
use serde_json::Value;
use sluice_testkit::{api_key_toml, free_port};
use tokio::io::AsyncWriteExt;

const TOKEN: &str = "crm-token-0123456789";

async fn start(extra: &str) -> (Api, SocketAddr) {
    let port = free_port();
    let config = format!(
        "[submission]\nlisten = \"127.0.0.1:{port}\"\ntrusted_networks = [\"127.0.0.1/32\"]\n\
         max_message_bytes = 4096\nauth_failure_delay = \"100ms\"\n{extra}\n\n{}{}send_rate = \"1/h\"\n",
        api_key_toml("crm", TOKEN, "\"send\""),
        api_key_toml("hourly", TOKEN, "\"send\"")
    );
    let api = Api::start(&config).await;
    (api, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// AUTH PLAIN's initial response for `user` and `password`.
fn plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

fn queued_id(reply: &str) -> String {
    assert!(reply.starts_with("250 2.0.0 Ok: queued as msg_"), "{reply}");
    reply.trim_end().rsplit(' ').next().unwrap().to_string()
}

async fn message(api: &Api, id: &str) -> Value {
    let (status, view) = api.call("GET", &format!("/v1/messages/{id}"), None).await;
    assert_eq!(status, 200, "{view}");
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_and_chunked_transactions_are_stored_whole() {
    let (api, addr) = start("").await;
    let (mut c, greeting) = connect([127, 0, 0, 1], addr).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = say(&mut c, "EHLO client.example\r\n").await;
    assert!(ehlo.contains("250-PIPELINING") && ehlo.contains("AUTH PLAIN LOGIN"), "trusted: AUTH offered: {ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "no certificate, no STARTTLS: {ehlo}");

    // One write: MAIL, two RCPTs (one twice), DATA; the replies come back in order.
    let group = "MAIL FROM:<orders@shop.example> BODY=8BITMIME SIZE=100\r\nRCPT TO:<a@x.example>\r\n\
                 RCPT TO:<b@y.example>\r\nRCPT TO:<A@x.example>\r\nDATA\r\n";
    c.get_mut().write_all(group.as_bytes()).await.unwrap();
    for want in ["250 2.1.0", "250 2.1.5", "250 2.1.5", "250 2.1.5", "354 "] {
        let got = reply(&mut c).await;
        assert!(got.starts_with(want), "{want}: {got}");
    }
    let id = queued_id(&say(&mut c, "From: orders@shop.example\r\nSubject: piped\r\n\r\n..dot\r\n.\r\n").await);
    let view = message(&api, &id).await;
    assert_eq!(view["recipients"].as_array().unwrap().len(), 2, "the repeated recipient once: {view}");

    // BDAT: two chunks, the second LAST; the bytes are taken as they are (no dot-stuffing).
    let first = "From: orders@shop.example\r\nSubject: chunked\r\n\r\n.not stuffed\r\n";
    let last = "second chunk\r\n";
    assert!(say(&mut c, "MAIL FROM:<orders@shop.example>\r\n").await.starts_with("250"));
    assert!(say(&mut c, "RCPT TO:<c@x.example>\r\n").await.starts_with("250"));
    let got = say(&mut c, &format!("BDAT {}\r\n{first}", first.len())).await;
    assert!(got.starts_with(&format!("250 2.0.0 {} octets received", first.len())), "{got}");
    let id = queued_id(&say(&mut c, &format!("BDAT {} LAST\r\n{last}", last.len())).await);
    let spec: String = redis::cmd("HGET")
        .arg(sluice_shared::keys::campaign_meta(&id))
        .arg("spec")
        .query(&mut api.redis.conn())
        .unwrap();
    let spec: sluice_shared::model::CampaignSpec = serde_json::from_str(&spec).unwrap();
    let mime = String::from_utf8(spec.mime.unwrap()).unwrap();
    assert!(mime.ends_with("\r\n\r\n.not stuffed\r\nsecond chunk\r\n"), "{mime}");
    assert_eq!(spec.subject, "chunked");

    // The null sender is no sender for submission.
    assert!(say(&mut c, "MAIL FROM:<>\r\n").await.starts_with("553 5.7.1"));
    // The client's Message-ID makes a resubmission the same message; other content under the
    // same Message-ID is a new one.
    let mut send = async |body: &str| {
        let group = "MAIL FROM:<orders@shop.example>\r\nRCPT TO:<d@x.example>\r\nDATA\r\n";
        c.get_mut().write_all(group.as_bytes()).await.unwrap();
        for want in ["250", "250", "354"] {
            assert!(reply(&mut c).await.starts_with(want));
        }
        let message = format!("From: orders@shop.example\r\nMessage-ID: <order-9@shop.example>\r\n\r\n{body}\r\n.\r\n");
        queued_id(&say(&mut c, &message).await)
    };
    let first = send("once").await;
    assert_eq!(send("once").await, first, "the same message again");
    assert_ne!(send("changed").await, first, "other content");
    assert!(say(&mut c, "QUIT\r\n").await.starts_with("221"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_send_rate_is_told_to_retry_later() {
    let (api, addr) = start("").await;
    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    assert!(say(&mut c, &format!("AUTH PLAIN {}\r\n", plain("hourly", TOKEN))).await.starts_with("235 2.7.0"));
    let send = "MAIL FROM:<orders@shop.example>\r\nRCPT TO:<a@x.example>\r\nDATA\r\n";
    c.get_mut().write_all(send.as_bytes()).await.unwrap();
    for _ in 0..3 {
        reply(&mut c).await;
    }
    queued_id(&say(&mut c, "From: orders@shop.example\r\n\r\none\r\n.\r\n").await);
    c.get_mut().write_all(send.as_bytes()).await.unwrap();
    for _ in 0..3 {
        reply(&mut c).await;
    }
    let refused = say(&mut c, "From: orders@shop.example\r\n\r\ntwo\r\n.\r\n").await;
    assert!(refused.starts_with("451 4.7.1 API key \"hourly\" is over its send_rate"), "{refused}");
    let metrics = api.metrics().await;
    assert!(metrics.contains("sluice_send_rate_limited_total{key=\"hourly\"} 1"), "{metrics}");
    assert!(metrics.contains("sluice_submission_refused_total{reason=\"rate_limited\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_authenticate_and_guessers_are_slowed_then_locked_out() {
    let (api, addr) = start("").await;
    // 127.0.0.2 is not trusted: no AUTH offered over plaintext, none taken, no mail without it.
    let (mut stranger, _) = connect([127, 0, 0, 2], addr).await;
    assert!(!say(&mut stranger, "EHLO x\r\n").await.contains("AUTH"));
    let refused = say(&mut stranger, &format!("AUTH PLAIN {}\r\n", plain("crm", TOKEN))).await;
    assert!(refused.starts_with("538 5.7.11"), "{refused}");
    assert!(say(&mut stranger, "MAIL FROM:<orders@shop.example>\r\n").await.starts_with("530 5.7.0"));

    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    assert!(say(&mut c, "AUTH CRAM-MD5\r\n").await.starts_with("504 5.5.4"), "a mechanism not offered");

    // 127.0.0.1 (trusted, so AUTH over plaintext) guesses: three failures close a session;
    // past the third from the address each answer is slower; the tenth locks it out.
    let mut delays = Vec::new();
    let mut failures = 0;
    while failures < 10 {
        let (mut c, _) = connect([127, 0, 0, 1], addr).await;
        for _ in 0..3 {
            if failures == 10 {
                break;
            }
            let started = std::time::Instant::now();
            let answer = say(&mut c, &format!("AUTH PLAIN {}\r\n", plain("crm", "guess"))).await;
            delays.push(started.elapsed());
            assert!(answer.starts_with("535 5.7.8"), "{answer}");
            failures += 1;
        }
        if failures % 3 == 0 {
            let closing = reply(&mut c).await;
            assert!(closing.starts_with("421 4.7.0 Too many failed authentications"), "{closing}");
            assert_eq!(reply(&mut c).await, "", "three failures end the session");
        }
    }
    assert!(delays[..3].iter().all(|d| *d < Duration::from_millis(100)), "the first three at once: {delays:?}");
    assert!(delays[3] >= Duration::from_millis(100) && delays[6] >= Duration::from_millis(400), "{delays:?}");
    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    let locked = say(&mut c, &format!("AUTH PLAIN {}\r\n", plain("crm", TOKEN))).await;
    assert!(locked.starts_with("454 4.7.0"), "even the right token, while locked out: {locked}");
    let (mut other, _) = connect([127, 0, 0, 3], addr).await;
    let answer = say(&mut other, &format!("AUTH PLAIN {}\r\n", plain("crm", "guess"))).await;
    assert!(answer.starts_with("538"), "another address is judged on its own: {answer}");

    let metrics = api.metrics().await;
    assert!(metrics.contains("sluice_submission_auth_failures_total 10"), "{metrics}");
    assert!(metrics.contains("sluice_submission_refused_total{reason=\"locked_out\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_lines_oversized_messages_and_idle_clients_end_their_sessions() {
    let (api, addr) = start("command_timeout = \"1s\"\n").await;
    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    let answer = say(&mut c, &format!("NOOP {}\r\n", "x".repeat(10_000))).await;
    assert!(answer.starts_with("500 5.5.2 Line too long"), "{answer}");
    assert_eq!(reply(&mut c).await, "", "closed");

    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    assert!(say(&mut c, "MAIL FROM:<orders@shop.example> SIZE=5000\r\n").await.starts_with("552 5.3.4"));
    assert!(say(&mut c, "MAIL FROM:<orders@shop.example>\r\n").await.starts_with("250"));
    assert!(say(&mut c, "RCPT TO:<a@x.example>\r\n").await.starts_with("250"));
    assert!(say(&mut c, "DATA\r\n").await.starts_with("354"));
    let _ = c.get_mut().write_all("From: orders@shop.example\r\n\r\n".as_bytes()).await;
    let _ = c.get_mut().write_all("0123456789012345678901234567890123456789\r\n".repeat(200).as_bytes()).await;
    let answer = reply(&mut c).await;
    assert!(answer.starts_with("552 5.3.4"), "{answer}");
    // A client that leaves in the middle of DATA leaves nothing behind; the next one's
    // message is the only one stored.
    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    assert!(
        say(&mut c, "MAIL FROM:<orders@shop.example>\r\nRCPT TO:<a@x.example>\r\nDATA\r\n").await.starts_with("250")
    );
    assert!(reply(&mut c).await.starts_with("250") && reply(&mut c).await.starts_with("354"));
    c.get_mut().write_all(b"From: orders@shop.example\r\n\r\nhalf a mess").await.unwrap();
    drop(c);
    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    assert!(
        say(&mut c, "MAIL FROM:<orders@shop.example>\r\nRCPT TO:<a@x.example>\r\nDATA\r\n").await.starts_with("250")
    );
    assert!(reply(&mut c).await.starts_with("250") && reply(&mut c).await.starts_with("354"));
    let whole = queued_id(&say(&mut c, "From: orders@shop.example\r\n\r\nwhole\r\n.\r\n").await);
    let stored: Vec<String> = redis::cmd("ZRANGE")
        .arg(sluice_shared::keys::messages_due())
        .arg(0)
        .arg(-1)
        .query(&mut api.redis.conn())
        .unwrap();
    assert_eq!(stored, [whole], "only the whole message is stored");

    // Commands it does not know, twenty in one write: the twentieth ends the session.
    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    c.get_mut().write_all("VRFY root\r\n".repeat(20).as_bytes()).await.unwrap();
    for _ in 0..19 {
        assert!(reply(&mut c).await.starts_with("502 5.5.2"));
    }
    assert!(reply(&mut c).await.starts_with("421 4.7.0 Too many errors"));
    assert_eq!(reply(&mut c).await, "", "closed");

    let (mut c, _) = connect([127, 0, 0, 1], addr).await;
    let started = std::time::Instant::now();
    let answer = reply(&mut c).await;
    assert!(answer.starts_with("421 4.4.2"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holding_its_cap_does_not_lock_out_another() {
    let (_api, addr) = start("max_connections = 8\nmax_connections_per_client = 2\n").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let (c, greeting) = connect([127, 0, 0, 1], addr).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        held.push(c);
    }
    let (_, refused) = connect([127, 0, 0, 1], addr).await;
    assert!(refused.starts_with("421 4.7.0 Too many connections from your address"), "{refused}");
    let (_, greeting) = connect([127, 0, 0, 2], addr).await;
    assert!(greeting.starts_with("220"), "another client is served: {greeting}");
}
