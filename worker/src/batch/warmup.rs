//! Warm-up caps at send time: a From domain on a plan may send at most its cap per UTC day,
//! counted in Redis for the whole cluster; jobs over the cap wait, unsent and without using an
//! attempt, until the next day.

use serde_json::json;
use sluice_shared::{
    metrics as m,
    redis::{Conn, StoreResult, replicas::Replicated, scripts::jobs},
    warmup::{self, Sender},
};

use super::Entry;
use crate::{context::Ctx, render::Campaign, transport::Transport};

/// The jobs that may be sent now; the others are put back to wait for the next day (and
/// whether a replica has that: if not, their entries must not be acked).
pub async fn within_cap<'e, T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    campaign: &Campaign,
    to_send: Vec<&'e Entry>,
) -> StoreResult<(Vec<&'e Entry>, Replicated)> {
    let domain = campaign.spec.from.email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    let Some(today) = ctx.config.warmup.today(&domain, ctx.clock.now()) else {
        return Ok((to_send, Replicated::NoReplica));
    };
    let Some(cap) = today.cap else { return Ok((to_send, Replicated::NoReplica)) };
    let granted = warmup::take(conn, Sender::Domain(&domain), &today, cap, to_send.len()).await?;
    if granted >= to_send.len() {
        return Ok((to_send, Replicated::NoReplica));
    }
    let (send, held) = to_send.split_at(granted);
    let detail = json!({"reason": "warmup_cap", "plan": today.plan, "day": today.day, "cap": cap});
    let (n, replicated) = hold(ctx, conn, &campaign.spec.id, held, today.next_day_ms, &detail).await?;
    metrics::counter!(m::WARMUP_HELD, "sender" => domain.clone()).increment(n);
    tracing::info!(sender = %domain, cap, held = n, until = today.next_day_ms, "warm-up cap reached; holding the rest for tomorrow");
    Ok((send.to_vec(), replicated))
}

/// Puts in-flight jobs back to wait until `until_ms`, unsent and without using an attempt
/// (hold.lua). Returns how many were held, and whether a replica has it.
pub async fn hold<T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    campaign_id: &str,
    held: &[&Entry],
    until_ms: i64,
    detail: &serde_json::Value,
) -> StoreResult<(u64, Replicated)> {
    let maxlen = ctx.config.campaigns.events_maxlen;
    jobs::hold(conn, &ctx.replicas, campaign_id, maxlen, until_ms, &detail.to_string(), held).await
}
