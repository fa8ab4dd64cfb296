//! Every Lua script Sluice runs, each behind one typed function that owns the order of its
//! keys, its arguments and the meaning of its reply. No caller outside this module builds a
//! key list for a script.
//!
//! The scripts are kept as `.lua` files in `redis/lua` and hashed once per process
//! (`invoke_async` loads them into Redis on first use). Every script gets `clock.lua`
//! prepended (the Redis clock). Scripts that work on one campaign also get
//! `campaign_prelude.lua`, which names the campaign's keys once, in [`CAMPAIGN_KEYS`] order:
//! they all take the same keys in the same order. Scripts that shape a destination's rate get
//! `destination_prelude.lua`; those that edit stream entries in place, `stream_rewrite.lua`.
//!
//! - [`campaign`]: a campaign's lifecycle, expansion, retries and late events;
//! - [`jobs`]: what workers decide and record for the jobs they hold;
//! - [`destination`]: a destination's bucket, stream and shape;
//! - [`engagement`]: engagement records per address (list hygiene);
//! - [`due`]: the due sets (ready destinations, messages, the feed's pending sources);
//! - [`erase`]: erasing one address from campaigns, the feed and the logs;
//! - [`stream`]: acks and consumer hygiene on any stream;
//! - [`suppression`]: unsubscribes by scope;
//! - [`records`]: small records of one key each (templates, feed cursors, warm-up counters).

pub mod campaign;
pub mod destination;
pub mod due;
pub mod engagement;
pub mod erase;
pub mod jobs;
pub mod records;
pub mod stream;
pub mod suppression;

use redis::{Script, ScriptInvocation};

use crate::keys;

const CLOCK: &str = include_str!("../lua/clock.lua");
const CAMPAIGN_PRELUDE: &str = include_str!("../lua/campaign_prelude.lua");
const DESTINATION_PRELUDE: &str = include_str!("../lua/destination_prelude.lua");
const STREAM_REWRITE: &str = include_str!("../lua/stream_rewrite.lua");

/// The keys every campaign script takes, in this order (declared once in
/// `campaign_prelude.lua`). All share the campaign's `{c:ID}` hash tag.
pub const CAMPAIGN_KEYS: [&str; 7] = ["meta", "state", "counts", "retry", "events", "staged", "late"];

/// Which shared helpers a script is loaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prelude {
    Clock,
    Campaign,
    Destination,
    /// Editing stream entries in place (`stream_rewrite.lua`).
    Rewrite,
}

/// One script: its source, the names of the keys it takes in order, and its hash.
pub(crate) struct Lua {
    name: &'static str,
    prelude: Prelude,
    #[cfg_attr(not(test), allow(dead_code))]
    body: &'static str,
    keys: &'static [&'static str],
    script: Script,
}

impl Lua {
    fn new(name: &'static str, prelude: Prelude, body: &'static str, keys: &'static [&'static str]) -> Lua {
        let helpers = match prelude {
            Prelude::Clock => "",
            Prelude::Campaign => CAMPAIGN_PRELUDE,
            Prelude::Destination => DESTINATION_PRELUDE,
            Prelude::Rewrite => STREAM_REWRITE,
        };
        Lua { name, prelude, body, keys, script: Script::new(&format!("{CLOCK}\n{helpers}\n{body}")) }
    }

    fn on_campaign(name: &'static str, body: &'static str) -> Lua {
        Lua::new(name, Prelude::Campaign, body, &CAMPAIGN_KEYS)
    }

    /// An invocation with the script's keys, in its order, each made by `key(name)`.
    fn invocation(&self, key: impl Fn(&str) -> String) -> ScriptInvocation<'_> {
        let mut invocation = self.script.prepare_invoke();
        for name in self.keys {
            invocation.key(key(name));
        }
        invocation
    }

    /// An invocation of a campaign script on campaign (or message) `id`.
    fn for_campaign(&self, id: &str) -> ScriptInvocation<'_> {
        debug_assert_eq!(self.prelude, Prelude::Campaign, "{} is not a campaign script", self.name);
        self.invocation(|name| campaign_key(id, name))
    }

    /// An invocation of a script that takes one key.
    fn on(&self, key: &str) -> ScriptInvocation<'_> {
        debug_assert_eq!(self.keys.len(), 1, "{} takes {} keys", self.name, self.keys.len());
        let mut invocation = self.script.prepare_invoke();
        invocation.key(key);
        invocation
    }
}

fn campaign_key(id: &str, name: &str) -> String {
    match name {
        "meta" => keys::campaign_meta(id),
        "state" => keys::campaign_state(id),
        "counts" => keys::campaign_counts(id),
        "retry" => keys::campaign_retry(id),
        "events" => keys::campaign_events(id),
        "staged" => keys::campaign_staged(id),
        "late" => keys::campaign_late_events(id),
        other => unreachable!("no campaign key named {other}"),
    }
}

/// Defines a script as a lazily hashed static, its body read from `redis/lua/<file>.lua`.
macro_rules! lua {
    ($static:ident, $file:literal, campaign) => {
        pub(crate) static $static: std::sync::LazyLock<$crate::redis::scripts::Lua> = std::sync::LazyLock::new(|| {
            $crate::redis::scripts::Lua::on_campaign($file, include_str!(concat!("../lua/", $file, ".lua")))
        });
    };
    ($static:ident, $file:literal, $prelude:ident, $keys:expr) => {
        pub(crate) static $static: std::sync::LazyLock<$crate::redis::scripts::Lua> = std::sync::LazyLock::new(|| {
            $crate::redis::scripts::Lua::new(
                $file,
                $crate::redis::scripts::Prelude::$prelude,
                include_str!(concat!("../lua/", $file, ".lua")),
                $keys,
            )
        });
    };
}
pub(crate) use lua;

/// Every script, for the tests that pin their keys.
#[cfg(test)]
fn all() -> Vec<&'static Lua> {
    vec![
        &campaign::CREATE,
        &campaign::STAGE,
        &campaign::TRANSITION,
        &campaign::EXPAND_PEEK,
        &campaign::EXPAND_COMMIT,
        &campaign::REQUEUE,
        &campaign::RETRY_DUE,
        &campaign::RETRY_DONE,
        &campaign::EXPIRE_WAITING,
        &campaign::LATE_EVENT,
        &campaign::CANCEL_STAGED,
        &campaign::RECONCILE,
        &jobs::DECIDE,
        &jobs::RECORD,
        &jobs::HOLD,
        &jobs::POISON,
        &destination::TAKE,
        &destination::SHAPE,
        &destination::SHAPE_READ,
        &destination::PICK,
        &destination::HAS_WORK,
        &destination::GIVE_BACK,
        &destination::SCAN_CAMPAIGN,
        &due::MARK,
        &due::UNREADY,
        &due::RESCHEDULE,
        &stream::ACK,
        &stream::PRUNE_CONSUMERS,
        &erase::SOURCE,
        &erase::FEED,
        &erase::STREAM_TEXT,
        &records::TEMPLATE_PUT,
        &records::FEED_CURSOR,
        &records::WARMUP_TAKE,
        &records::SEND_RATE,
        &records::REPUTATION_ADD,
        &engagement::EXPAND,
        &engagement::TOUCH,
        &suppression::UNSUBSCRIBE,
        &suppression::MIGRATE,
    ]
}

#[cfg(test)]
mod tests;
