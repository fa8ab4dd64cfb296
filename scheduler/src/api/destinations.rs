//! `/v1/destinations`: per destination domain, its queue, its configured limits and the shape
//! in force after throttling replies (rate factor, slowed and suspended until).

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::{Value, json};
use sluice_shared::{
    keys,
    redis::{Conn, scripts::destination},
};

use super::{AppState, error::ApiError};

/// Most destinations one list answer carries (deepest queues first).
const LIST_MAX: usize = 1000;

fn iso(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

async fn describe(state: &AppState, conn: &mut Conn, domains: &[String]) -> Result<Vec<Value>, ApiError> {
    // The factor comes from the same Lua function take.lua applies, so the API shows exactly
    // what workers obey.
    let depths = destination::depths(conn, domains).await?;
    let mut out = Vec::new();
    for (d, depth) in domains.iter().zip(depths) {
        let (bulk, priority, shape) = (depth.bulk, depth.priority, depth.shape);
        let (now, until, ramp, suspend_until) =
            (shape.now_ms, shape.slowed_until_ms, shape.ramp_ms, shape.suspend_until_ms);
        let factor_x1000 = shape.factor_x1000;
        let limit = state.config.limits.for_domain(d);
        let factor = factor_x1000 as f64 / 1000.0;
        let suspended = (suspend_until > now).then_some(suspend_until);
        let slowed = (factor < 1.0 && until > 0).then_some(until);
        out.push(json!({
            "domain": d,
            "queued": bulk + priority,
            "queued_transactional": priority,
            "limit": {"rate_per_second": limit.per_second, "burst": limit.burst, "connections": limit.connections},
            "rate_factor": factor,
            "effective_rate_per_second": limit.per_second * factor,
            "slowed_until": slowed.and_then(iso),
            "recovered_at": slowed.map(|u| u + ramp).and_then(iso),
            "suspended_until": suspended.and_then(iso),
            "throttled": factor < 1.0 || suspended.is_some(),
        }));
    }
    Ok(out)
}

#[utoipa::path(get, path = "/destinations/{domain}", tag = "operations",
    params(("domain" = String, Path, description = "A domain, or a provider group such as @google")),
    responses((status = 200, description = "Queue depth, limits and throttling of one destination", body = Object)))]
pub async fn get_one(State(state): State<AppState>, Path(domain): Path<String>) -> Result<Json<Value>, ApiError> {
    let domain = domain.to_ascii_lowercase();
    let mut conn = state.conn().await?;
    let known: bool = redis::cmd("SISMEMBER")
        .arg(keys::domains())
        .arg(&domain)
        .query_async(&mut *conn)
        .await
        .map_err(|e| ApiError::Store(e.into()))?;
    if !known {
        return Err(ApiError::NotFound(format!("destination {domain:?}")));
    }
    let mut found = describe(&state, &mut conn, &[domain]).await?;
    Ok(Json(found.remove(0)))
}

/// Destinations with queued jobs or a shape in force, deepest queue first.
#[utoipa::path(get, path = "/destinations", tag = "operations",
    responses((status = 200, description = "Every destination queued to", body = Object)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut conn = state.conn().await?;
    let domains: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys::domains())
        .query_async(&mut *conn)
        .await
        .map_err(|e| ApiError::Store(e.into()))?;
    let mut all = Vec::new();
    for chunk in domains.chunks(500) {
        all.extend(describe(&state, &mut conn, chunk).await?);
    }
    all.retain(|d| d["queued"].as_i64().unwrap_or(0) > 0 || d["throttled"] == true);
    all.sort_by_key(|d| std::cmp::Reverse(d["queued"].as_i64().unwrap_or(0)));
    let truncated = all.len() > LIST_MAX;
    all.truncate(LIST_MAX);
    Ok(Json(json!({"destinations": all, "truncated": truncated})))
}
