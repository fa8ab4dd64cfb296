//! The reputation guard from the scheduler's side: an operator's resume starts a campaign's
//! counts (and its From domain's) over, and a From domain's rates as the API shows them.
//! Counting and pausing are `sluice_shared::reputation`'s.

use serde_json::{Value, json};
use sluice_shared::{
    config::ReputationConfig,
    keys,
    model::CampaignSpec,
    redis::{Conn, StoreResult, scan},
    reputation::{self, Counts, Level, Scope},
};

/// Every key of a scope and its per-provider scopes.
async fn keys_of(conn: &mut Conn, overall: &Scope) -> StoreResult<Vec<String>> {
    let key = overall.key();
    let per_provider = format!("{}@*}}", key.trim_end_matches('}'));
    let mut found = scan::keys(conn, &per_provider).await?;
    found.push(key);
    Ok(found)
}

/// Forgets the counts of campaign `id` and of its From domain: an operator who resumes a
/// paused campaign vouches for it, and the guard judges it again after `min_sample` attempts.
pub async fn start_over(conn: &mut Conn, id: &str) -> StoreResult<()> {
    let spec: Option<String> = redis::cmd("HGET").arg(keys::campaign_meta(id)).arg("spec").query_async(conn).await?;
    let Some(spec) = spec.and_then(|s| serde_json::from_str::<CampaignSpec>(&s).ok()) else { return Ok(()) };
    let domain = spec.from.email.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
    let mut doomed = keys_of(conn, &Scope::Campaign { id: id.into(), provider: None }).await?;
    doomed.extend(keys_of(conn, &Scope::Sender { domain, provider: None }).await?);
    for key in doomed {
        redis::cmd("DEL").arg(key).query_async::<()>(conn).await?;
    }
    Ok(())
}

/// A From domain's counts, rates and findings, overall and per provider; None when nothing
/// was counted for it (within the last 30 days).
pub async fn sender(conn: &mut Conn, cfg: &ReputationConfig, domain: &str) -> StoreResult<Option<Value>> {
    let overall = Scope::Sender { domain: domain.into(), provider: None };
    let mut providers = serde_json::Map::new();
    let mut worst = Level::Ok;
    for key in keys_of(conn, &overall).await? {
        let provider = key.rsplit_once('@').map(|(_, p)| p.trim_end_matches('}').to_string());
        let scope = Scope::Sender { domain: domain.into(), provider: provider.clone() };
        let totals = reputation::totals(conn, &scope).await?;
        let shown = view(cfg, &scope, &totals);
        worst = worst.max(level_of(&shown));
        match provider {
            Some(p) => {
                providers.insert(p, shown);
            }
            None if totals.is_empty() && providers.is_empty() => return Ok(None),
            None => {
                let mut out = shown;
                out["domain"] = domain.into();
                out["status"] = worst.as_str().into();
                out["window"] = cfg.window.into();
                out["min_sample"] = cfg.min_sample.into();
                out["providers"] = providers.into();
                return Ok(Some(out));
            }
        }
    }
    unreachable!("keys_of ends with the overall scope")
}

fn view(cfg: &ReputationConfig, scope: &Scope, totals: &Counts) -> Value {
    let rates: serde_json::Map<String, Value> = totals
        .rates()
        .iter()
        .map(|(rate, percent, _)| (rate.as_str().to_string(), json!((percent * 100.0).round() / 100.0)))
        .collect();
    json!({"counts": totals, "rates_percent": rates, "findings": reputation::judge(cfg, scope, totals)})
}

fn level_of(shown: &Value) -> Level {
    let levels = shown["findings"].as_array().into_iter().flatten().filter_map(|f| f["level"].as_str());
    levels.fold(Level::Ok, |worst, l| match l {
        "pause" => Level::Pause,
        "warn" => worst.max(Level::Warn),
        _ => worst,
    })
}
