//! Warm-up: named plans of daily caps, applied per From domain or per sending address (mx
//! mode), for the whole cluster.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::{ConfigError, invalid};

/// A plan: explicit caps by day (`days`), or `start` growing by `growth` a day up to `ceiling`.
/// When the list ends or the growth reaches the ceiling, the warm-up is over: no cap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupPlan {
    #[serde(default)]
    pub days: Vec<u64>,
    pub start: Option<u64>,
    /// Daily growth, e.g. `"30%"`.
    pub growth: Option<String>,
    pub ceiling: Option<u64>,
}

/// A From domain on a plan since a date (UTC; that day is day 0).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupSender {
    pub plan: String,
    pub start: NaiveDate,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupConfig {
    #[serde(default)]
    pub plans: BTreeMap<String, WarmupPlan>,
    /// By From domain (lower-case).
    #[serde(default)]
    pub senders: BTreeMap<String, WarmupSender>,
    /// By sending address (`smtp.ip_pool` entries, mx mode).
    #[serde(default)]
    pub ips: BTreeMap<std::net::IpAddr, WarmupSender>,
    /// mx mode: when every rotating address is at its cap, send from this `smtp.ip_pool` pool
    /// instead of waiting for the next day.
    pub spill_pool: Option<String>,
}

/// Where a sender stands today.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupDay {
    pub plan: String,
    /// Days since the start date (0 on the start date and before it).
    pub day: u64,
    /// The UTC date the count is kept for.
    pub date: NaiveDate,
    /// None: the warm-up is over.
    pub cap: Option<u64>,
    /// When the next day's cap applies (ms since the epoch).
    pub next_day_ms: i64,
}

impl WarmupPlan {
    /// The growth as a factor (`"30%"` -> 1.3).
    pub fn growth_factor(&self) -> Result<Option<f64>, String> {
        let Some(g) = &self.growth else { return Ok(None) };
        let pct: f64 = g
            .strip_suffix('%')
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("{g:?} must be a percentage like \"30%\""))?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err(format!("{g:?} must be between 0% and 100%"));
        }
        Ok(Some(1.0 + pct / 100.0))
    }

    /// Checks that the plan is one of the two forms.
    pub fn check(&self) -> Result<(), String> {
        let growth = self.growth_factor()?;
        match (self.days.is_empty(), self.start, growth, self.ceiling) {
            (false, None, None, None) if self.days.iter().all(|d| *d > 0) => Ok(()),
            (false, ..) => Err("days are positive caps, and exclude start/growth/ceiling".into()),
            (true, Some(s), Some(_), Some(c)) if s > 0 && c > s => Ok(()),
            _ => Err("needs days = [...] or start, growth and ceiling (ceiling > start > 0)".into()),
        }
    }

    /// The cap on `day`, None once the warm-up is over.
    pub fn cap(&self, day: u64) -> Option<u64> {
        if !self.days.is_empty() {
            return self.days.get(day as usize).copied();
        }
        let (start, growth, ceiling) = (self.start?, self.growth_factor().ok()??, self.ceiling?);
        let cap = start as f64 * growth.powi(day.min(10_000) as i32);
        (cap < ceiling as f64).then(|| cap.floor() as u64)
    }
}

impl WarmupConfig {
    /// Today's standing of the From domain `domain` at `now`, if it is on a plan.
    pub fn today(&self, domain: &str, now: DateTime<Utc>) -> Option<WarmupDay> {
        self.day_of(self.senders.get(&domain.to_ascii_lowercase())?, now)
    }

    /// Today's standing of a sending address, if it is on a plan.
    pub fn today_ip(&self, address: std::net::IpAddr, now: DateTime<Utc>) -> Option<WarmupDay> {
        self.day_of(self.ips.get(&address)?, now)
    }

    fn day_of(&self, sender: &WarmupSender, now: DateTime<Utc>) -> Option<WarmupDay> {
        let plan = self.plans.get(&sender.plan)?;
        let date = now.date_naive();
        let day = (date - sender.start).num_days().max(0) as u64;
        let next = date.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        Some(WarmupDay { plan: sender.plan.clone(), day, date, cap: plan.cap(day), next_day_ms: next })
    }
}

impl WarmupConfig {
    /// Plans that check out, senders and addresses that name a plan, addresses and the spill
    /// pool that exist in `ip_pool`.
    pub(super) fn validate(&self, ip_pool: &[super::SourceIp]) -> Result<(), ConfigError> {
        for (name, plan) in &self.plans {
            plan.check().map_err(|p| invalid(format!("warmup.plans.{name}"), name, p))?;
        }
        for (domain, sender) in &self.senders {
            if !self.plans.contains_key(&sender.plan) {
                return Err(invalid(
                    format!("warmup.senders.\"{domain}\".plan"),
                    &sender.plan,
                    "no such plan in [warmup.plans]",
                ));
            }
            if domain != &domain.to_ascii_lowercase() {
                return Err(invalid(format!("warmup.senders.\"{domain}\""), domain, "From domains are lower-case"));
            }
        }
        for (address, sender) in &self.ips {
            if !self.plans.contains_key(&sender.plan) {
                return Err(invalid(
                    format!("warmup.ips.\"{address}\".plan"),
                    &sender.plan,
                    "no such plan in [warmup.plans]",
                ));
            }
            if !ip_pool.iter().any(|s| s.address == *address) {
                return Err(invalid(format!("warmup.ips.\"{address}\""), address, "not an smtp.ip_pool address"));
            }
        }
        if let Some(pool) = &self.spill_pool
            && !ip_pool.iter().any(|s| &s.pool == pool)
        {
            return Err(invalid("warmup.spill_pool", pool, "no smtp.ip_pool entry has this pool"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> WarmupPlan {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn caps_by_list_and_by_growth() {
        let list = plan("days = [50, 100, 200]");
        assert_eq!((list.cap(0), list.cap(2), list.cap(3)), (Some(50), Some(200), None));
        let grow = plan("start = 100\ngrowth = \"30%\"\nceiling = 1000");
        assert_eq!((grow.cap(0), grow.cap(1), grow.cap(2)), (Some(100), Some(130), Some(169)));
        assert_eq!(grow.cap(9), None, "100 x 1.3^9 > 1000: warm-up over");
        assert!(plan("days = [0]").check().is_err());
        assert!(plan("start = 100\ngrowth = \"300%\"\nceiling = 1000").check().is_err());
        assert!(plan("start = 100\nceiling = 1000").check().is_err());
        assert!(grow.check().is_ok() && list.check().is_ok());
    }

    #[test]
    fn the_day_counts_from_the_start_date_in_utc() {
        let config: WarmupConfig = toml::from_str(
            "[plans.new]\ndays = [50, 100]\n[senders.\"shop.example\"]\nplan = \"new\"\nstart = \"2026-11-25\"\n",
        )
        .unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let d0 = config.today("SHOP.example", at("2026-11-25T23:59:59Z")).unwrap();
        assert_eq!((d0.day, d0.cap), (0, Some(50)));
        assert_eq!(d0.next_day_ms, at("2026-11-26T00:00:00Z").timestamp_millis());
        let d1 = config.today("shop.example", at("2026-11-26T00:00:00Z")).unwrap();
        assert_eq!((d1.day, d1.cap), (1, Some(100)));
        assert_eq!(config.today("shop.example", at("2026-11-27T12:00:00Z")).unwrap().cap, None);
        assert_eq!(config.today("shop.example", at("2026-11-01T00:00:00Z")).unwrap().day, 0, "before the start");
        assert!(config.today("other.example", at("2026-11-26T00:00:00Z")).is_none());
    }
}
