//! The worker's SMTP client as strict servers see it, through the real binaries, in relay
//! and MX mode: a connection the server timed out while it sat in the pool is replaced
//! without a deferral; a refused recipient costs no connection (RSET, with PIPELINING and
//! without); every connection the worker closes (idle, age, per-connection limit, shutdown)
//! ends with QUIT.

use crate::common;

use std::{sync::atomic::Ordering, time::Duration};

use common::Stack;
use serde_json::{Value, json};
use sluice_testkit::{
    RedisServer,
    dns_server::{DnsServer, Entry, ip},
    free_port,
    smtp_sink::{SinkState, SmtpSink},
    wait_for,
};

/// How the mail reaches the sink: as the relay, or as the MX host of `x.example`.
#[derive(Clone, Copy, Debug)]
enum Route {
    Relay,
    Mx,
}

struct Setup {
    stack: Stack,
    /// Answers for `x.example` in MX mode; kept alive with the stack.
    _dns: Option<DnsServer>,
}

/// A sink on its own port, a stack delivering to it by `route`, with `smtp` lines added to
/// `[smtp]` and `extra` TOML after. `tune` sets the sink up before the worker starts.
async fn start(route: Route, smtp: &str, extra: &str, tune: impl FnOnce(&SinkState)) -> Setup {
    let port = free_port();
    let sink = SmtpSink::bind(&format!("127.0.0.1:{port}"), false).await.unwrap();
    tune(&sink.state);
    let (smtp_section, dns) = match route {
        Route::Relay => (format!("[smtp]\n{smtp}\n"), None),
        Route::Mx => {
            let dns = DnsServer::start(vec![
                Entry::Mx { name: "x.example".into(), preference: 10, exchange: "mx.x.example".into() },
                Entry::A { name: "mx.x.example".into(), address: ip("127.0.0.1") },
            ])
            .await;
            let section = format!(
                "[smtp]\nmode = \"mx\"\nmx_port = {port}\nmx_allow_networks = [\"127.0.0.0/8\"]\n{smtp}\n\n[dns]\nnameservers = [\"{}\"]\n",
                dns.nameserver()
            );
            (section, Some(dns))
        }
    };
    let toml = format!("{smtp_section}\n[retry]\nschedule = [\"1h\"]\nmax_age = \"3h\"\n\n{extra}");
    let stack = common::start_full(RedisServer::start(), sink, &toml, 1).await;
    Setup { stack, _dns: dns }
}

/// Recipients at `x.example`: `{prefix}{i}`, every `refuse_every`-th a `hard-` one (550 at RCPT).
fn recipients(prefix: &str, n: usize, refuse_every: Option<usize>) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let hard = refuse_every.is_some_and(|k| i % k == 0);
            let local = if hard { format!("hard-{prefix}{i}") } else { format!("{prefix}{i}") };
            json!({"email": format!("{local}@x.example"), "vars": {"name": "N"}})
        })
        .collect()
}

/// Sends a campaign and waits until every recipient has an outcome (none queued).
async fn run(stack: &Stack, id: &str, recipients: Vec<Value>) -> std::collections::BTreeMap<String, u64> {
    let n = recipients.len() as u64;
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body(id, recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let counts = common::counts(&stack.campaign(id).await);
        if counts["queued"] == 0 && counts["sent"] + counts["bounced"] + counts["deferred"] == n {
            return counts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id}: {counts:?}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of a worker's samples of `metric` whose labels contain `label` (all if empty).
async fn worker_metric(stack: &Stack, metric: &str, label: &str) -> f64 {
    let text = stack.scrape(1).await;
    text.lines()
        .filter(|l| l.starts_with(metric) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the sink has no session open.
async fn all_sessions_ended(sink: &SinkState, what: &str) {
    wait_for(what, Duration::from_secs(10), || async { (sink.open_sessions() == 0).then_some(()) }).await;
}

fn ended(sink: &SinkState) -> (u64, u64, u64, u64) {
    (
        sink.connections.load(Ordering::SeqCst),
        sink.quits.load(Ordering::SeqCst),
        sink.left_without_quit.load(Ordering::SeqCst),
        sink.closed_by_sink.load(Ordering::SeqCst),
    )
}

/// The review's case: the server's idle timeout (Postfix `smtpd_timeout`) closes every pooled
/// connection during a pause; the next campaign still goes out whole on its first attempt.
async fn stale_connections_are_replaced(route: Route) {
    let limits = "[limits.default]\nrate = \"10000/s\"\nburst = 10000\nconnections = 4\n";
    let setup =
        start(route, "idle_timeout = \"60s\"", limits, |s| s.set_idle_close(Some(Duration::from_secs(1)))).await;
    let (stack, sink) = (&setup.stack, &setup.stack.sink.state);
    let first = run(stack, "before", recipients("a", 60, None)).await;
    assert_eq!(first["sent"], 60, "{route:?}: {first:?}");
    all_sessions_ended(sink, "the sink to time out every pooled connection").await;
    let (opened, _, _, timed_out) = ended(sink);
    assert_eq!(timed_out, opened, "{route:?}: the server closed them all, the worker none");

    let second = run(stack, "after", recipients("b", 60, None)).await;
    assert_eq!((second["sent"], second["deferred"]), (60, 0), "{route:?}: {second:?}\n{}", stack.logs());
    for i in 0..60 {
        assert_eq!(sink.attempts_for(&format!("b{i}@x.example")), 1, "{route:?}: b{i} was tried once");
    }
    let replaced = worker_metric(stack, "sluice_smtp_connections_closed_total", "reason=\"stale\"").await;
    assert!(replaced >= 1.0, "{route:?}: replacements are counted ({replaced})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_relay_times_out_idle_connections_the_next_campaign_has_no_deferral() {
    stale_connections_are_replaced(Route::Relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_mx_times_out_idle_connections_the_next_campaign_has_no_deferral() {
    stale_connections_are_replaced(Route::Mx).await;
}

/// 100 recipients on one connection at a time, every fifth refused at RCPT: one connection
/// carries them all, as it does when none is refused.
async fn refusals_keep_the_connection(route: Route, pipelining: bool, refuse_every: Option<usize>) {
    let limits =
        "[limits.default]\nrate = \"10000/s\"\nburst = 10000\nconnections = 1\nmessages_per_connection = 1000\n";
    let setup = start(route, "", limits, |s| s.set_pipelining(pipelining)).await;
    let (stack, sink) = (&setup.stack, &setup.stack.sink.state);
    let counts = run(stack, "refusals", recipients("u", 100, refuse_every)).await;
    let refused = refuse_every.map_or(0, |k| 100_u64.div_ceil(k as u64));
    assert_eq!((counts["sent"], counts["bounced"]), (100 - refused, refused), "{route:?}: {counts:?}");
    let case = format!("{route:?}, pipelining {pipelining}, refusing every {refuse_every:?}");
    assert_eq!(sink.connections.load(Ordering::SeqCst), 1, "{case}: one connection for all\n{}", stack.logs());
    assert_eq!(sink.pipelined.load(Ordering::SeqCst) > 0, pipelining, "{case}: pipelined when offered");
    assert_eq!(sink.attempts.lock().unwrap().values().sum::<u32>(), 100, "{case}: each recipient tried once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_recipients_open_no_more_connections_than_none_refused() {
    refusals_keep_the_connection(Route::Relay, true, None).await;
    refusals_keep_the_connection(Route::Relay, true, Some(5)).await;
    refusals_keep_the_connection(Route::Relay, false, Some(5)).await;
    refusals_keep_the_connection(Route::Mx, true, Some(5)).await;
    refusals_keep_the_connection(Route::Mx, false, Some(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_with_quit() {
    let limits = "[limits.default]\nrate = \"10000/s\"\nburst = 10000\nconnections = 3\n";
    let setup = start(Route::Relay, "idle_timeout = \"300ms\"", limits, |_| {}).await;
    let (stack, sink) = (&setup.stack, &setup.stack.sink.state);
    run(stack, "idle", recipients("u", 40, Some(4))).await;
    all_sessions_ended(sink, "the worker to close its idle connections").await;
    let (opened, quits, left, closed) = ended(sink);
    assert!(opened >= 1);
    assert_eq!((quits, left, closed), (opened, 0, 0), "every session ended with QUIT\n{}", stack.logs());
    let idle = worker_metric(stack, "sluice_smtp_connections_closed_total", "reason=\"idle\"").await;
    assert_eq!(idle, opened as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_and_shutdown_end_with_quit() {
    // 50 messages at 25/s take two seconds: connections reach the one-second age limit.
    let limits = "[limits.default]\nrate = \"25/s\"\nburst = 1\nconnections = 2\n";
    let mut setup = start(Route::Relay, "idle_timeout = \"60s\"\nmax_connection_age = \"1s\"", limits, |_| {}).await;
    run(&setup.stack, "aging", recipients("u", 50, Some(5))).await;
    let aged = worker_metric(&setup.stack, "sluice_smtp_connections_closed_total", "reason=\"age\"").await;
    assert!(aged >= 1.0, "connections past the age limit were closed ({aged})");
    let status = tokio::task::block_in_place(|| setup.stack.workers[0].terminate());
    assert!(status.success(), "{status:?}");
    let sink = &setup.stack.sink.state;
    all_sessions_ended(sink, "every session to end after shutdown").await;
    let (opened, quits, left, closed) = ended(sink);
    assert!(opened >= 2, "a new connection followed an aged one ({opened})");
    assert_eq!((quits, left, closed), (opened, 0, 0), "every session ended with QUIT\n{}", setup.stack.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_connections_end_with_quit_at_their_message_limit() {
    let limits = "[limits.default]\nrate = \"10000/s\"\nburst = 10000\nconnections = 1\nmessages_per_connection = 10\n";
    let setup = start(Route::Mx, "idle_timeout = \"60s\"", limits, |_| {}).await;
    let (stack, sink) = (&setup.stack, &setup.stack.sink.state);
    let counts = run(stack, "limit", recipients("u", 30, Some(3))).await;
    assert_eq!((counts["sent"], counts["bounced"]), (20, 10), "{counts:?}");
    all_sessions_ended(sink, "the third connection to close at its limit").await;
    assert_eq!(ended(sink), (3, 3, 0, 0), "three connections of ten messages, each ended with QUIT");
}

/// The transaction is Sluice's own now, so it must ask for SMTPUTF8 itself: a non-ASCII
/// address reaches a strict server (which refuses one without it), pipelined or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_addresses_go_with_smtputf8() {
    for pipelining in [true, false] {
        let setup = start(Route::Relay, "", "", |s| s.set_pipelining(pipelining)).await;
        let to = ["jos\u{e9}@x.example", "ann@x.example"];
        let body = to.iter().map(|r| json!({"email": r, "vars": {"name": "Jos\u{e9}"}})).collect();
        let counts = run(&setup.stack, "utf8", body).await;
        assert_eq!(counts["sent"], 2, "pipelining {pipelining}: {counts:?}\n{}", setup.stack.logs());
        assert_eq!(setup.stack.sink.state.delivered_to(to[0]), 1);
    }
}
