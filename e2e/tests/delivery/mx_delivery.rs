//! Direct MX delivery through the real binaries, against a local DNS server and local MX
//! hosts: the preferred MX refuses, the next one takes the mail over opportunistic STARTTLS
//! from the configured source address with its EHLO name; implicit MX, null MX and
//! non-existent domains behave per RFC 5321 / 7505; a destination that requires TLS is not
//! sent to in the clear.

use crate::common;

use std::{net::IpAddr, time::Duration};

use serde_json::json;
use sluice_testkit::{
    RedisServer,
    dns_server::{DnsServer, Entry, ip},
    free_port,
    smtp_sink::SmtpSink,
    test_ca::TestCa,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_hosts_in_preference_order_with_starttls_from_the_pool_address() {
    let port = free_port();
    let refusing = SmtpSink::bind(&format!("127.0.0.2:{port}"), false).await.unwrap();
    refusing.state.set_refusing(true);
    let cleartext_only = SmtpSink::bind(&format!("127.0.0.4:{port}"), false).await.unwrap();
    let ca = TestCa::new("mx");
    let certificate = ca.issue("mx2", &["mx2.x.example", "nomx.example"]);
    let good =
        SmtpSink::bind_starttls_with(&format!("127.0.0.1:{port}"), true, &certificate.cert, &certificate.key).await;
    let mx =
        |name: &str, preference, exchange: &str| Entry::Mx { name: name.into(), preference, exchange: exchange.into() };
    let a = |name: &str, address: &str| Entry::A { name: name.into(), address: ip(address) };
    let dns = DnsServer::start(vec![
        mx("x.example", 10, "mx1.x.example"),
        mx("x.example", 20, "mx2.x.example"),
        a("mx1.x.example", "127.0.0.2"),
        a("mx2.x.example", "127.0.0.1"),
        a("nomx.example", "127.0.0.1"),
        mx("null.example", 0, "."),
        mx("plain.example", 10, "mx.plain.example"),
        a("mx.plain.example", "127.0.0.4"),
    ])
    .await;
    let extra = format!(
        "[smtp]\nmode = \"mx\"\nmx_port = {port}\nmx_allow_networks = [\"127.0.0.0/8\"]\nmx_ca_file = \"{}\"\n\n\
         [[smtp.ip_pool]]\naddress = \"127.0.0.3\"\nhelo = \"mta1.shop.example\"\n\n\
         [dns]\nnameservers = [\"{}\"]\n\n[limits.domains.\"x.example\"]\nrequire_tls = true\n\n\
         [limits.domains.\"plain.example\"]\nrequire_tls = true\n\n[retry]\nschedule = [\"1h\"]\n",
        ca.ca_file.display(),
        dns.nameserver()
    );
    let stack = common::start_full(RedisServer::start(), good, &extra, 1).await;
    let mut recipients: Vec<_> = (0..5).map(|i| format!("u{i}@x.example")).collect();
    recipients.extend(["v@nomx.example", "w@null.example", "z@nowhere.example", "p@plain.example"].map(String::from));
    let body = common::campaign_body(
        "direct",
        recipients.iter().map(|r| json!({"email": r, "vars": {"name": "N"}})).collect(),
    );
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let counts = loop {
        let counts = common::counts(&stack.campaign("direct").await);
        if counts["queued"] == 0 && counts["sent"] + counts["bounced"] + counts["deferred"] == 9 {
            break counts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{counts:?}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((counts["sent"], counts["bounced"], counts["deferred"]), (6, 2, 1), "{counts:?}\n{}", stack.logs());

    let sink = &stack.sink.state;
    assert_eq!(sink.accepted(), 6);
    assert_eq!(sink.accepted_encrypted.load(std::sync::atomic::Ordering::Relaxed), 6, "STARTTLS used when offered");
    assert!(!refusing.state.peers.lock().unwrap().is_empty(), "the preferred MX was tried first");
    assert_eq!(refusing.state.accepted(), 0);
    assert!(
        sink.peers.lock().unwrap().iter().all(|p| *p == "127.0.0.3".parse::<IpAddr>().unwrap()),
        "bound to the pool address"
    );
    assert!(sink.helo_names.lock().unwrap().iter().all(|h| h == "mta1.shop.example"));
    assert_eq!(cleartext_only.state.accepted(), 0, "TLS required: never sent in the clear");
    assert!(
        !cleartext_only.state.helo_names.lock().unwrap().is_empty(),
        "it was reached, then refused for lack of STARTTLS"
    );

    // Null MX and a domain that does not exist bounce; the address is suppressed.
    for (address, enhanced) in [("w@null.example", "5.1.10"), ("z@nowhere.example", "5.1.2")] {
        let (status, entry) = stack.call("GET", &format!("/v1/suppressions/{address}"), None).await;
        assert_eq!(status, 200, "{address}: {entry}");
        assert_eq!(entry["detail"]["enhanced"], enhanced, "{entry}");
    }
}

/// Where each kept message came from, by the sink's `Received: from HELO ([ip])` line.
fn sources(sink: &SmtpSink) -> Vec<String> {
    sink.state
        .messages
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| {
            let text = String::from_utf8_lossy(m);
            let line = text.lines().find(|l| l.starts_with("Received: from ")).unwrap().to_string();
            line.rsplit_once("([").unwrap().1.trim_end_matches("])").to_string()
        })
        .collect()
}

async fn warmup_stack(spill: bool) -> (common::Stack, DnsServer) {
    let port = free_port();
    let sink = SmtpSink::bind(&format!("127.0.0.1:{port}"), true).await.unwrap();
    let dns = DnsServer::start(vec![
        Entry::Mx { name: "x.example".into(), preference: 10, exchange: "mx.x.example".into() },
        Entry::A { name: "mx.x.example".into(), address: ip("127.0.0.1") },
    ])
    .await;
    let today = chrono::Utc::now().date_naive();
    let spill_section = if spill {
        "[[smtp.ip_pool]]\naddress = \"127.0.0.5\"\nhelo = \"mta2.shop.example\"\npool = \"overflow\"\n\n".to_string()
    } else {
        String::new()
    };
    let spill_key = if spill { "spill_pool = \"overflow\"\n" } else { "" };
    let extra = format!(
        "[smtp]\nmode = \"mx\"\nmx_port = {port}\nmx_allow_networks = [\"127.0.0.0/8\"]\n\n[[smtp.ip_pool]]\naddress = \"127.0.0.3\"\nhelo = \"mta1.shop.example\"\n\n\
         {spill_section}[dns]\nnameservers = [\"{}\"]\n\n[warmup]\n{spill_key}\n[warmup.plans.new-ip]\ndays = [2, 4]\n\n\
         [warmup.ips.\"127.0.0.3\"]\nplan = \"new-ip\"\nstart = \"{today}\"\n",
        dns.nameserver()
    );
    (common::start_full(RedisServer::start(), sink, &extra, 1).await, dns)
}

async fn settled(stack: &common::Stack, id: &str, total: u64) -> std::collections::BTreeMap<String, u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let counts = common::counts(&stack.campaign(id).await);
        if counts["queued"] == 0 && counts["sent"] + counts["deferred"] == total {
            return counts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{counts:?}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn five(id: &str) -> serde_json::Value {
    common::campaign_body(
        id,
        (0..5).map(|i| json!({"email": format!("u{i}@x.example"), "vars": {"name": "N"}})).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warming_address_sends_its_cap_then_the_spill_pool_takes_over() {
    let (stack, _dns) = warmup_stack(true).await;
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(five("spill"))).await;
    assert_eq!(status, 201, "{reply}");
    let counts = settled(&stack, "spill", 5).await;
    assert_eq!(counts["sent"], 5, "{counts:?}");
    let mut from = sources(&stack.sink);
    from.sort();
    assert_eq!(from, ["127.0.0.3", "127.0.0.3", "127.0.0.5", "127.0.0.5", "127.0.0.5"]);
    let (_, body) = stack.call("GET", "/v1/warmup", None).await;
    let ip = &body["senders"][0];
    assert_eq!(
        (ip["sender"].as_str(), ip["cap"].as_u64(), ip["sent_today"].as_u64()),
        (Some("ip:127.0.0.3"), Some(2), Some(2)),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_spill_pool_the_overflow_waits_for_the_next_day() {
    let (stack, _dns) = warmup_stack(false).await;
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(five("wait"))).await;
    assert_eq!(status, 201, "{reply}");
    let counts = settled(&stack, "wait", 5).await;
    assert_eq!((counts["sent"], counts["deferred"]), (2, 3), "{counts:?}");
    let midnight = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc();
    let waiting: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(sluice_shared::keys::campaign_retry("wait"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut stack.redis.conn())
        .unwrap();
    assert_eq!(waiting.len(), 3);
    for (member, score) in waiting {
        assert_eq!(score, midnight.timestamp_millis());
        assert_eq!(serde_json::from_str::<sluice_shared::model::Job>(&member).unwrap().attempt, 0, "no attempt used");
    }
}

/// A list address at a domain whose MX points into our own network must not make workers
/// connect there: loopback, private and other internal addresses are refused unless
/// `smtp.mx_allow_networks` names them, and such a domain bounces with 5.4.4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_hosts_on_internal_addresses_are_never_contacted() {
    let port = free_port();
    let allowed = SmtpSink::bind(&format!("127.0.0.2:{port}"), false).await.unwrap();
    let internal = SmtpSink::bind(&format!("127.0.0.1:{port}"), false).await.unwrap();
    let (mx, a) = (Entry::mx, Entry::a);
    let dns = DnsServer::start(vec![
        mx("good.example", "mx.good.example"),
        a("mx.good.example", "127.0.0.2"),
        mx("loopback.example", "mx.loopback.example"),
        a("mx.loopback.example", "127.0.0.1"),
        mx("private.example", "mx.private.example"),
        a("mx.private.example", "10.1.2.3"),
        a("implicit.example", "127.0.0.1"),
    ])
    .await;
    let extra = format!(
        "[smtp]\nmode = \"mx\"\nmx_port = {port}\nmx_allow_networks = [\"127.0.0.2/32\"]\n\n\
         [dns]\nnameservers = [\"{}\"]\n\n[retry]\nschedule = [\"1h\"]\n",
        dns.nameserver()
    );
    let stack = common::start_full(RedisServer::start(), allowed, &extra, 1).await;
    let to = ["a@good.example", "b@loopback.example", "c@private.example", "d@implicit.example"];
    let body =
        common::campaign_body("internal", to.iter().map(|r| json!({"email": r, "vars": {"name": "N"}})).collect());
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let done = stack.wait_status("internal", "completed", Duration::from_secs(30)).await;
    let counts = common::counts(&done);
    assert_eq!((counts["sent"], counts["bounced"]), (1, 3), "{counts:?}\n{}", stack.logs());
    assert_eq!(stack.sink.state.delivered_to("a@good.example"), 1, "the allowed block is reached");
    assert!(internal.state.peers.lock().unwrap().is_empty(), "nothing connected to the internal MX");
    for address in &to[1..] {
        let data = stack.event_data("internal", "bounced", address);
        assert!(data.contains("5.4.4") && data.contains("internal addresses"), "{address}: {data}");
    }
}

/// `require_tls` is Postfix's `verify`: the MX certificate must chain to a trusted root and name
/// the MX host. A certificate for another name, or from an unknown issuer, defers the message
/// (never sent, in the clear or otherwise); without `require_tls` the same hosts are used with
/// encryption alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_verifies_the_mx_certificate_and_name() {
    let port = free_port();
    let ca = TestCa::new("mx-verify");
    let named = ca.issue("good", &["mx.good.example"]);
    let misnamed = ca.issue("other", &["mx.other.example"]);
    let good = SmtpSink::bind_starttls_with(&format!("127.0.0.2:{port}"), false, &named.cert, &named.key).await;
    let wrong_name =
        SmtpSink::bind_starttls_with(&format!("127.0.0.3:{port}"), false, &misnamed.cert, &misnamed.key).await;
    let unknown_issuer = SmtpSink::bind_starttls(&format!("127.0.0.4:{port}"), false).await;
    let (mx, a) = (Entry::mx, Entry::a);
    let dns = DnsServer::start(vec![
        mx("good.example", "mx.good.example"),
        a("mx.good.example", "127.0.0.2"),
        mx("wrongname.example", "mx.wrongname.example"),
        a("mx.wrongname.example", "127.0.0.3"),
        mx("selfsigned.example", "mx.selfsigned.example"),
        a("mx.selfsigned.example", "127.0.0.4"),
        mx("may.example", "mx.may.example"),
        a("mx.may.example", "127.0.0.3"),
    ])
    .await;
    let verify = |d: &str| format!("[limits.domains.\"{d}\"]\nrequire_tls = true\n\n");
    let extra = format!(
        "[smtp]\nmode = \"mx\"\nmx_port = {port}\nmx_allow_networks = [\"127.0.0.0/8\"]\nmx_ca_file = \"{}\"\n\n\
         [dns]\nnameservers = [\"{}\"]\n\n{}{}{}[retry]\nschedule = [\"1h\"]\n",
        ca.ca_file.display(),
        dns.nameserver(),
        verify("good.example"),
        verify("wrongname.example"),
        verify("selfsigned.example"),
    );
    let stack = common::start_full(RedisServer::start(), good, &extra, 1).await;
    let to = ["a@good.example", "b@wrongname.example", "c@selfsigned.example", "d@may.example"];
    let body = common::campaign_body("verify", to.iter().map(|r| json!({"email": r, "vars": {"name": "N"}})).collect());
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let counts = settled(&stack, "verify", 4).await;
    assert_eq!((counts["sent"], counts["deferred"]), (2, 2), "{counts:?}\n{}", stack.logs());
    assert_eq!(stack.sink.state.accepted_encrypted.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(wrong_name.state.delivered_to("d@may.example"), 1, "opportunistic TLS takes any certificate");
    assert_eq!(wrong_name.state.delivered_to("b@wrongname.example"), 0, "a certificate for another name");
    assert_eq!(unknown_issuer.state.accepted(), 0, "a certificate from an unknown issuer");
    for address in ["b@wrongname.example", "c@selfsigned.example"] {
        let data = stack.event_data("verify", "deferred", address);
        assert!(data.contains("verified certificate"), "{address}: {data}");
    }
}
