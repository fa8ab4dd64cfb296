//! Every Redis key Sluice uses, in one place.
//!
//! Keys that one Lua script or multi-key command touches together share a `{hash tag}`, so
//! the same code runs on Redis Cluster:
//! - `{c:ID}`: everything about one campaign (spec, counters, recipient states, retries, events);
//! - `{d:DOMAIN}`: one destination domain (its job stream, token bucket, reclaim marker).
//!
//! Global keys (`sluice:suppressed`, `sluice:domains`, ...) are each touched alone; the hot
//! ones (ready sets, the event feed) are sharded, each shard under a hash tag of its own.

/// Consumer group of the schedulers on the intake stream.
pub const INTAKE_GROUP: &str = "schedulers";
/// Consumer group of the workers on every domain stream.
pub const WORKER_GROUP: &str = "workers";

/// Stream external systems add campaigns to (field `campaign`, JSON).
pub fn intake() -> String {
    "sluice:intake".into()
}

/// Stream of intake entries that were rejected: fields `entry`, `error`, `campaign`.
pub fn intake_errors() -> String {
    "sluice:intake:errors".into()
}

/// Sorted set of every campaign id, scored by creation time (ms): the paged list.
pub fn campaigns() -> String {
    "sluice:campaigns".into()
}

/// Set of campaign ids the schedulers still look after (scheduled, running, paused).
pub fn active_campaigns() -> String {
    "sluice:campaigns:active".into()
}

/// Hash: the campaign's normalised spec (`spec`), its digest, status, cursor and times.
pub fn campaign_meta(id: &str) -> String {
    format!("sluice:{{c:{id}}}:meta")
}

/// Hash of counters: total, suppressed, queued, deferred, sent, bounced, failed, cancelled.
pub fn campaign_counts(id: &str) -> String {
    format!("sluice:{{c:{id}}}:counts")
}

/// List of accepted recipients (JSON) not yet moved into domain streams.
pub fn campaign_staged(id: &str) -> String {
    format!("sluice:{{c:{id}}}:staged")
}

/// Hash recipient index -> state: `q<attempt>:<entry>` in flight, `d<attempt>` deferred,
/// `s` sent, `b` bounced, `f` failed, `p<attempt>` dead-lettered, `u` suppressed, `z` dormant
/// (skipped by the sunset policy), `x` cancelled.
/// Doubles as the sent marker.
pub fn campaign_state(id: &str) -> String {
    format!("sluice:{{c:{id}}}:state")
}

/// Sorted set of jobs waiting to go back into a domain stream (retries, parked while paused),
/// scored by due time (ms, Redis clock).
pub fn campaign_retry(id: &str) -> String {
    format!("sluice:{{c:{id}}}:retry")
}

/// Stream of the campaign's events (queued, sent, deferred, bounced, failed, suppressed).
pub fn campaign_events(id: &str) -> String {
    format!("sluice:{{c:{id}}}:events")
}

/// Set of what happened to recipients after the send, once each: `u:<index>` unsubscribed,
/// `b:<index>` bounce report, `c:<index>` complaint.
pub fn campaign_late_events(id: &str) -> String {
    format!("sluice:{{c:{id}}}:late")
}

/// Stream of jobs for one destination domain, read by the `workers` group.
pub fn domain_stream(domain: &str) -> String {
    format!("sluice:{{d:{domain}}}:q")
}

/// Stream of one lane's jobs for a destination: the bulk lane is [`domain_stream`], the
/// priority lane (transactional messages) `sluice:{d:DOMAIN}:tq`.
pub fn lane_stream(domain: &str, lane: crate::lane::Lane) -> String {
    match lane {
        crate::lane::Lane::Bulk => domain_stream(domain),
        crate::lane::Lane::Priority => format!("sluice:{{d:{domain}}}:tq"),
    }
}

/// Marker (SET NX PX) that spaces out reclaim scans of one lane's stream.
pub fn lane_reclaim_marker(domain: &str, lane: crate::lane::Lane) -> String {
    match lane {
        crate::lane::Lane::Bulk => domain_reclaim_marker(domain),
        crate::lane::Lane::Priority => format!("sluice:{{d:{domain}}}:trc"),
    }
}

/// Lease (SET NX PX) of the one worker sweeping `campaign`'s jobs out of a lane's stream.
pub fn lane_sweep_lease(domain: &str, lane: crate::lane::Lane, campaign: &str) -> String {
    format!("sluice:{{d:{domain}}}:sweep:{}:{campaign}", lane.as_str())
}

/// API key `id`'s send rate: the theoretical arrival time of its next send (GCRA, ms).
pub fn key_send_rate(id: &str) -> String {
    format!("sluice:{{k:{id}}}:send")
}

/// Hash holding the domain's token bucket (`tokens`, `ts`), shared by the whole cluster.
pub fn domain_bucket(domain: &str) -> String {
    format!("sluice:{{d:{domain}}}:tb")
}

/// Hash of the domain's adaptive shape after throttling replies: `factor`, `until`, `ramp`
/// (rate cut and recovery), `suspend_until` (ms, Redis clock). Expires when it no longer applies.
pub fn domain_shape(domain: &str) -> String {
    format!("sluice:{{d:{domain}}}:shape")
}

/// Counter of recent soft bounces (mailbox full...) of one address; expires after the
/// configured window.
pub fn soft_bounces(address: &str) -> String {
    format!("sluice:soft-bounces:{address}")
}

/// Marker (SET NX PX) that spaces out reclaim scans of one domain stream.
pub fn domain_reclaim_marker(domain: &str) -> String {
    format!("sluice:{{d:{domain}}}:rc")
}

/// Set of every domain that ever had a stream (reclaim sweeps, queue depth metrics).
pub fn domains() -> String {
    "sluice:domains".into()
}

/// The bulk lane's ready set is split into this many shards with their own hash tags, so on
/// Redis Cluster no one slot takes every worker's scheduling traffic. A destination always
/// lives in the same shard ([`ready_of`]); workers visit the shards in turn. The priority
/// lane keeps one set: its traffic is small, and it polls every few milliseconds, where each
/// extra shard would be one more Redis call per poll.
pub const READY_SHARDS: usize = 4;

/// How many ready shards `lane` has.
pub fn ready_shards(lane: crate::lane::Lane) -> usize {
    match lane {
        crate::lane::Lane::Bulk => READY_SHARDS,
        crate::lane::Lane::Priority => 1,
    }
}

/// Sorted set domain -> the time (ms, Redis clock) it is next worth a worker's visit, for one
/// lane and shard: bulk `sluice:{r:K}:ready`, priority `sluice:{rt:K}:ready`.
pub fn ready_for(lane: crate::lane::Lane, shard: usize) -> String {
    match lane {
        crate::lane::Lane::Bulk => format!("sluice:{{r:{shard}}}:ready"),
        crate::lane::Lane::Priority => format!("sluice:{{rt:{shard}}}:ready"),
    }
}

/// The ready set that holds `domain` in `lane`.
pub fn ready_of(lane: crate::lane::Lane, domain: &str) -> String {
    ready_for(lane, (fnv1a(domain) % ready_shards(lane) as u64) as usize)
}

/// FNV-1a: a stable hash for placing ids in shards, the same in every process and release.
fn fnv1a(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Sorted set message id -> when a scheduler should next look at it (ms): messages not yet
/// finished (the schedulers' counterpart of [`active_campaigns`] for messages).
pub fn messages_due() -> String {
    "sluice:messages:due".into()
}

/// `id digest` stored under an `Idempotency-Key` of one API key for the idempotency window.
pub fn idempotency(key_id: &str, idempotency_key: &str) -> String {
    format!("sluice:idem:{key_id}:{idempotency_key}")
}

/// Hash of a stored template: `latest` (version number) and `v<N>` (JSON of each version).
pub fn template(id: &str) -> String {
    format!("sluice:template:{id}")
}

/// The event feed is split into this many shards, each with its own hash tag (`{e:K}`), so
/// on Redis Cluster no one slot carries every event. A source's events all go to one shard
/// ([`feed_shard_of`]), which keeps them in order. Fixed: changing it would move sources.
pub const FEED_SHARDS: usize = 8;

/// The shard of a campaign's or message's events (FNV-1a of its id: stable everywhere).
pub fn feed_shard_of(source: &str) -> usize {
    (fnv1a(source) % FEED_SHARDS as u64) as usize
}

/// One shard of the event feed: the events of its sources, copied in order of arrival from
/// their own streams by the schedulers, about a thousand per entry (fields `n` sequence number
/// of the first in this shard, `ev` the events). Read by `GET /v1/events` and the webhooks.
pub fn feed(shard: usize) -> String {
    format!("sluice:{{e:{shard}}}:feed")
}

/// Sorted set source id -> version: the shard's campaigns and messages whose events may not
/// all be in the feed yet. Every writer of events bumps the version before and after.
pub fn feed_pending(shard: usize) -> String {
    format!("sluice:{{e:{shard}}}:pending")
}

/// Counter of events copied into the shard (each feed entry's `n`).
pub fn feed_seq(shard: usize) -> String {
    format!("sluice:{{e:{shard}}}:seq")
}

/// Lease (SET NX PX) of the one scheduler that copies events into the shard.
pub fn feed_lease(shard: usize) -> String {
    format!("sluice:{{e:{shard}}}:lease")
}

/// The reconcile duty's lease: one scheduler at a time looks for lost jobs.
pub fn reconcile_lease() -> &'static str {
    "sluice:reconcile:lease"
}

/// Hash of webhook endpoints made over the API: id -> JSON (url, secret, events).
pub fn webhooks() -> String {
    "sluice:webhooks".into()
}

/// Hash of the history writer's place in feed shard `shard`: `cursor` (`<feed entry id>.<index>`
/// of the last event written to PostgreSQL), `n` (its sequence number), `written`, `dropped`
/// (events trimmed from the feed before they were written).
pub fn history_state(shard: usize) -> String {
    format!("sluice:{{e:{shard}}}:history")
}

/// Lease of the one scheduler writing feed shard `shard` to PostgreSQL.
pub fn history_lease(shard: usize) -> String {
    format!("sluice:{{e:{shard}}}:history_lease")
}

/// Hash of one endpoint's delivery state: `cursor` (feed entry id), `cursor_n`, `delivered`,
/// `dropped`, `attempts`, `next_attempt_at`, `last_success_at`, `last_error`, `last_error_at`.
pub fn webhook_state(id: &str) -> String {
    format!("sluice:webhook:{id}")
}

/// Lease of the one scheduler delivering to endpoint `id`.
pub fn webhook_lease(id: &str) -> String {
    format!("sluice:webhook:{id}:lease")
}

/// Sorted set of template ids, scored by last change (ms).
pub fn templates() -> String {
    "sluice:templates".into()
}

/// Hash of the reputation guard's rolling counts for one scope (`c:CAMPAIGN`, `c:CAMPAIGN@PROVIDER`,
/// `f:FROM_DOMAIN`, `f:FROM_DOMAIN@PROVIDER`; see `reputation::Scope`).
pub fn reputation(scope: &str) -> String {
    format!("sluice:{{rep:{scope}}}")
}

/// Hash lower-cased address -> engagement record (10 bytes) for one of 65,536 buckets; the
/// buckets of one group (`engagement::group`) share a slot.
pub fn engagement_bucket(bucket: u32) -> String {
    format!("sluice:{{eng:{}}}:{bucket}", crate::engagement::group(bucket))
}

/// Hash lower-cased address -> JSON reason: addresses that are never sent to.
pub fn suppressed() -> String {
    "sluice:suppressed".into()
}

/// Hash lower-cased address -> JSON: addresses unsubscribed from campaigns, all of them or
/// only some lists (see `suppression`). In the slot of [`suppressed`], so one script may read
/// or edit both.
pub fn unsubscribed() -> String {
    "sluice:unsubscribed{sluice:suppressed}".into()
}

/// Set when the suppression list's entries are in their current form (see
/// `suppression::migrate`); in the slot of [`suppressed`].
pub fn suppression_version() -> String {
    "sluice:suppression-version{sluice:suppressed}".into()
}

/// Stream of jobs that kept killing or stalling their workers: fields `c`, `i`, `r`, `v`, `a`,
/// `t` (the job), `domain`, `entry` (its stream entry), `deliveries`.
pub fn dead_letters() -> String {
    "sluice:dead-letters".into()
}

/// Stream of inbound messages (bounce/complaint reports) that could not be parsed or matched:
/// fields `reason`, `received_at`, `size`, `truncated`, `raw` (the first 32 KiB).
pub fn inbound_unmatched() -> String {
    "sluice:inbound:unmatched".into()
}

/// Sends counted against a From domain's warm-up cap on one UTC date (`YYYY-MM-DD`).
pub fn warmup_sent(domain: &str, date: &str) -> String {
    format!("sluice:warmup:{domain}:{date}")
}

/// Messages sent from one source address on one UTC date (its warm-up cap).
pub fn warmup_ip_sent(address: &str, date: &str) -> String {
    format!("sluice:warmup:ip:{address}:{date}")
}

/// Marker (SET NX PX `http.repeat_window`) of one client having opened one pixel or link:
/// `digest` is a hash of the token and the client's address, so neither is stored.
pub fn tracked_repeat(digest: &str) -> String {
    format!("sluice:tracked:{digest}")
}

/// Stream of mutating admin API calls: `at`, `key`, `method`, `path`, `status`, `request_id`.
pub fn audit() -> String {
    "sluice:audit".into()
}

/// Sorted set consumer name -> last heartbeat (ms): live workers.
pub fn workers() -> String {
    "sluice:workers".into()
}

/// The domain named by a domain stream key, if `key` is one.
pub fn domain_of_stream(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("sluice:{d:")?;
    rest.strip_suffix("}:q").or_else(|| rest.strip_suffix("}:tq"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_strings_are_pinned() {
        assert_eq!(intake(), "sluice:intake");
        assert_eq!(intake_errors(), "sluice:intake:errors");
        assert_eq!(campaigns(), "sluice:campaigns");
        assert_eq!(active_campaigns(), "sluice:campaigns:active");
        assert_eq!(campaign_meta("c1"), "sluice:{c:c1}:meta");
        assert_eq!(campaign_counts("c1"), "sluice:{c:c1}:counts");
        assert_eq!(campaign_staged("c1"), "sluice:{c:c1}:staged");
        assert_eq!(campaign_state("c1"), "sluice:{c:c1}:state");
        assert_eq!(campaign_retry("c1"), "sluice:{c:c1}:retry");
        assert_eq!(campaign_events("c1"), "sluice:{c:c1}:events");
        assert_eq!(campaign_late_events("c1"), "sluice:{c:c1}:late");
        assert_eq!(domain_stream("gmail.com"), "sluice:{d:gmail.com}:q");
        assert_eq!(domain_bucket("gmail.com"), "sluice:{d:gmail.com}:tb");
        assert_eq!(domain_reclaim_marker("gmail.com"), "sluice:{d:gmail.com}:rc");
        assert_eq!(domain_shape("gmail.com"), "sluice:{d:gmail.com}:shape");
        assert_eq!(soft_bounces("ann@x.example"), "sluice:soft-bounces:ann@x.example");
        assert_eq!(domains(), "sluice:domains");
        assert_eq!(suppressed(), "sluice:suppressed");
        assert_eq!(unsubscribed(), "sluice:unsubscribed{sluice:suppressed}");
        assert_eq!(reputation("f:shop.example@google"), "sluice:{rep:f:shop.example@google}");
        assert_eq!(engagement_bucket(4097), "sluice:{eng:1}:4097");
        // Redis hashes a key by its first `{tag}`, or the whole name without one: the same slot.
        // Every key starts with `sluice:`, which the documented ACL users are limited to.
        let tag =
            |key: String| key.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(t, _)| t.to_string());
        assert_eq!(tag(unsubscribed()).as_deref(), Some(suppressed().as_str()), "one script reads both");
        assert_eq!(tag(suppression_version()).as_deref(), Some(suppressed().as_str()));
        assert_eq!(workers(), "sluice:workers");
        assert_eq!(inbound_unmatched(), "sluice:inbound:unmatched");
        assert_eq!(audit(), "sluice:audit");
        assert_eq!(warmup_sent("shop.example", "2026-11-26"), "sluice:warmup:shop.example:2026-11-26");
        assert_eq!(warmup_ip_sent("192.0.2.10", "2026-11-26"), "sluice:warmup:ip:192.0.2.10:2026-11-26");
        assert_eq!(dead_letters(), "sluice:dead-letters");
        use crate::lane::Lane;
        assert_eq!(lane_stream("a.b", Lane::Bulk), "sluice:{d:a.b}:q");
        assert_eq!(lane_stream("a.b", Lane::Priority), "sluice:{d:a.b}:tq");
        assert_eq!(lane_sweep_lease("a.b", Lane::Bulk, "c1"), "sluice:{d:a.b}:sweep:bulk:c1");
        assert_eq!(lane_reclaim_marker("a.b", Lane::Priority), "sluice:{d:a.b}:trc");
        assert_eq!(ready_for(Lane::Bulk, 2), "sluice:{r:2}:ready");
        assert_eq!(ready_for(Lane::Priority, 0), "sluice:{rt:0}:ready");
        assert_eq!(ready_of(Lane::Bulk, "gmail.com"), ready_of(Lane::Bulk, "gmail.com"));
        let shards: std::collections::HashSet<String> =
            (0..50).map(|d| ready_of(Lane::Bulk, &format!("d{d}.example"))).collect();
        assert_eq!(shards.len(), READY_SHARDS, "domains spread over every ready shard");
        assert_eq!(ready_of(Lane::Priority, "d7.example"), "sluice:{rt:0}:ready");
        assert_eq!(messages_due(), "sluice:messages:due");
        assert_eq!(idempotency("app", "k1"), "sluice:idem:app:k1");
        assert_eq!(template("welcome"), "sluice:template:welcome");
        assert_eq!(templates(), "sluice:templates");
        assert_eq!(feed(3), "sluice:{e:3}:feed");
        assert_eq!(webhooks(), "sluice:webhooks");
        assert_eq!(webhook_state("crm"), "sluice:webhook:crm");
        assert_eq!(webhook_lease("crm"), "sluice:webhook:crm:lease");
        assert_eq!(feed_pending(0), "sluice:{e:0}:pending");
        assert_eq!(feed_seq(7), "sluice:{e:7}:seq");
        assert_eq!(feed_lease(1), "sluice:{e:1}:lease");
        assert_eq!(history_state(2), "sluice:{e:2}:history");
        assert_eq!(history_lease(2), "sluice:{e:2}:history_lease");
        // Pinned: a source must map to the same shard in every release.
        assert_eq!((feed_shard_of("news"), feed_shard_of("msg_01a2")), (6, 7));
        let spread: std::collections::HashSet<usize> = (0..100).map(|i| feed_shard_of(&format!("c{i}"))).collect();
        assert_eq!(spread.len(), FEED_SHARDS, "sources spread over every shard");
    }

    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = key[open..].find('}').unwrap() + open;
        &key[open + 1..close]
    }

    #[test]
    fn keys_touched_together_share_a_hash_tag() {
        let c = [
            campaign_meta("x"),
            campaign_counts("x"),
            campaign_staged("x"),
            campaign_state("x"),
            campaign_retry("x"),
            campaign_events("x"),
            campaign_late_events("x"),
        ];
        assert!(c.iter().all(|k| hash_tag(k) == "c:x"));
        let d = [
            domain_stream("a.b"),
            lane_stream("a.b", crate::lane::Lane::Priority),
            domain_bucket("a.b"),
            domain_reclaim_marker("a.b"),
            lane_reclaim_marker("a.b", crate::lane::Lane::Priority),
            domain_shape("a.b"),
        ];
        assert!(d.iter().all(|k| hash_tag(k) == "d:a.b"));
        assert_eq!(domain_of_stream(&domain_stream("a.b")), Some("a.b"));
        assert_eq!(domain_of_stream("sluice:other"), None);
    }
}
