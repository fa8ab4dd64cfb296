//! The inbound SMTP listener faces strangers on the internet. Against the real scheduler: an
//! endless line inside DATA is refused without being buffered (the process's RSS barely
//! moves); one client holding its cap of idle connections does not lock out another; an idle
//! client is cut off after `command_timeout`, a busy one after `session_timeout`; unmatched
//! mail is kept as a bounded prefix.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    Api,
    smtp::{connect, reply, say},
};
use sluice_shared::keys;
use sluice_testkit::free_port;
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::TcpStream,
};

/// A stream entry's fields, as XRANGE returns them.
type Fields = Vec<(String, Vec<u8>)>;

const SECRET: &str = "a-secret-of-at-least-32-characters!!";

async fn start(extra: &str) -> (Api, SocketAddr) {
    let port = free_port();
    let config = format!(
        "[public]\nlisten = \"127.0.0.1:{}\"\nbase_url = \"https://m.shop.example\"\nsecret = \"{SECRET}\"\n\n\
         [bounces]\nreturn_path_domain = \"bounces.shop.example\"\n\n\
         [inbound]\nsmtp_listen = \"127.0.0.1:{port}\"\n{extra}",
        free_port()
    );
    let api = Api::start(&config).await;
    (api, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A session from 127.0.0.1 that has reached DATA (answered 354) for the bounce domain.
async fn in_data(addr: SocketAddr) -> BufReader<TcpStream> {
    let (mut c, greeting) = connect([127, 0, 0, 1], addr).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(say(&mut c, "EHLO x.example\r\n").await.starts_with("250"));
    assert!(say(&mut c, "MAIL FROM:<>\r\n").await.starts_with("250"));
    assert!(say(&mut c, "RCPT TO:<b@bounces.shop.example>\r\n").await.starts_with("250"));
    assert!(say(&mut c, "DATA\r\n").await.starts_with("354"));
    c
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_in_data_is_refused_without_being_buffered() {
    let (api, addr) = start("").await;
    let pid = api.process.pid();
    let mut c = in_data(addr).await;
    let before = rss_kib(pid);
    // 60 MiB without a newline, written while the server may already have hung up.
    let chunk = vec![b'x'; 1024 * 1024];
    let mut written = 0;
    for _ in 0..60 {
        if c.get_mut().write_all(&chunk).await.is_err() {
            break;
        }
        written += 1;
    }
    let answer = reply(&mut c).await;
    assert!(answer.starts_with("552 5.3.4 Line too long"), "{answer:?} after {written} MiB");
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(grown < 20 * 1024, "RSS grew {grown} KiB");
    let kept: i64 = redis::cmd("XLEN").arg(keys::inbound_unmatched()).query(&mut api.redis.conn()).unwrap();
    assert_eq!(kept, 0, "nothing of it was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_is_refused_as_it_arrives() {
    let (api, addr) = start("max_message_bytes = 65536\n").await;
    let mut c = in_data(addr).await;
    let lines = "0123456789012345678901234567890123456789\r\n".repeat(4096);
    let _ = c.get_mut().write_all(lines.as_bytes()).await;
    let answer = reply(&mut c).await;
    assert!(answer.starts_with("552 5.3.4 Message too big"), "{answer:?}");
    drop(api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holding_its_cap_does_not_lock_out_another() {
    let (_api, addr) = start("max_connections_per_client = 4\n").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let (c, greeting) = connect([127, 0, 0, 1], addr).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        held.push(c);
    }
    let (_, refused) = connect([127, 0, 0, 1], addr).await;
    assert!(refused.starts_with("421 4.7.0 Too many connections from your address"), "{refused}");
    let (mut other, greeting) = connect([127, 0, 0, 2], addr).await;
    assert!(greeting.starts_with("220"), "another client is served: {greeting}");
    assert!(say(&mut other, "NOOP\r\n").await.starts_with("250"));
    // A slot comes back when its session ends.
    let mut first = held.remove(0);
    assert!(say(&mut first, "QUIT\r\n").await.starts_with("221"));
    drop(first);
    sluice_testkit::wait_for("a freed slot", Duration::from_secs(5), || async {
        let (_, greeting) = connect([127, 0, 0, 1], addr).await;
        greeting.starts_with("220").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_endless_sessions_are_cut_off() {
    let (_api, addr) = start("command_timeout = \"1s\"\nsession_timeout = \"3s\"\n").await;
    let (mut idle, _) = connect([127, 0, 0, 1], addr).await;
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), reply(&mut idle)).await.unwrap();
    assert!(answer.starts_with("421 4.4.2 Timeout exceeded"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (mut busy, _) = connect([127, 0, 0, 1], addr).await;
    let started = std::time::Instant::now();
    let answer = loop {
        let r = say(&mut busy, "NOOP\r\n").await;
        if !r.starts_with("250") {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never cut off");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(answer.starts_with("421 4.4.2 Session too long"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_mail_is_kept_as_a_bounded_prefix() {
    let (api, addr) = start("").await;
    let mut c = in_data(addr).await;
    let body = "Subject: buy now\r\n\r\n".to_string() + &"spam spam spam spam\r\n".repeat(100_000);
    let answer = say(&mut c, &format!("{body}.\r\n")).await;
    assert!(answer.starts_with("250"), "{answer}");
    let mut conn = api.redis.conn();
    let entries: Vec<(String, Fields)> =
        redis::cmd("XRANGE").arg(keys::inbound_unmatched()).arg("-").arg("+").query(&mut conn).unwrap();
    assert_eq!(entries.len(), 1);
    let field = |name: &str| entries[0].1.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(field("raw").len(), 32 * 1024);
    assert!(field("raw").starts_with(b"Subject: buy now"));
    assert_eq!(String::from_utf8(field("size")).unwrap(), body.len().to_string());
    assert_eq!(field("truncated"), b"1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_held_by_all_sessions_has_one_budget() {
    let (_api, addr) = start("max_message_bytes = 65536\nmax_buffered_bytes = 65536\n").await;
    // The first session holds most of the budget in a message it has not finished.
    let mut first = in_data(addr).await;
    first.get_mut().write_all("0123456789012345678901234567890123456789\r\n".repeat(1200).as_bytes()).await.unwrap();
    first.get_mut().flush().await.unwrap();
    let mut second = in_data(addr).await;
    let answer = say(&mut second, &format!("{}.\r\n", "0123456789\r\n".repeat(2000))).await;
    assert!(answer.starts_with("452 4.3.1"), "{answer:?}");
    // Once the first message ends, its memory is given back.
    assert!(say(&mut first, ".\r\n").await.starts_with("250"));
    let mut third = in_data(addr).await;
    assert!(say(&mut third, "Subject: x\r\n\r\nsmall\r\n.\r\n").await.starts_with("250"));
}
