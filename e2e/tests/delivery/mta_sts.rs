//! MTA-STS (RFC 8461) through the real worker in mx mode, against the test DNS server, a local
//! HTTPS policy host and local MX hosts, all with certificates from a CA made at test time: in
//! `enforce` mode an MX host with a certificate for another name is refused, an MX host the
//! policy does not list is not used, and a listed host with a good certificate gets the mail
//! over TLS; a domain without a policy still gets opportunistic TLS.

use crate::common;

use std::time::Duration;

use serde_json::json;
use sluice_testkit::{
    RedisServer,
    dns_server::{DnsServer, Entry, ip},
    free_port,
    smtp_sink::SmtpSink,
    static_https::StaticHttps,
    test_ca::TestCa,
};

const POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.example\r\nmx: *.sts-ok.example\r\nmax_age: 86400\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_mode_refuses_a_wrong_certificate_and_unlisted_hosts() {
    let (port, sts_port) = (free_port(), free_port());
    let ca = TestCa::new("mta-sts");
    let good = ca.issue("good", &["mx1.sts-ok.example", "mx.unlisted.example"]);
    let misnamed = ca.issue("misnamed", &["mx.other.example"]);
    let policy_host =
        ca.issue("policy", &["mta-sts.sts.example", "mta-sts.sts-ok.example", "mta-sts.sts-unlisted.example"]);
    let good_mx = SmtpSink::bind_starttls_with(&format!("127.0.0.2:{port}"), false, &good.cert, &good.key).await;
    let wrong_mx =
        SmtpSink::bind_starttls_with(&format!("127.0.0.3:{port}"), false, &misnamed.cert, &misnamed.key).await;
    let policies =
        StaticHttps::start(&format!("127.0.0.5:{sts_port}"), &policy_host.cert, &policy_host.key, "text/plain", POLICY)
            .await;
    let (mx, a) = (Entry::mx, Entry::a);
    let sts = |domain: &str| Entry::txt(&format!("_mta-sts.{domain}"), "v=STSv1; id=20261127;");
    let dns = DnsServer::start(vec![
        mx("sts.example", "mx.sts.example"),
        a("mx.sts.example", "127.0.0.3"),
        sts("sts.example"),
        a("mta-sts.sts.example", "127.0.0.5"),
        mx("sts-ok.example", "mx1.sts-ok.example"),
        a("mx1.sts-ok.example", "127.0.0.2"),
        sts("sts-ok.example"),
        a("mta-sts.sts-ok.example", "127.0.0.5"),
        mx("sts-unlisted.example", "mx.unlisted.example"),
        a("mx.unlisted.example", "127.0.0.2"),
        sts("sts-unlisted.example"),
        a("mta-sts.sts-unlisted.example", "127.0.0.5"),
        mx("plain.example", "mx.plain.example"),
        a("mx.plain.example", "127.0.0.3"),
    ])
    .await;
    let extra = format!(
        "[smtp]\nmode = \"mx\"\nmx_port = {port}\nmx_allow_networks = [\"127.0.0.0/8\"]\nmx_ca_file = \"{}\"\n\
         mta_sts_port = {sts_port}\n\n[dns]\nnameservers = [\"{}\"]\n\n[retry]\nschedule = [\"1h\"]\n",
        ca.ca_file.display(),
        dns.nameserver()
    );
    let stack = common::start_full(RedisServer::start(), good_mx, &extra, 1).await;
    let to = ["a@sts.example", "b@sts-ok.example", "c@sts-unlisted.example", "d@plain.example"];
    let body = common::campaign_body("sts", to.iter().map(|r| json!({"email": r, "vars": {"name": "N"}})).collect());
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let counts = loop {
        let counts = common::counts(&stack.campaign("sts").await);
        if counts["queued"] == 0 && counts["sent"] + counts["deferred"] == 4 {
            break counts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{counts:?}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((counts["sent"], counts["deferred"]), (2, 2), "{counts:?}\n{}", stack.logs());
    let sink = &stack.sink.state;
    assert_eq!(sink.delivered_to("b@sts-ok.example"), 1, "a listed host with a good certificate");
    assert_eq!(sink.accepted_encrypted.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(sink.attempts_for("c@sts-unlisted.example"), 0, "an unlisted host is not used");
    assert_eq!(wrong_mx.state.delivered_to("a@sts.example"), 0, "a certificate for another name");
    assert_eq!(wrong_mx.state.delivered_to("d@plain.example"), 1, "no policy: opportunistic TLS");
    assert!(policies.requests() >= 1, "the policy was fetched");

    let reason = |address: &str| stack.event_data("sts", "deferred", address);
    assert!(reason("c@sts-unlisted.example").contains("MTA-STS"), "{}", reason("c@sts-unlisted.example"));
}

/// A policy host that answers with too much, with the wrong type, with a redirect (RFC 8461
/// forbids following one), or from an internal address Sluice may not reach is not honoured:
/// the domain gets opportunistic TLS, as without a policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_mistyped_or_internal_policies_are_not_honoured() {
    let (port, sts_port) = (free_port(), free_port());
    let ca = TestCa::new("mta-sts-bad");
    let misnamed = ca.issue("misnamed", &["mx.other.example"]);
    let names = [
        "mta-sts.big.example",
        "mta-sts.html.example",
        "mta-sts.moved.example",
        "mta-sts.internal.example",
        "policy.elsewhere.example",
    ];
    let hosts = ca.issue("policy", &names);
    let mx_host =
        SmtpSink::bind_starttls_with(&format!("127.0.0.3:{port}"), false, &misnamed.cert, &misnamed.key).await;
    let huge = format!("{POLICY}{}", "x: padding\r\n".repeat(10_000));
    let serve = |address: &str, content_type: &'static str, body: String| {
        let (listen, cert, key) = (format!("{address}:{sts_port}"), hosts.cert.clone(), hosts.key.clone());
        async move { StaticHttps::start(&listen, &cert, &key, content_type, &body).await }
    };
    let big = serve("127.0.0.6", "text/plain", huge).await;
    let html = serve("127.0.0.7", "text/html", POLICY.replace("mx.sts.example", "mx.big.example")).await;
    let internal = serve("127.0.0.9", "text/plain", POLICY.into()).await;
    // A good enforce policy that lists no host of moved.example: followed, it would hold the mail.
    let elsewhere = serve("127.0.0.10", "text/plain", POLICY.into()).await;
    let target = format!("https://policy.elsewhere.example:{sts_port}/.well-known/mta-sts.txt");
    let redirect = StaticHttps::redirect(&format!("127.0.0.8:{sts_port}"), &hosts.cert, &hosts.key, &target).await;
    let mut entries = Vec::new();
    let policy_hosts = [("big", "127.0.0.6"), ("html", "127.0.0.7"), ("moved", "127.0.0.8"), ("internal", "127.0.0.9")];
    for (domain, policy_address) in policy_hosts {
        entries.push(Entry::Mx {
            name: format!("{domain}.example"),
            preference: 10,
            exchange: format!("mx.{domain}.example"),
        });
        entries.push(Entry::A { name: format!("mx.{domain}.example"), address: ip("127.0.0.3") });
        entries.push(Entry::Txt { name: format!("_mta-sts.{domain}.example"), text: "v=STSv1; id=1;".into() });
        entries.push(Entry::A { name: format!("mta-sts.{domain}.example"), address: ip(policy_address) });
    }
    entries.push(Entry::a("policy.elsewhere.example", "127.0.0.10"));
    let dns = DnsServer::start(entries).await;
    let extra = format!(
        "[smtp]\nmode = \"mx\"\nmx_port = {port}\nmta_sts_port = {sts_port}\nmx_ca_file = \"{}\"\n\
         mx_allow_networks = [\"127.0.0.3/32\", \"127.0.0.6/32\", \"127.0.0.7/32\", \"127.0.0.8/32\", \"127.0.0.10/32\"]\n\n\
         [dns]\nnameservers = [\"{}\"]\n\n[retry]\nschedule = [\"1h\"]\n",
        ca.ca_file.display(),
        dns.nameserver()
    );
    let stack = common::start_full(RedisServer::start(), mx_host, &extra, 1).await;
    let to = ["a@big.example", "b@html.example", "c@internal.example", "d@moved.example"];
    let body = common::campaign_body("bad", to.iter().map(|r| json!({"email": r, "vars": {"name": "N"}})).collect());
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let done = stack.wait_status("bad", "completed", Duration::from_secs(30)).await;
    assert_eq!(common::counts(&done)["sent"], 4, "{done}\n{}", stack.logs());
    assert!(big.requests() >= 1 && html.requests() >= 1, "those policies were fetched, then refused");
    assert!(redirect.requests() >= 1, "the redirecting host was asked");
    assert_eq!(elsewhere.requests(), 0, "the redirect was not followed");
    assert_eq!(internal.requests(), 0, "an internal policy host is never contacted");
}
