//! Waiting for a replica at the hand-offs where a failover could otherwise lose a write that
//! another node (or the outside world) already acted on: an outcome recorded before its job
//! is acked, jobs pushed into destination streams before the campaign's cursor moves past
//! them, a retry pushed before it leaves the retry set. Redis replicates asynchronously; a
//! master that dies takes its last writes with it while the other side's step stays done.
//!
//! `WAIT 1 <timeout>` on the node that took the write, on the connection that sent it, and
//! only where that node has a replica (ROLE, remembered for a few seconds per slot): a Redis
//! without replicas never waits. A replica that does not answer within the timeout costs one
//! wait, then the slot is looked at again only after the memory lapses (a failover leaves
//! the new master without its replica until the old one rejoins).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::{Value, cluster_routing::Slot};

use super::{Conn, StoreError, StoreResult};

/// How long what ROLE said about a slot's node is trusted.
const REMEMBERED: Duration = Duration::from_secs(5);

/// What [`ReplicaAcks::wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicated {
    /// The node has no replica (or waiting is off): nothing to wait for.
    NoReplica,
    /// A replica has every write this connection sent to the node.
    Acked,
    /// No replica confirmed within the timeout; the step goes on (availability first).
    TimedOut,
}

impl Replicated {
    pub fn as_str(self) -> &'static str {
        match self {
            Replicated::NoReplica => "no_replica",
            Replicated::Acked => "acked",
            Replicated::TimedOut => "timed_out",
        }
    }
}

/// Per process: the timeout, and whether each slot's node had a replica when last asked.
pub struct ReplicaAcks {
    timeout: Duration,
    known: Mutex<HashMap<Slot, (Instant, bool)>>,
}

impl ReplicaAcks {
    /// `timeout` zero turns waiting off.
    pub fn new(timeout: Duration) -> ReplicaAcks {
        ReplicaAcks { timeout, known: Mutex::new(HashMap::new()) }
    }

    /// Waits until a replica of the node holding `key` has what `conn` wrote to it; counts
    /// the waits by `step` and result. An error (the node gone) means the write may be lost.
    pub async fn wait(&self, conn: &mut Conn, key: &str, step: &'static str) -> StoreResult<Replicated> {
        let result = self.wait_once(conn, key).await?;
        if result != Replicated::NoReplica {
            metrics::counter!(crate::metrics::REPLICA_WAITS, "step" => step, "result" => result.as_str()).increment(1);
        }
        if result == Replicated::TimedOut {
            tracing::warn!(%key, ?self.timeout, "no replica confirmed the write in time; going on without");
        }
        Ok(result)
    }

    async fn wait_once(&self, conn: &mut Conn, key: &str) -> StoreResult<Replicated> {
        if self.timeout.is_zero() {
            return Ok(Replicated::NoReplica);
        }
        let slot = conn.slot_of(key);
        if !self.has_replica(conn, key, slot).await? {
            return Ok(Replicated::NoReplica);
        }
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(self.timeout.as_millis() as u64);
        let acked = match conn.on_node_of(key, wait).await? {
            Value::Int(n) => n,
            other => return Err(StoreError::Reply(format!("WAIT answered {other:?}"))),
        };
        if acked >= 1 {
            return Ok(Replicated::Acked);
        }
        self.known.lock().unwrap().insert(slot, (Instant::now(), false));
        Ok(Replicated::TimedOut)
    }

    async fn has_replica(&self, conn: &mut Conn, key: &str, slot: Slot) -> StoreResult<bool> {
        if let Some((at, replica)) = self.known.lock().unwrap().get(&slot)
            && at.elapsed() < REMEMBERED
        {
            return Ok(*replica);
        }
        let role = conn.on_node_of(key, redis::cmd("ROLE")).await?;
        let replica = replicas_in_role(&role) > 0;
        self.known.lock().unwrap().insert(slot, (Instant::now(), replica));
        Ok(replica)
    }
}

/// The number of replicas a master's ROLE reply lists (`["master", offset, [[ip, port,
/// offset], ...]]`); 0 for any other reply.
fn replicas_in_role(role: &Value) -> usize {
    let Value::Array(parts) = role else { return 0 };
    match (parts.first(), parts.get(2)) {
        (Some(Value::BulkString(kind)), Some(Value::Array(replicas))) if kind == b"master" => replicas.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn role_replies_count_the_masters_replicas() {
        let replica = Value::Array(vec![bulk("127.0.0.1"), bulk("7001"), bulk("10")]);
        let with = Value::Array(vec![bulk("master"), Value::Int(10), Value::Array(vec![replica])]);
        let without = Value::Array(vec![bulk("master"), Value::Int(10), Value::Array(vec![])]);
        let slave = Value::Array(vec![bulk("slave"), bulk("127.0.0.1"), Value::Int(7000), bulk("connected")]);
        assert_eq!(super::replicas_in_role(&with), 1);
        assert_eq!(super::replicas_in_role(&without), 0);
        assert_eq!(super::replicas_in_role(&slave), 0);
        assert_eq!(super::replicas_in_role(&Value::Nil), 0);
    }
}
