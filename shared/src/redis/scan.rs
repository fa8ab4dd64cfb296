//! Every key matching a pattern, on one Redis or on every master of a cluster (SCAN, a page at
//! a time, never KEYS). For rare, operator-driven work such as erasing an address; never on a
//! hot path.

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::{Conn, StoreResult};

const PAGE: usize = 1000;

/// The names of every key matching `pattern`.
pub async fn keys(conn: &mut Conn, pattern: &str) -> StoreResult<Vec<String>> {
    let nodes = match conn {
        Conn::Single(_) => vec![None],
        Conn::Cluster(_) => masters(conn).await?.into_iter().map(Some).collect(),
    };
    let mut found = Vec::new();
    for node in nodes {
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(PAGE);
            let (next, page): (u64, Vec<String>) = match (&mut *conn, &node) {
                (Conn::Cluster(cluster), Some((host, port))) => {
                    let at = SingleNodeRoutingInfo::ByAddress { host: host.clone(), port: *port };
                    redis::from_redis_value(cluster.route_command(scan, RoutingInfo::SingleNode(at)).await?)
                        .map_err(redis::RedisError::from)?
                }
                _ => scan.query_async(&mut *conn).await?,
            };
            found.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Each master's address, from CLUSTER SLOTS (every slot range names its master first).
async fn masters(conn: &mut Conn) -> StoreResult<Vec<(String, u16)>> {
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut out = Vec::new();
    for range in slots {
        let redis::Value::Array(parts) = range else { continue };
        let Some(redis::Value::Array(master)) = parts.get(2) else { continue };
        let host: String = master
            .first()
            .map(redis::from_redis_value_ref)
            .transpose()
            .map_err(redis::RedisError::from)?
            .unwrap_or_default();
        let port: u16 = master
            .get(1)
            .map(redis::from_redis_value_ref)
            .transpose()
            .map_err(redis::RedisError::from)?
            .unwrap_or_default();
        if !out.contains(&(host.clone(), port)) {
            out.push((host, port));
        }
    }
    Ok(out)
}
