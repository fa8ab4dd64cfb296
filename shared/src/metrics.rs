//! Metric names and the Prometheus exporter. Domain labels are bounded: configured domains
//! plus "other" (see [`crate::config::LimitsConfig::label`]).

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// Messages by final or interim outcome: labels `outcome`, `domain`.
pub const MESSAGES: &str = "sluice_messages_total";
/// Seconds from the start of an SMTP transaction to the relay's reply: label `domain`.
pub const SMTP_LATENCY: &str = "sluice_smtp_latency_seconds";
/// Jobs waiting in domain streams (sampled by the scheduler): label `domain`.
pub const QUEUE_DEPTH: &str = "sluice_queue_depth";
/// Seconds the oldest job of a destination's stream has waited (sampled by the scheduler):
/// label `domain`.
pub const QUEUE_OLDEST_AGE: &str = "sluice_queue_oldest_age_seconds";
/// Workers that sent a heartbeat in the last 30 s (sampled by the scheduler).
pub const LIVE_WORKERS: &str = "sluice_live_workers";
/// 1 while the scheduler's last round reached Redis, 0 after a failed one.
pub const REDIS_UP: &str = "sluice_redis_up";
/// Times a worker found a domain's token bucket empty: label `domain`.
pub const TOKEN_WAITS: &str = "sluice_token_bucket_waits_total";
/// Hand-offs that waited for a replica (`WAIT 1`): labels `step` (record, sweep, ack,
/// expand, retry) and `result` (acked, timed_out).
pub const REPLICA_WAITS: &str = "sluice_redis_replica_waits_total";
/// Jobs claimed from domain streams.
pub const CLAIMS: &str = "sluice_claims_total";
/// Jobs taken over from a worker presumed dead.
pub const RECLAIMS: &str = "sluice_reclaims_total";
/// Stale duplicate jobs skipped (already handled elsewhere).
pub const SKIPPED: &str = "sluice_skipped_jobs_total";
/// Jobs of campaigns not running swept out of destination streams unhanded: label
/// `outcome` (parked, cancelled, other).
pub const SWEPT: &str = "sluice_swept_jobs_total";
/// Sends refused because the API key was over its `send_rate`: label `key`.
pub const SEND_RATE_LIMITED: &str = "sluice_send_rate_limited_total";
/// SMTP submission sessions opened: label `port` (submission, submissions).
pub const SUBMISSION_SESSIONS: &str = "sluice_submission_sessions_total";
/// SMTP AUTH attempts that failed (wrong id or token, or refused while locked out).
pub const SUBMISSION_AUTH_FAILURES: &str = "sluice_submission_auth_failures_total";
/// Messages accepted over SMTP submission (answered 250).
pub const SUBMISSION_ACCEPTED: &str = "sluice_submission_accepted_total";
/// Submission commands or messages refused: label `reason`.
pub const SUBMISSION_REFUSED: &str = "sluice_submission_refused_total";
/// The reasons [`SUBMISSION_REFUSED`] counts, each registered at zero.
pub const SUBMISSION_REFUSAL_REASONS: [&str; 13] = [
    "auth_required",
    "tls_required",
    "auth_failed",
    "locked_out",
    "no_send_scope",
    "sender_domain",
    "recipient",
    "too_many_recipients",
    "too_big",
    "content",
    "rate_limited",
    "unavailable",
    "syntax",
];
/// Recipients accepted or rejected at intake: label `result`.
pub const INTAKE_RECIPIENTS: &str = "sluice_intake_recipients_total";
/// Campaigns created: label `source` (api, stream).
pub const CAMPAIGNS_CREATED: &str = "sluice_campaigns_created_total";
pub const MESSAGES_ACCEPTED: &str = "sluice_messages_accepted_total";
pub const FEED_EVENTS: &str = "sluice_feed_events_total";
pub const TRACKED: &str = "sluice_tracked_total";
/// Public listener requests answered 429 (a client over `http.public_rate_per_client`).
pub const PUBLIC_RATE_LIMITED: &str = "sluice_public_rate_limited_total";
pub const WEBHOOK_BACKLOG: &str = "sluice_webhook_backlog";
/// Age of the oldest event not yet written to PostgreSQL (0 when caught up): label `shard`.
pub const HISTORY_LAG: &str = "sluice_history_lag_seconds";
/// Events in the feed not yet written to PostgreSQL: label `shard`.
pub const HISTORY_BACKLOG: &str = "sluice_history_backlog_events";
pub const HISTORY_WRITTEN: &str = "sluice_history_written_events_total";
/// Events trimmed from the feed before the history writer read them: lost to history.
pub const HISTORY_DROPPED: &str = "sluice_history_dropped_events_total";
/// Failed writes to PostgreSQL (each retried): the batch stays in the feed.
pub const HISTORY_ERRORS: &str = "sluice_history_write_errors_total";
pub const WEBHOOK_DELIVERIES: &str = "sluice_webhook_deliveries_total";
pub const WEBHOOK_DROPPED: &str = "sluice_webhook_dropped_events_total";
pub const WEBHOOK_LAST_SUCCESS: &str = "sluice_webhook_last_success_timestamp_seconds";
/// Intake stream entries rejected.
pub const INTAKE_ERRORS: &str = "sluice_intake_errors_total";
/// Jobs moved from retry back into domain streams.
pub const RETRIES_PROMOTED: &str = "sluice_retries_promoted_total";
/// Jobs the reconcile duty put back (found nowhere) or dropped (recipient already recorded):
/// label `action` (requeued, dropped).
pub const RECONCILED: &str = "sluice_reconciled_jobs_total";
/// Jobs a worker holds right now.
pub const INFLIGHT: &str = "sluice_worker_inflight";
/// SMTP replies that were not 2xx, by how the rules read them: labels `category`, `action`.
pub const REPLIES: &str = "sluice_replies_total";
/// Rates at or past a reputation threshold, once per batch or complaint that saw them: labels
/// `level` (warn, pause), `rate` (hard_bounce, complaint, deferral).
pub const REPUTATION_FINDINGS: &str = "sluice_reputation_findings_total";
/// A From domain's rolling rates as its last outcome left them, in percent: labels `sender`,
/// `rate` (hard_bounce, complaint, deferral).
pub const SENDER_RATE: &str = "sluice_sender_rate_percent";
/// Campaigns the reputation guard paused.
pub const REPUTATION_PAUSES: &str = "sluice_reputation_pauses_total";
/// Replies that rejected our From domain's authentication (SPF, DKIM, DMARC): label `domain`.
pub const SENDER_AUTH_REJECTIONS: &str = "sluice_sender_auth_rejections_total";
/// Messages asked in ISO-2022-JP but sent as UTF-8 (a character outside JIS X 0208).
pub const CHARSET_FALLBACKS: &str = "sluice_charset_fallbacks_total";
/// Messages not sent because they exceed the destination's `max_message_bytes`: label `domain`.
pub const OVERSIZE: &str = "sluice_messages_oversize_total";
/// Destinations slowed or suspended by a throttling reply: labels `action`, `domain`.
pub const SHAPE_CHANGES: &str = "sluice_destination_shape_changes_total";
/// Share of its configured rate a destination may use now (1 = full): label `domain`.
pub const RATE_FACTOR: &str = "sluice_destination_rate_factor";
/// 1 while a destination is suspended: label `domain`.
pub const SUSPENDED: &str = "sluice_destination_suspended";
/// Addresses suppressed after repeated soft bounces.
pub const SOFT_BOUNCE_SUPPRESSIONS: &str = "sluice_soft_bounce_suppressions_total";
/// Recipients who unsubscribed with the one-click link (counted once per campaign).
pub const UNSUBSCRIBES: &str = "sluice_unsubscribes_total";
/// Inbound reports by result: `result` (bounced, complained, ignored, unmatched, unparseable).
pub const INBOUND_REPORTS: &str = "sluice_inbound_reports_total";
/// Sends counted today against a From domain's warm-up cap: label `sender`.
pub const WARMUP_SENT: &str = "sluice_warmup_sent_today";
/// Today's warm-up cap of a From domain: label `sender`.
pub const WARMUP_CAP: &str = "sluice_warmup_cap";
/// Messages held for the next day because the cap was reached: label `sender`.
pub const WARMUP_HELD: &str = "sluice_warmup_held_total";
/// Recipients of a campaign by state (total, queued, sent, bounced, complained...), for
/// campaigns the schedulers look after and for 10 minutes after they finish: labels
/// `campaign` (operator-chosen ids, bounded by the active campaigns), `state`.
pub const CAMPAIGN_RECIPIENTS: &str = "sluice_campaign_recipients";
/// Redis errors seen by the process: label `op`.
pub const REDIS_ERRORS: &str = "sluice_redis_errors_total";
/// SMTP connections a worker opened.
pub const SMTP_CONNECTIONS_OPENED: &str = "sluice_smtp_connections_opened_total";
/// SMTP connections a worker closed or lost: label `reason` (idle, age, limit, shutdown, lost,
/// stale). `stale`: a pooled connection found dead on first use and replaced; its message went
/// out on another connection, with no attempt and no deferral counted.
pub const SMTP_CONNECTIONS_CLOSED: &str = "sluice_smtp_connections_closed_total";

/// Latency buckets in seconds, from loopback (sub-ms) to slow remote relays.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the global recorder (real histogram buckets for latency) and returns the handle
/// that renders `/metrics` (see [`crate::ops_http`]).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(SMTP_LATENCY.into()), LATENCY_BUCKETS)?
        // A gauge no longer set (a finished campaign, a destination no longer visited) leaves
        // the output after 10 minutes, so per-campaign series do not pile up.
        .idle_timeout(MetricKindMask::GAUGE, Some(Duration::from_secs(600)))
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Registers, at zero, the series of this role that would otherwise appear only after their
/// first event (errors, reclaims, reports...), so dashboards and alerts see them from the
/// start and `rate()` has a baseline. Only label values that exist are used: outcomes,
/// results, the "other" destination, configured senders and webhook endpoints.
pub fn initialize(role: crate::config::Role, config: &crate::config::Config) {
    use crate::config::Role;
    match role {
        Role::Worker => {
            for outcome in ["sent", "deferred", "bounced", "failed"] {
                metrics::counter!(MESSAGES, "outcome" => outcome, "domain" => "other").absolute(0);
            }
            metrics::counter!(TOKEN_WAITS, "domain" => "other").absolute(0);
            for name in [CLAIMS, RECLAIMS, SKIPPED, SOFT_BOUNCE_SUPPRESSIONS] {
                metrics::counter!(name).absolute(0);
            }
            metrics::counter!(REDIS_ERRORS, "op" => "round").absolute(0);
            for outcome in ["parked", "cancelled", "other"] {
                metrics::counter!(SWEPT, "outcome" => outcome).absolute(0);
            }
            for sender in config.warmup.senders.keys() {
                metrics::counter!(WARMUP_HELD, "sender" => sender.clone()).absolute(0);
            }
        }
        Role::Scheduler => {
            for result in ["bounced", "complained", "ignored", "unmatched", "unparseable"] {
                metrics::counter!(INBOUND_REPORTS, "result" => result).absolute(0);
            }
            for result in ["accepted", "rejected"] {
                metrics::counter!(INTAKE_RECIPIENTS, "result" => result).absolute(0);
            }
            for source in ["api", "stream"] {
                metrics::counter!(CAMPAIGNS_CREATED, "source" => source).absolute(0);
            }
            for kind in ["open", "click"] {
                metrics::counter!(TRACKED, "kind" => kind).absolute(0);
            }
            for name in
                [INTAKE_ERRORS, UNSUBSCRIBES, MESSAGES_ACCEPTED, FEED_EVENTS, RETRIES_PROMOTED, PUBLIC_RATE_LIMITED]
            {
                metrics::counter!(name).absolute(0);
            }
            metrics::counter!(REDIS_ERRORS, "op" => "duties").absolute(0);
            for action in ["requeued", "dropped"] {
                metrics::counter!(RECONCILED, "action" => action).absolute(0);
            }
            if config.history.url.is_some() {
                for name in [HISTORY_WRITTEN, HISTORY_DROPPED, HISTORY_ERRORS] {
                    metrics::counter!(name).absolute(0);
                }
                for shard in 0..crate::keys::FEED_SHARDS {
                    metrics::gauge!(HISTORY_LAG, "shard" => shard.to_string()).set(0.0);
                    metrics::gauge!(HISTORY_BACKLOG, "shard" => shard.to_string()).set(0.0);
                }
            }
            if config.submission.enabled() {
                for port in ["submission", "submissions"] {
                    metrics::counter!(SUBMISSION_SESSIONS, "port" => port).absolute(0);
                }
                metrics::counter!(SUBMISSION_AUTH_FAILURES).absolute(0);
                metrics::counter!(SUBMISSION_ACCEPTED).absolute(0);
                for reason in SUBMISSION_REFUSAL_REASONS {
                    metrics::counter!(SUBMISSION_REFUSED, "reason" => reason).absolute(0);
                }
            }
            for key in config.api.keys.iter().filter(|k| k.send_rate.is_some()) {
                metrics::counter!(SEND_RATE_LIMITED, "key" => key.id.clone()).absolute(0);
            }
            for e in &config.webhooks.endpoints {
                webhook_series(&e.id);
            }
        }
    }
}

/// The series of one webhook endpoint, at zero (also for endpoints added over the API).
pub fn webhook_series(endpoint: &str) {
    for result in ["ok", "error"] {
        metrics::counter!(WEBHOOK_DELIVERIES, "endpoint" => endpoint.to_string(), "result" => result).absolute(0);
    }
    metrics::counter!(WEBHOOK_DROPPED, "endpoint" => endpoint.to_string()).absolute(0);
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(MESSAGES, "Delivery attempts by outcome and destination");
    describe_histogram!(SMTP_LATENCY, Unit::Seconds, "SMTP transaction latency per destination");
    describe_gauge!(QUEUE_DEPTH, "Jobs waiting in a destination's stream");
    describe_counter!(REPLICA_WAITS, "Hand-offs that waited for a replica to have the write (step, result)");
    describe_counter!(REPUTATION_FINDINGS, "Rates at or past a reputation threshold (level, rate)");
    describe_counter!(REPUTATION_PAUSES, "Campaigns the reputation guard paused");
    describe_gauge!(SENDER_RATE, "A From domain's rolling rate in percent (sender, rate)");
    describe_counter!(SENDER_AUTH_REJECTIONS, "Replies rejecting our From domain's SPF, DKIM or DMARC (domain)");
    describe_counter!(
        CHARSET_FALLBACKS,
        "Messages asked in ISO-2022-JP but sent as UTF-8 (a character outside JIS X 0208)"
    );
    describe_counter!(OVERSIZE, "Messages failed unsent: larger than the destination's max_message_bytes (domain)");
    describe_counter!(TOKEN_WAITS, "Visits that found the destination's token bucket empty");
    describe_counter!(CLAIMS, "Jobs claimed from destination streams");
    describe_counter!(
        RECLAIMS,
        "Jobs taken again: from workers presumed dead, or a worker's own whose take or batch failed"
    );
    describe_counter!(SKIPPED, "Stale duplicate jobs skipped");
    describe_counter!(SEND_RATE_LIMITED, "Sends refused with 429: the API key was over its send_rate (key)");
    describe_counter!(SWEPT, "Jobs of campaigns not running swept out of destination streams (outcome)");
    describe_counter!(
        SUBMISSION_SESSIONS,
        "SMTP submission sessions opened (port: submission = 587, submissions = 465)"
    );
    describe_counter!(SUBMISSION_AUTH_FAILURES, "SMTP AUTH attempts that failed");
    describe_counter!(SUBMISSION_ACCEPTED, "Messages accepted over SMTP submission");
    describe_counter!(SUBMISSION_REFUSED, "SMTP submission commands or messages refused (reason)");
    describe_counter!(INTAKE_RECIPIENTS, "Recipients accepted or rejected at intake");
    describe_counter!(CAMPAIGNS_CREATED, "Campaigns created");
    describe_counter!(MESSAGES_ACCEPTED, "Transactional messages accepted");
    describe_counter!(FEED_EVENTS, "Events copied into the event feed");
    describe_counter!(TRACKED, "Opens and clicks served by the public listener (kind)");
    describe_counter!(PUBLIC_RATE_LIMITED, "Public listener requests refused with 429 (one client over its rate)");
    describe_gauge!(HISTORY_LAG, "Age of the oldest feed event not yet in PostgreSQL, per feed shard");
    describe_gauge!(HISTORY_BACKLOG, "Feed events not yet in PostgreSQL, per feed shard");
    describe_counter!(HISTORY_WRITTEN, "Events written to the PostgreSQL history");
    describe_counter!(HISTORY_DROPPED, "Events trimmed from the feed before the history writer read them");
    describe_counter!(HISTORY_ERRORS, "Failed writes to the PostgreSQL history (retried)");
    describe_gauge!(WEBHOOK_BACKLOG, "Feed events after a webhook endpoint's cursor (all types)");
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook POSTs by endpoint and result (ok, error)");
    describe_counter!(WEBHOOK_DROPPED, "Webhook events given up (older than give_up_after, or trimmed from the feed)");
    describe_gauge!(WEBHOOK_LAST_SUCCESS, "Unix time of a webhook endpoint's last successful POST");
    describe_counter!(INTAKE_ERRORS, "Intake stream entries rejected");
    describe_counter!(RETRIES_PROMOTED, "Jobs moved from retry back into destination streams");
    describe_counter!(RECONCILED, "Lost jobs the reconcile duty put back, or stale ones it dropped (action)");
    describe_gauge!(INFLIGHT, "Jobs held by this worker");
    describe_counter!(REDIS_ERRORS, "Redis errors by operation");
    describe_counter!(SMTP_CONNECTIONS_OPENED, "SMTP connections opened");
    describe_counter!(SMTP_CONNECTIONS_CLOSED, "SMTP connections closed, by reason");
}
