//! Waiting for a replica at the hand-offs where a failover could otherwise lose a write that
//! another node (or the outside world) already acted on: an outcome recorded before its job
//! is acked, jobs pushed into destination streams before the campaign's cursor moves past
//! them, a retry pushed before it leaves the retry set. Redis replicates asynchronously; a
//! master that dies takes its last writes with it while the other side's step stays done.
//!
//! `WAIT 1 <timeout>` on the node that took the write, on the connection that sent it, and
//! only where that node has a replica (ROLE, remembered for a few seconds per slot): a Redis
//! without replicas never waits. A replica that does not answer costs the timeout at every
//! hand-off until its master drops it (`repl-timeout`, 60 s by default) or it catches up: a
//! master cut off from its replica by a partition still lists it, and every write it takes
//! then is one a failover can lose, so none of them may be taken for confirmed.

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
    /// No replica confirmed within the timeout. The caller chooses: a worker leaves the jobs
    /// pending (retaken, they find the write or do it again); a scheduler goes on.
    TimedOut,
    /// The node that took the write is a replica now (a partitioned master that rejoined): the
    /// write will be dropped when it resyncs. Handled as `TimedOut`.
    Demoted,
}

impl Replicated {
    pub fn as_str(self) -> &'static str {
        match self {
            Replicated::NoReplica => "no_replica",
            Replicated::Acked => "acked",
            Replicated::TimedOut => "timed_out",
            Replicated::Demoted => "demoted",
        }
    }

    /// Whether the write may be relied on: a replica has it, or there is none to lose it to.
    pub fn confirmed(self) -> bool {
        matches!(self, Replicated::NoReplica | Replicated::Acked)
    }
}

/// What ROLE says of the node holding a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// A master without replicas.
    Alone,
    /// A master with at least one replica.
    Replicated,
    /// Not a master.
    Demoted,
}

/// Per process: the timeout, and whether each slot's node had a replica when last asked.
pub struct ReplicaAcks {
    timeout: Duration,
    known: Mutex<HashMap<Slot, (Instant, Node)>>,
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
        if !result.confirmed() {
            tracing::warn!(%key, ?self.timeout, %step, ?result, "no replica confirmed the write");
        }
        Ok(result)
    }

    async fn wait_once(&self, conn: &mut Conn, key: &str) -> StoreResult<Replicated> {
        if self.timeout.is_zero() {
            return Ok(Replicated::NoReplica);
        }
        match self.node(conn, key).await? {
            Node::Alone => return Ok(Replicated::NoReplica),
            Node::Demoted => return Ok(Replicated::Demoted),
            Node::Replicated => {}
        }
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(self.timeout.as_millis() as u64);
        let acked = match conn.on_node_of(key, wait).await? {
            Value::Int(n) => n,
            other => return Err(StoreError::Reply(format!("WAIT answered {other:?}"))),
        };
        Ok(if acked >= 1 { Replicated::Acked } else { Replicated::TimedOut })
    }

    /// What the node holding `key` is, as ROLE said within the last few seconds (a demoted
    /// node is asked again next time).
    async fn node(&self, conn: &mut Conn, key: &str) -> StoreResult<Node> {
        let slot = conn.slot_of(key);
        if let Some((at, node)) = self.known.lock().unwrap().get(&slot)
            && at.elapsed() < REMEMBERED
        {
            return Ok(*node);
        }
        let node = match replicas_in_role(&conn.on_node_of(key, redis::cmd("ROLE")).await?) {
            None => Node::Demoted,
            Some(0) => Node::Alone,
            Some(_) => Node::Replicated,
        };
        if node != Node::Demoted {
            self.known.lock().unwrap().insert(slot, (Instant::now(), node));
        }
        Ok(node)
    }
}

/// The number of replicas a master's ROLE reply lists (`["master", offset, [[ip, port,
/// offset], ...]]`); `None` for any other reply (a replica, a sentinel).
fn replicas_in_role(role: &Value) -> Option<usize> {
    let Value::Array(parts) = role else { return None };
    match (parts.first(), parts.get(2)) {
        (Some(Value::BulkString(kind)), Some(Value::Array(replicas))) if kind == b"master" => Some(replicas.len()),
        _ => None,
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
        assert_eq!(super::replicas_in_role(&with), Some(1));
        assert_eq!(super::replicas_in_role(&without), Some(0));
        assert_eq!(super::replicas_in_role(&slave), None, "a replica: a write it took is dropped at its resync");
        assert_eq!(super::replicas_in_role(&Value::Nil), None);
    }
}
