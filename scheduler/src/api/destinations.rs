//! `/v1/destinations`: per destination domain, its queue, its configured limits and the shape
//! in force after throttling replies (rate factor, slowed and suspended until).

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::{Value, json};
use sluice_shared::{keys, redis::Conn};

use super::{AppState, error::ApiError};

/// Most destinations one list answer carries (deepest queues first).
const LIST_MAX: usize = 1000;

struct Shape {
    factor: Option<f64>,
    until: Option<i64>,
    ramp: Option<i64>,
    suspend_until: Option<i64>,
}

impl Shape {
    /// The rate share in force at `now`, as take.lua computes it.
    fn factor_at(&self, now: i64) -> f64 {
        match (self.factor, self.until) {
            (Some(f), Some(until)) if now < until => f,
            (Some(f), Some(until)) => {
                let ramp = self.ramp.unwrap_or(0);
                if ramp <= 0 || now >= until + ramp { 1.0 } else { f + (1.0 - f) * (now - until) as f64 / ramp as f64 }
            }
            _ => 1.0,
        }
    }
}

fn iso(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

async fn server_ms(conn: &mut Conn) -> Result<i64, ApiError> {
    let (secs, micros): (i64, i64) =
        redis::cmd("TIME").query_async(conn).await.map_err(|e| ApiError::Store(e.into()))?;
    Ok(secs * 1000 + micros / 1000)
}

async fn describe(state: &AppState, conn: &mut Conn, domains: &[String]) -> Result<Vec<Value>, ApiError> {
    let now = server_ms(conn).await?;
    let mut pipe = redis::pipe();
    for d in domains {
        pipe.cmd("XLEN").arg(keys::domain_stream(d));
        pipe.cmd("HMGET").arg(keys::domain_shape(d)).arg(&["factor", "until", "ramp", "suspend_until"]);
    }
    let replies: Vec<redis::Value> = pipe.query_async(conn).await.map_err(|e| ApiError::Store(e.into()))?;
    let mut out = Vec::new();
    for (d, pair) in domains.iter().zip(replies.chunks(2)) {
        let queued: i64 = redis::from_redis_value_ref(&pair[0]).unwrap_or(0);
        let fields: Vec<Option<String>> = redis::from_redis_value_ref(&pair[1]).unwrap_or_default();
        let num = |i: usize| fields.get(i).cloned().flatten();
        let shape = Shape {
            factor: num(0).and_then(|v| v.parse().ok()),
            until: num(1).and_then(|v| v.parse().ok()),
            ramp: num(2).and_then(|v| v.parse().ok()),
            suspend_until: num(3).and_then(|v| v.parse().ok()),
        };
        let limit = state.config.limits.for_domain(d);
        let factor = shape.factor_at(now);
        let suspended = shape.suspend_until.filter(|u| *u > now);
        let slowed = shape.until.filter(|_| factor < 1.0);
        out.push(json!({
            "domain": d,
            "queued": queued,
            "limit": {"rate_per_second": limit.per_second, "burst": limit.burst, "connections": limit.connections},
            "rate_factor": factor,
            "effective_rate_per_second": limit.per_second * factor,
            "slowed_until": slowed.and_then(iso),
            "recovered_at": slowed.map(|u| u + shape.ramp.unwrap_or(0)).and_then(iso),
            "suspended_until": suspended.and_then(iso),
            "throttled": factor < 1.0 || suspended.is_some(),
        }));
    }
    Ok(out)
}

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

#[cfg(test)]
mod tests {
    use super::Shape;

    #[test]
    fn the_rate_factor_ramps_back_after_the_slow_period() {
        let s = Shape { factor: Some(0.1), until: Some(1000), ramp: Some(1000), suspend_until: None };
        assert_eq!(s.factor_at(500), 0.1);
        assert!((s.factor_at(1500) - 0.55).abs() < 1e-9);
        assert_eq!(s.factor_at(2000), 1.0);
        let none = Shape { factor: None, until: None, ramp: None, suspend_until: None };
        assert_eq!(none.factor_at(0), 1.0);
    }
}
