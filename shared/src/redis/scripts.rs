//! The Lua scripts, kept as `.lua` files and loaded once. Each runs on keys of one hash tag.
//!
//! Every script gets `clock.lua` prepended (the Redis clock); scripts that work on a campaign
//! also get `campaign_prelude.lua` (shared helpers), scripts that shape a destination's rate
//! `destination_prelude.lua`.

use std::sync::LazyLock;

use redis::Script;

const CLOCK: &str = include_str!("lua/clock.lua");
const PRELUDE: &str = include_str!("lua/campaign_prelude.lua");
const DESTINATION: &str = include_str!("lua/destination_prelude.lua");

fn campaign(body: &str) -> Script {
    Script::new(&format!("{CLOCK}\n{PRELUDE}\n{body}"))
}

fn destination(body: &str) -> Script {
    Script::new(&format!("{CLOCK}\n{DESTINATION}\n{body}"))
}

fn plain(body: &str) -> Script {
    Script::new(&format!("{CLOCK}\n{body}"))
}

/// Every script Sluice runs.
pub struct Scripts {
    pub create_campaign: Script,
    pub stage_recipients: Script,
    pub transition: Script,
    pub expand_peek: Script,
    pub expand_commit: Script,
    pub claim: Script,
    pub record: Script,
    pub retry_due: Script,
    pub poison: Script,
    pub expire_waiting: Script,
    pub requeue: Script,
    pub retry_done: Script,
    pub late_event: Script,
    pub hold: Script,
    pub warmup_take: Script,
    pub pick_domains: Script,
    pub mark_ready: Script,
    pub unready: Script,
    pub reschedule: Script,
    pub take: Script,
    pub shape: Script,
    pub shape_read: Script,
    pub ack: Script,
    pub has_work: Script,
    pub prune_consumers: Script,
    pub template_put: Script,
    pub feed_cursor: Script,
}

/// The scripts, hashed once per process; `invoke_async` loads them into Redis on first use.
pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create_campaign: campaign(include_str!("lua/create_campaign.lua")),
    stage_recipients: campaign(include_str!("lua/stage_recipients.lua")),
    transition: campaign(include_str!("lua/transition.lua")),
    expand_peek: campaign(include_str!("lua/expand_peek.lua")),
    expand_commit: campaign(include_str!("lua/expand_commit.lua")),
    claim: campaign(include_str!("lua/claim.lua")),
    record: campaign(include_str!("lua/record.lua")),
    retry_due: campaign(include_str!("lua/retry_due.lua")),
    poison: campaign(include_str!("lua/poison.lua")),
    expire_waiting: campaign(include_str!("lua/expire_waiting.lua")),
    requeue: campaign(include_str!("lua/requeue.lua")),
    retry_done: campaign(include_str!("lua/retry_done.lua")),
    late_event: campaign(include_str!("lua/late_event.lua")),
    hold: campaign(include_str!("lua/hold.lua")),
    warmup_take: plain(include_str!("lua/warmup_take.lua")),
    pick_domains: plain(include_str!("lua/pick_domains.lua")),
    mark_ready: plain(include_str!("lua/mark_ready.lua")),
    unready: plain(include_str!("lua/unready.lua")),
    reschedule: plain(include_str!("lua/reschedule.lua")),
    take: destination(include_str!("lua/take.lua")),
    shape: destination(include_str!("lua/shape.lua")),
    shape_read: destination(include_str!("lua/shape_read.lua")),
    ack: plain(include_str!("lua/ack.lua")),
    has_work: plain(include_str!("lua/has_work.lua")),
    prune_consumers: plain(include_str!("lua/prune_consumers.lua")),
    template_put: plain(include_str!("lua/template_put.lua")),
    feed_cursor: plain(include_str!("lua/feed_cursor.lua")),
});
