//! What recorded outcomes do beyond their campaign: suppress addresses (hard bounces, repeated
//! soft bounces), slow or suspend the destination after a throttling reply, and count for the
//! reputation guard.

use sluice_shared::{
    classify::{Category, DestinationAction},
    keys, lane, metrics as m,
    model::OutcomeKind,
    redis::{Conn, StoreResult, scripts::destination},
    reputation,
};

use crate::{classify::Verdict, context::Ctx, transport::Transport};

/// Applies the side effects of the outcomes that were recorded (each counted once).
pub async fn apply<T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    domain: &str,
    campaign_id: &str,
    recorded: &[(&str, &Verdict)],
) -> StoreResult<()> {
    let suppress: Vec<_> = recorded.iter().filter(|(_, v)| v.suppress).collect();
    if !suppress.is_empty() {
        let mut pipe = redis::pipe();
        for (address, verdict) in suppress {
            let reason = if verdict.detail.get("soft_bounces").is_some() { "soft_bounces" } else { "bounce" };
            let record = sluice_shared::suppression::entry(reason, "bounce", Some(campaign_id), Some(&verdict.detail));
            pipe.hset(keys::suppressed(), address.to_ascii_lowercase(), record.to_string()).ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    if let Some(action) = strongest(recorded.iter().filter_map(|(_, v)| v.destination)) {
        shape(ctx, conn, domain, action).await?;
    }
    Ok(())
}

/// Counts soft bounces (replies in `bounces.soft_categories`) per address over the configured
/// window; a verdict that reaches `bounces.soft_limit` becomes a bounce that suppresses the
/// address, so the message stops retrying too. Counted before the outcome is recorded: a crash
/// in between can count one soft bounce twice, never lose a suppression.
pub async fn count_soft_bounces<T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    addresses: &[&str],
    verdicts: &mut [Verdict],
) -> StoreResult<()> {
    let b = &ctx.config.bounces;
    let soft: Vec<usize> = (0..verdicts.len())
        .filter(|&i| {
            let v = &verdicts[i];
            b.soft_limit > 0
                && v.kind == OutcomeKind::Deferred
                && v.category.is_some_and(|c| b.soft_categories.contains(&c))
        })
        .collect();
    if soft.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for &i in &soft {
        let key = keys::soft_bounces(&addresses[i].to_ascii_lowercase());
        pipe.incr(&key, 1);
        pipe.cmd("PEXPIRE").arg(&key).arg(b.soft_window.as_millis()).arg("NX").ignore();
    }
    let counts: Vec<u32> = pipe.query_async(conn).await?;
    for (i, n) in soft.into_iter().zip(counts) {
        if n >= b.soft_limit {
            let v = &mut verdicts[i];
            v.kind = OutcomeKind::Bounced;
            v.suppress = true;
            v.detail["soft_bounces"] = n.into();
            metrics::counter!(m::SOFT_BOUNCE_SUPPRESSIONS).increment(1);
        }
    }
    Ok(())
}

/// Adds the recorded outcomes to the reputation guard's counts (the campaign's and its From
/// domain's, overall and at this destination's provider); the guard may pause the campaign.
pub async fn observe_reputation<T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    domain: &str,
    campaign_id: &str,
    from_email: &str,
    recorded: &[(&str, &Verdict)],
) -> StoreResult<()> {
    let mut add = reputation::Counts { attempts: recorded.len() as u64, ..Default::default() };
    for (_, v) in recorded {
        match v.kind {
            OutcomeKind::Sent => add.delivered += 1,
            OutcomeKind::Deferred => add.deferred += 1,
            OutcomeKind::Bounced
                if matches!(v.category, Some(Category::InvalidRecipient | Category::InactiveMailbox)) =>
            {
                add.hard += 1
            }
            _ => {}
        }
    }
    let from_domain = from_email.rsplit_once('@').map_or(from_email, |(_, d)| d).to_ascii_lowercase();
    let provider = ctx.config.limits.label(domain);
    let scopes = reputation::Scope::all_for(campaign_id, &from_domain, provider, lane::is_message(campaign_id));
    let maxlen = ctx.config.campaigns.events_maxlen;
    reputation::observe(conn, &ctx.config.reputation, maxlen, campaign_id, &scopes, &add).await?;
    Ok(())
}

/// A suspension beats any slow; of two slows the lower factor wins.
fn strongest(actions: impl Iterator<Item = DestinationAction>) -> Option<DestinationAction> {
    actions.reduce(|a, b| match (a, b) {
        (DestinationAction::Suspend { duration: x }, DestinationAction::Suspend { duration: y }) => {
            DestinationAction::Suspend { duration: x.max(y) }
        }
        (s @ DestinationAction::Suspend { .. }, _) | (_, s @ DestinationAction::Suspend { .. }) => s,
        (DestinationAction::Slow { factor: f, .. }, DestinationAction::Slow { factor: g, .. }) => {
            if f <= g {
                a
            } else {
                b
            }
        }
    })
}

async fn shape<T: Transport>(
    ctx: &Ctx<T>,
    conn: &mut Conn,
    domain: &str,
    action: DestinationAction,
) -> StoreResult<()> {
    let kind = match action {
        DestinationAction::Slow { .. } => "slow",
        DestinationAction::Suspend { .. } => "suspend",
    };
    let (factor_x1000, suspend_until) = destination::shape(conn, domain, action).await?;
    let label = ctx.config.limits.label(domain).to_string();
    metrics::counter!(m::SHAPE_CHANGES, "action" => kind, "domain" => label).increment(1);
    tracing::warn!(%domain, action = kind, factor = factor_x1000 as f64 / 1000.0, suspend_until, duration = ?action.duration().get(), "destination throttled us; shaping its rate");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::units::Span;

    #[test]
    fn a_suspension_beats_slows_and_the_lowest_factor_wins() {
        let span = |s: &str| Span::try_from(s).unwrap();
        let slow = |f| DestinationAction::Slow { factor: f, duration: span("10m") };
        assert_eq!(strongest([slow(0.5), slow(0.1), slow(0.25)].into_iter()), Some(slow(0.1)));
        let suspend = DestinationAction::Suspend { duration: span("2h") };
        assert_eq!(strongest([slow(0.1), suspend, slow(0.05)].into_iter()), Some(suspend));
        assert_eq!(strongest(std::iter::empty()), None);
    }
}
