//! Delivery logic against a scripted transport double and a real redis-server.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sluice_shared::{
    config::{Config, Role},
    keys,
    model::{CampaignSpec, Job, Sender},
};
use sluice_testkit::RedisServer;

use super::{Batch, Entry, process};
use crate::{
    context::{Clock, Ctx},
    transport::{Envelope, SendError, SmtpReply, Transport},
};

/// Answers per recipient local part, and counts what it was asked to send.
#[derive(Default)]
pub(crate) struct Scripted {
    sent: Mutex<HashMap<String, u32>>,
}

impl Transport for Scripted {
    async fn send(&self, envelope: &Envelope, _message: &[u8]) -> Result<SmtpReply, SendError> {
        *self.sent.lock().unwrap().entry(envelope.to.clone()).or_insert(0) += 1;
        let local = envelope.to.split('@').next().unwrap();
        match local {
            l if l.starts_with("ok") => Ok(SmtpReply::parse(250, "2.0.0 queued")),
            "gone" => Err(SendError::Rejected(SmtpReply::parse(550, "5.1.1 no such user"))),
            "spam" => Err(SendError::Rejected(SmtpReply::parse(554, "5.7.1 rejected as spam"))),
            "busy" => Err(SendError::Rejected(SmtpReply::parse(451, "4.7.0 try later"))),
            "down" => Err(SendError::Connection("connection refused".into())),
            _ => Err(SendError::Unsendable("no SMTPUTF8".into())),
        }
    }
}

pub(crate) async fn setup(redis: &RedisServer, locals: &[&str]) -> (Arc<Ctx<Scripted>>, Vec<Entry>) {
    setup_with(redis, locals, "", None).await
}

/// A worker context (with `extra` TOML and, if given, a clock) and one job per local part.
async fn setup_with(
    redis: &RedisServer,
    locals: &[&str],
    extra: &str,
    clock: Option<Clock>,
) -> (Arc<Ctx<Scripted>>, Vec<Entry>) {
    let toml = format!(
        "[redis]\nurl = \"{}\"\n[[smtp.relays]]\nhost = \"127.0.0.1\"\nport = 1\n[dkim]\nmissing_key = \"send\"\n{extra}",
        redis.url()
    );
    let config = Arc::new(Config::from_toml(&toml, Role::Worker).unwrap());
    let pool = sluice_shared::redis::pool(&config.redis).unwrap();
    let spec = CampaignSpec {
        id: "c".into(),
        name: None,
        from: Sender { email: "news@shop.example".into(), name: None },
        reply_to: None,
        subject: "Hi {{name}}".into(),
        html: None,
        text: Some("Hello".into()),
        headers: Default::default(),
        send_at_ms: None,
        ..Default::default()
    };
    let mut conn = redis.conn();
    let _: () = redis::cmd("HSET")
        .arg(keys::campaign_meta("c"))
        .arg(&[
            ("spec", serde_json::to_string(&spec).unwrap()),
            ("status", "running".into()),
            ("created_at", "1".into()),
        ])
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(keys::campaign_counts("c"))
        .arg(&[("total", locals.len()), ("queued", locals.len())])
        .query(&mut conn)
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let entries = locals
        .iter()
        .enumerate()
        .map(|(i, local)| {
            let vars = if *local == "novars" { String::new() } else { "{\"name\":\"N\"}".into() };
            let job = Job {
                campaign: "c".into(),
                index: i as u64,
                recipient: format!("{local}@x.example"),
                vars,
                attempt: 0,
                queued_at_ms: now,
                parked: false,
            };
            Entry { id: format!("1-{i}"), job }
        })
        .collect();
    let mut ctx = Ctx::new(pool, config, Scripted::default(), "w1".into());
    if let Some(clock) = clock {
        ctx.clock = clock;
    }
    (Arc::new(ctx), entries)
}

pub(crate) fn counts(redis: &RedisServer) -> HashMap<String, i64> {
    redis::cmd("HGETALL").arg(keys::campaign_counts("c")).query(&mut redis.conn()).unwrap()
}

fn state(redis: &RedisServer) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(keys::campaign_state("c")).query(&mut redis.conn()).unwrap()
}

#[tokio::test]
async fn every_reply_class_is_recorded_with_its_consequence() {
    let redis = RedisServer::start();
    let locals = ["ok", "gone", "spam", "busy", "down", "utf8", "novars"];
    let (ctx, entries) = setup(&redis, &locals).await;
    process(ctx.clone(), "x.example".into(), Batch { entries, ..Default::default() }).await;

    let c = counts(&redis);
    assert_eq!((c["sent"], c["bounced"], c["deferred"], c["failed"], c["queued"]), (1, 1, 2, 3, 0), "{c:?}");
    let s = state(&redis);
    let by_local: HashMap<&str, &str> =
        locals.iter().enumerate().map(|(i, l)| (*l, s[&i.to_string()].as_str())).collect();
    assert_eq!(by_local["ok"], "s");
    // Spam content fails (DOMAIN.md: do not bounce the address for the content).
    assert_eq!((by_local["gone"], by_local["spam"]), ("b", "f"));
    assert_eq!((by_local["busy"], by_local["down"]), ("d0", "d0"));
    assert_eq!((by_local["utf8"], by_local["novars"]), ("f", "f"));
    // Only the invalid recipient is suppressed; the spam block is not the recipient's fault.
    let suppressed: Vec<String> = redis::cmd("HKEYS").arg(keys::suppressed()).query(&mut redis.conn()).unwrap();
    assert_eq!(suppressed, vec!["gone@x.example".to_string()]);
    // Deferred jobs wait in the retry set as their next attempt.
    let retry: Vec<String> =
        redis::cmd("ZRANGE").arg(keys::campaign_retry("c")).arg(0).arg(-1).query(&mut redis.conn()).unwrap();
    let attempts: Vec<u32> = retry.iter().map(|m| serde_json::from_str::<Job>(m).unwrap().attempt).collect();
    assert_eq!(attempts, vec![1, 1]);
    // The render failure never reached the transport.
    assert!(!ctx.transport.sent.lock().unwrap().contains_key("novars@x.example"));
    let events: i64 = redis::cmd("XLEN").arg(keys::campaign_events("c")).query(&mut redis.conn()).unwrap();
    assert_eq!(events, 7);
}

#[tokio::test]
async fn a_deferral_whose_retry_would_pass_max_age_fails_with_the_reason() {
    let redis = RedisServer::start();
    let (ctx, mut entries) = setup(&redis, &["busy"]).await;
    // Queued 3 days minus 30 s ago: the first retry (1 min) would come after max age.
    entries[0].job.queued_at_ms -= 3 * 86_400_000 - 30_000;
    process(ctx.clone(), "x.example".into(), Batch { entries, ..Default::default() }).await;
    assert_eq!(state(&redis)["0"], "f");
    assert_eq!(ctx.transport.sent.lock().unwrap().len(), 1, "it was tried once");
    let events: Vec<(String, HashMap<String, String>)> =
        redis::cmd("XRANGE").arg(keys::campaign_events("c")).arg("-").arg("+").query(&mut redis.conn()).unwrap();
    assert_eq!(events[0].1["type"], "failed");
    assert!(events[0].1["data"].contains("max_age") && events[0].1["data"].contains("4.7.0"), "{:?}", events[0].1);
}

#[tokio::test]
async fn a_job_older_than_max_age_is_failed_before_any_send() {
    let redis = RedisServer::start();
    let (ctx, mut entries) = setup(&redis, &["ok"]).await;
    entries[0].job.queued_at_ms = 0; // sat somewhere (a dead worker's pending list, a pause) for ages
    process(ctx.clone(), "x.example".into(), Batch { entries, ..Default::default() }).await;
    assert_eq!(state(&redis)["0"], "f");
    assert!(ctx.transport.sent.lock().unwrap().is_empty(), "never sent");
    let c = counts(&redis);
    assert_eq!((c["failed"], c["queued"]), (1, 0), "{c:?}");
}

#[tokio::test]
async fn a_replayed_entry_is_never_sent_or_counted_twice() {
    let redis = RedisServer::start();
    let (ctx, entries) = setup(&redis, &["ok", "gone"]).await;
    process(ctx.clone(), "x.example".into(), Batch { entries: entries.clone(), ..Default::default() }).await;
    // The same entries again (a reclaim after a crash between record and ack) ...
    process(ctx.clone(), "x.example".into(), Batch { entries: entries.clone(), ..Default::default() }).await;
    // ... and the same jobs under other entry ids (expanded twice).
    let copies = entries.iter().map(|e| Entry { id: format!("2-{}", e.job.index), job: e.job.clone() }).collect();
    process(ctx.clone(), "x.example".into(), Batch { entries: copies, ..Default::default() }).await;
    let sent = ctx.transport.sent.lock().unwrap().clone();
    assert_eq!((sent["ok@x.example"], sent["gone@x.example"]), (1, 1));
    let c = counts(&redis);
    assert_eq!((c["sent"], c["bounced"], c["queued"]), (1, 1, 0), "{c:?}");
}

/// The warm-up runs on a clock set to late November 2026, while max age is judged by Redis's
/// own clock: the retry window is made wide enough that those jobs never age out whatever
/// today's date (with the 5-day default this test failed from December 2026 on).
const WARMUP: &str = "[warmup.plans.new]\ndays = [3, 5]\n[warmup.senders.\"shop.example\"]\nplan = \"new\"\n\
                      start = \"2026-11-25\"\n[retry]\nmax_age = \"36500d\"\n";

#[tokio::test]
async fn the_warmup_cap_holds_for_the_day_and_grows_the_next() {
    let redis = RedisServer::start();
    let now = Arc::new(Mutex::new("2026-11-25T23:59:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap()));
    let clock = {
        let now = now.clone();
        Clock::from_fn(move || *now.lock().unwrap())
    };
    let locals = ["ok0", "ok1", "ok2", "ok3", "ok4"];
    let (ctx, entries) = setup_with(&redis, &locals, WARMUP, Some(clock.clone())).await;
    process(ctx.clone(), "x.example".into(), Batch { entries, ..Default::default() }).await;

    // Day 0: cap 3. Two wait for midnight, unsent, without using an attempt.
    let c = counts(&redis);
    assert_eq!((c["sent"], c["deferred"], c["queued"]), (3, 2, 0), "{c:?}");
    assert_eq!(ctx.transport.sent.lock().unwrap().len(), 3);
    let midnight = "2026-11-26T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp_millis();
    let waiting: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(keys::campaign_retry("c"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(
        waiting.iter().all(|(m, score)| *score == midnight && serde_json::from_str::<Job>(m).unwrap().attempt == 0)
    );
    assert_eq!(state(&redis).len(), 3, "held recipients are back to never tried");

    // Another worker the same day finds the cap used up: the cap is the cluster's.
    let (other, _) = setup_with(&redis, &[], WARMUP, Some(clock)).await;
    let late = Entry {
        id: "1-9".into(),
        job: Job {
            campaign: "c".into(),
            index: 9,
            recipient: "ok9@x.example".into(),
            vars: "{\"name\":\"N\"}".into(),
            attempt: 0,
            queued_at_ms: midnight as u64,
            parked: false,
        },
    };
    let _: () =
        redis::cmd("HINCRBY").arg(keys::campaign_counts("c")).arg("queued").arg(1).query(&mut redis.conn()).unwrap();
    process(other.clone(), "x.example".into(), Batch { entries: vec![late], ..Default::default() }).await;
    assert!(other.transport.sent.lock().unwrap().is_empty());
    assert_eq!(counts(&redis)["deferred"], 3);

    // Past midnight: day 1, cap 5. The waiting jobs come back (as the scheduler's retry
    // promotion would put them) and go out.
    *now.lock().unwrap() = "2026-11-26T00:00:01Z".parse().unwrap();
    let members: Vec<String> =
        redis::cmd("ZRANGE").arg(keys::campaign_retry("c")).arg(0).arg(-1).query(&mut redis.conn()).unwrap();
    let mut conn = ctx.conn().await.unwrap();
    sluice_shared::redis::scripts::campaign::retry_done(&mut conn, "c", &members).await.unwrap();
    let back: Vec<Entry> = members
        .iter()
        .enumerate()
        .map(|(k, m)| Entry { id: format!("2-{k}"), job: serde_json::from_str(m).unwrap() })
        .collect();
    process(ctx.clone(), "x.example".into(), Batch { entries: back, ..Default::default() }).await;
    let c = counts(&redis);
    assert_eq!((c["sent"], c["deferred"], c["queued"]), (6, 0, 0), "{c:?}");
    let today: u64 =
        redis::cmd("GET").arg(keys::warmup_sent("shop.example", "2026-11-26")).query(&mut redis.conn()).unwrap();
    assert_eq!(today, 3);
}

#[test]
fn pipelined_bulk_runs_are_eight_jobs_or_more_and_other_runs_use_every_connection() {
    let lengths = |n: usize, connections: usize, shortest: usize| {
        let jobs: Vec<usize> = (0..n).collect();
        let runs: Vec<&[usize]> = super::runs(&jobs, connections, shortest).collect();
        assert_eq!(runs.concat(), jobs, "every job once, in order");
        runs.iter().map(|r| r.len()).collect::<Vec<_>>()
    };
    let runs_of = |len: usize, count: usize, last: usize| [vec![len; count], vec![last]].concat();
    assert_eq!(lengths(100, 16, super::BULK_RUN), runs_of(8, 12, 4));
    assert_eq!(lengths(500, 16, super::BULK_RUN), runs_of(32, 15, 20), "no more runs than connections");
    assert_eq!(lengths(5, 16, super::BULK_RUN), [5]);
    assert_eq!(lengths(5, 16, 1), [1; 5]);
    assert_eq!(lengths(40, 16, 1), runs_of(3, 13, 1));
    assert_eq!(lengths(3, 0, super::BULK_RUN), [3], "a destination with no connections still gets one run");
}
