//! The reputation guard's arithmetic: what one batch of outcomes adds to a scope's rolling
//! counts, the scopes an outcome counts in, and what the rates say against `[reputation]`.
//! The counts live in Redis (`keys::reputation`, one hash per scope, shared by every worker and
//! scheduler); workers add sends, bounces and deferrals, schedulers add complaints.

use serde::Serialize;

use crate::config::ReputationConfig;

/// Outcomes in a scope: every recorded attempt, those delivered, hard bounces (the address does
/// not exist or is inactive), complaints, deferrals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub attempts: u64,
    pub delivered: u64,
    pub hard: u64,
    pub complaints: u64,
    pub deferred: u64,
}

impl Counts {
    /// In the order `reputation_add.lua` takes and returns them.
    pub fn as_array(&self) -> [u64; 5] {
        [self.attempts, self.delivered, self.hard, self.complaints, self.deferred]
    }

    pub fn from_slice(n: &[u64]) -> Option<Counts> {
        let [attempts, delivered, hard, complaints, deferred] = n.try_into().ok()?;
        Some(Counts { attempts, delivered, hard, complaints, deferred })
    }

    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }

    /// The rates, in percent, each with the sample it is over.
    pub fn rates(&self) -> [(Rate, f64, u64); 3] {
        let percent = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 };
        [
            (Rate::HardBounce, percent(self.hard, self.attempts), self.attempts),
            (Rate::Complaint, percent(self.complaints, self.delivered), self.delivered),
            (Rate::Deferral, percent(self.deferred, self.attempts), self.attempts),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    HardBounce,
    Complaint,
    Deferral,
}

impl Rate {
    pub fn as_str(self) -> &'static str {
        match self {
            Rate::HardBounce => "hard_bounce",
            Rate::Complaint => "complaint",
            Rate::Deferral => "deferral",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Rate::HardBounce => "hard-bounce rate",
            Rate::Complaint => "complaint rate",
            Rate::Deferral => "deferral rate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warn,
    Pause,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Pause => "pause",
        }
    }
}

/// Where outcomes are counted: a campaign or a From domain, overall or at one provider (the
/// destination's metric label: a provider's name, a configured domain, or `other`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Campaign { id: String, provider: Option<String> },
    Sender { domain: String, provider: Option<String> },
}

impl Scope {
    /// The four scopes one outcome counts in; a transactional message counts for its From
    /// domain only (it is no campaign to pause).
    pub fn all_for(campaign: &str, from_domain: &str, provider: &str, message: bool) -> Vec<Scope> {
        let mut out = Vec::with_capacity(4);
        if !message {
            out.push(Scope::Campaign { id: campaign.into(), provider: None });
            out.push(Scope::Campaign { id: campaign.into(), provider: Some(provider.into()) });
        }
        out.push(Scope::Sender { domain: from_domain.into(), provider: None });
        out.push(Scope::Sender { domain: from_domain.into(), provider: Some(provider.into()) });
        out
    }

    /// Its Redis key.
    pub fn key(&self) -> String {
        let (kind, name, provider) = match self {
            Scope::Campaign { id, provider } => ("c", id, provider),
            Scope::Sender { domain, provider } => ("f", domain, provider),
        };
        match provider {
            Some(p) => crate::keys::reputation(&format!("{kind}:{name}@{p}")),
            None => crate::keys::reputation(&format!("{kind}:{name}")),
        }
    }

    /// How a reason names it, after the rate: "" (the campaign itself), "at @google", "of From
    /// domain shop.example", "of From domain shop.example at @google".
    fn place(&self) -> String {
        let at = |p: &Option<String>| p.as_ref().map(|p| format!("at @{p}"));
        match self {
            Scope::Campaign { provider, .. } => at(provider).unwrap_or_default(),
            Scope::Sender { domain, provider } => match at(provider) {
                Some(a) => format!("of From domain {domain} {a}"),
                None => format!("of From domain {domain}"),
            },
        }
    }
}

/// A rate past a threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rate: Rate,
    pub level: Level,
    pub percent: f64,
    pub sample: u64,
    /// E.g. `complaint rate 0.42% over the last 5,000 at @google`.
    pub reason: String,
}

/// What the totals of `scope` say: each rate at or past its warn or pause threshold, once its
/// sample reaches `min_sample`.
pub fn judge(cfg: &ReputationConfig, scope: &Scope, totals: &Counts) -> Vec<Finding> {
    totals
        .rates()
        .into_iter()
        .filter(|(_, _, sample)| *sample >= cfg.min_sample)
        .filter_map(|(rate, percent, sample)| {
            let (warn, pause) = thresholds(cfg, rate);
            let level = if percent >= pause {
                Level::Pause
            } else if percent >= warn {
                Level::Warn
            } else {
                return None;
            };
            let place = scope.place();
            let reason = format!(
                "{} {percent:.2}% over the last {}{}{place}",
                rate.words(),
                grouped(sample),
                if place.is_empty() { "" } else { " " }
            );
            Some(Finding { rate, level, percent, sample, reason })
        })
        .collect()
}

fn thresholds(cfg: &ReputationConfig, rate: Rate) -> (f64, f64) {
    match rate {
        Rate::HardBounce => (cfg.hard_bounce_warn_percent, cfg.hard_bounce_pause_percent),
        Rate::Complaint => (cfg.complaint_warn_percent, cfg.complaint_pause_percent),
        Rate::Deferral => (cfg.deferral_warn_percent, cfg.deferral_pause_percent),
    }
}

/// `5000` as `5,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How long a scope's counts are kept past its last outcome.
const KEPT_MS: u64 = 30 * 86_400_000;

/// Adds `add` to every one of `scopes` and acts on the totals: each finding is counted; a rate
/// at its pause threshold pauses `campaign` (unless the guard is off or it is a message) with
/// the finding as its `paused_reason`. The worst finding, if any.
pub async fn observe(
    conn: &mut crate::redis::Conn,
    cfg: &ReputationConfig,
    events_maxlen: u64,
    campaign: &str,
    scopes: &[Scope],
    add: &Counts,
) -> crate::redis::StoreResult<Option<Finding>> {
    use crate::{metrics as m, redis::scripts};
    if add.is_empty() {
        return Ok(None);
    }
    let mut worst: Option<Finding> = None;
    for scope in scopes {
        let totals = scripts::records::reputation_add(conn, &scope.key(), cfg.window, KEPT_MS, add).await?;
        if let Scope::Sender { domain, provider: None } = scope {
            for (rate, percent, _) in totals.rates() {
                metrics::gauge!(m::SENDER_RATE, "sender" => domain.clone(), "rate" => rate.as_str()).set(percent);
            }
        }
        for f in judge(cfg, scope, &totals) {
            metrics::counter!(m::REPUTATION_FINDINGS, "level" => f.level.as_str(), "rate" => f.rate.as_str())
                .increment(1);
            if worst.as_ref().is_none_or(|w| f.level > w.level) {
                worst = Some(f);
            }
        }
    }
    let pause = worst.as_ref().filter(|f| f.level == Level::Pause && cfg.enabled && !crate::lane::is_message(campaign));
    if let Some(f) = pause {
        let data = serde_json::json!({"reason": f.reason, "rate": f.rate, "percent": (f.percent * 100.0).round() / 100.0, "sample": f.sample});
        let paused = scripts::campaign::guard_pause(conn, campaign, &data.to_string(), events_maxlen).await?;
        if let scripts::campaign::Transition::Done(_) = paused {
            metrics::counter!(m::REPUTATION_PAUSES).increment(1);
            tracing::warn!(campaign, reason = %f.reason, "the reputation guard paused the campaign; resume it once the cause is fixed");
        }
    }
    Ok(worst)
}

/// Forgets the rolling counts of `scopes` (an operator's resume starts them over).
pub async fn reset(conn: &mut crate::redis::Conn, scopes: &[Scope]) -> crate::redis::StoreResult<()> {
    for scope in scopes {
        redis::cmd("DEL").arg(scope.key()).query_async::<()>(conn).await?;
    }
    Ok(())
}

/// The totals kept for `scope` now (without adding anything).
pub async fn totals(conn: &mut crate::redis::Conn, scope: &Scope) -> crate::redis::StoreResult<Counts> {
    let fields: std::collections::HashMap<String, u64> =
        redis::cmd("HGETALL").arg(scope.key()).query_async(conn).await?;
    let sum = |n: &str| {
        fields.get(&format!("a_{n}")).copied().unwrap_or(0) + fields.get(&format!("b_{n}")).copied().unwrap_or(0)
    };
    Ok(Counts {
        attempts: sum("attempts"),
        delivered: sum("delivered"),
        hard: sum("hard"),
        complaints: sum("complaints"),
        deferred: sum("deferred"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ReputationConfig {
        ReputationConfig::default()
    }

    #[test]
    fn a_rate_is_judged_only_past_its_sample_and_named_with_its_place() {
        let google = Scope::Campaign { id: "spring".into(), provider: Some("google".into()) };
        let complaints = Counts { attempts: 5000, delivered: 5000, complaints: 21, ..Counts::default() };
        let found = judge(&cfg(), &google, &complaints);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].rate, found[0].level), (Rate::Complaint, Level::Pause));
        assert_eq!(found[0].reason, "complaint rate 0.42% over the last 5,000 at @google");
        // The first ten sends cannot trip anything, whatever they hold.
        let early = Counts { attempts: 10, delivered: 4, hard: 6, ..Counts::default() };
        assert!(judge(&cfg(), &google, &early).is_empty());
        let sender = Scope::Sender { domain: "shop.example".into(), provider: None };
        let warned = judge(&cfg(), &sender, &Counts { attempts: 1000, delivered: 970, hard: 30, ..Counts::default() });
        assert_eq!((warned[0].rate, warned[0].level), (Rate::HardBounce, Level::Warn));
        assert_eq!(warned[0].reason, "hard-bounce rate 3.00% over the last 1,000 of From domain shop.example");
        let campaign = Scope::Campaign { id: "spring".into(), provider: None };
        let clean = Counts { attempts: 2000, delivered: 1990, hard: 10, complaints: 1, deferred: 100 };
        assert!(judge(&cfg(), &campaign, &clean).is_empty());
    }

    #[test]
    fn a_message_counts_for_its_sender_only() {
        let keys: Vec<String> =
            Scope::all_for("msg_1", "shop.example", "google", true).iter().map(Scope::key).collect();
        assert_eq!(keys, ["sluice:{rep:f:shop.example}", "sluice:{rep:f:shop.example@google}"]);
        assert_eq!(Scope::all_for("spring", "shop.example", "other", false).len(), 4);
    }
}
