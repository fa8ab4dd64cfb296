//! Webhook endpoints: those of the config file, and those made over the API (kept in the hash
//! `sluice:webhooks`, id -> JSON). Each has its own secret and event-type filter.

use serde::{Deserialize, Serialize};
use sluice_shared::{
    config::Config,
    keys,
    redis::{Conn, StoreError, StoreResult},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// Types delivered; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// "config" or "api".
    #[serde(default)]
    pub source: String,
}

impl Endpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|t| t == event_type)
    }
}

/// Every endpoint: the config's first (their ids win), then the API's.
pub async fn all(conn: &mut Conn, config: &Config) -> StoreResult<Vec<Endpoint>> {
    let mut out: Vec<Endpoint> = config
        .webhooks
        .endpoints
        .iter()
        .map(|e| Endpoint {
            id: e.id.clone(),
            url: e.url.clone(),
            secret: e.secret.clone(),
            events: e.events.clone(),
            source: "config".into(),
        })
        .collect();
    let stored: Vec<(String, String)> = redis::cmd("HGETALL").arg(keys::webhooks()).query_async(conn).await?;
    for (id, json) in stored {
        if out.iter().any(|e| e.id == id) {
            continue;
        }
        let e: Endpoint = serde_json::from_str(&json).map_err(|e| StoreError::Reply(format!("webhook {id}: {e}")))?;
        out.push(e);
    }
    Ok(out)
}

/// Stores an API endpoint; false if the id is taken.
pub async fn create(conn: &mut Conn, endpoint: &Endpoint) -> StoreResult<bool> {
    let json = serde_json::to_string(endpoint).expect("endpoint serialises");
    let added: i64 = redis::cmd("HSETNX").arg(keys::webhooks()).arg(&endpoint.id).arg(json).query_async(conn).await?;
    Ok(added == 1)
}

/// Removes an API endpoint and its delivery state; false if there was none.
pub async fn delete(conn: &mut Conn, id: &str) -> StoreResult<bool> {
    let (removed, _): (i64, i64) =
        redis::pipe().hdel(keys::webhooks(), id).del(keys::webhook_state(id)).query_async(conn).await?;
    Ok(removed == 1)
}
