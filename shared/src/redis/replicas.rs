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

use redis::{Cmd, FromRedisValue, Pipeline, ScriptInvocation, Value, cluster_routing::Slot};

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

    /// Of two writes' results, the one that spoils both: unconfirmed if either is.
    pub fn and(self, other: Replicated) -> Replicated {
        if self.confirmed() { other } else { self }
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

impl Node {
    /// What a write to this node amounts to without a WAIT; None where one is worth sending.
    fn unwaited(self) -> Option<Replicated> {
        match self {
            Node::Alone => Some(Replicated::NoReplica),
            Node::Demoted => Some(Replicated::Demoted),
            Node::Replicated => None,
        }
    }
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
    /// Sent apart from the write, so after a partition it can reach the write's successor,
    /// which never had it (see [`ReplicaAcks::script`]): used where the write came in an
    /// earlier step (an ack; a batch that sent nothing after deciding).
    pub async fn wait(&self, conn: &mut Conn, key: &str, step: &'static str) -> StoreResult<Replicated> {
        let result = match self.kind(conn, key).await?.unwaited() {
            Some(result) => result,
            None => acked(conn.on_node_of(key, self.wait_cmd()).await?)?,
        };
        Ok(self.count(result, key, step))
    }

    /// Runs `script`, whose keys hash to `key`'s slot, and waits until a replica has what it
    /// wrote. The WAIT rides in one pipeline behind the script, so it reaches the node the
    /// script reached: a partitioned master that took the write after the cluster replaced it
    /// is asked, and says no, instead of its successor, which never had the write.
    pub async fn script<T: FromRedisValue>(
        &self,
        conn: &mut Conn,
        key: &str,
        step: &'static str,
        script: &ScriptInvocation<'_>,
    ) -> StoreResult<(T, Replicated)> {
        if let Some(result) = self.kind(conn, key).await?.unwaited() {
            let reply = script.invoke_async(conn).await?;
            return Ok((reply, self.count(result, key, step)));
        }
        let mut pipe = redis::pipe();
        pipe.invoke_script(script).add_command(self.wait_cmd());
        let replies: Vec<Value> = match pipe.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                script.load_async(conn).await?;
                pipe.query_async(conn).await?
            }
            other => other?,
        };
        let [reply, wait] = <[Value; 2]>::try_from(replies)
            .map_err(|r| StoreError::Reply(format!("a script and WAIT answered {} replies", r.len())))?;
        let result = acked(wait)?;
        Ok((T::from_redis_value(reply).map_err(redis::RedisError::from)?, self.count(result, key, step)))
    }

    /// Runs `pipe`, whose commands all hash to `key`'s slot and whose replies are ignored, with
    /// a WAIT behind them in the same pipeline (as [`ReplicaAcks::script`]).
    pub async fn write(
        &self,
        conn: &mut Conn,
        key: &str,
        step: &'static str,
        mut pipe: Pipeline,
    ) -> StoreResult<Replicated> {
        if let Some(result) = self.kind(conn, key).await?.unwaited() {
            pipe.query_async::<()>(conn).await?;
            return Ok(self.count(result, key, step));
        }
        pipe.add_command(self.wait_cmd());
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        let wait = replies.into_iter().last().ok_or_else(|| StoreError::Reply("an empty pipeline reply".into()))?;
        Ok(self.count(acked(wait)?, key, step))
    }

    fn wait_cmd(&self) -> Cmd {
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(self.timeout.as_millis() as u64);
        wait
    }

    /// What to wait for on the node holding `key`: nothing when waiting is off.
    async fn kind(&self, conn: &mut Conn, key: &str) -> StoreResult<Node> {
        if self.timeout.is_zero() { Ok(Node::Alone) } else { self.node(conn, key).await }
    }

    /// Counts a wait by `step` and result, and warns of one that confirmed nothing.
    fn count(&self, result: Replicated, key: &str, step: &'static str) -> Replicated {
        if result != Replicated::NoReplica {
            metrics::counter!(crate::metrics::REPLICA_WAITS, "step" => step, "result" => result.as_str()).increment(1);
        }
        if !result.confirmed() {
            tracing::warn!(%key, ?self.timeout, %step, ?result, "no replica confirmed the write");
        }
        result
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

/// What WAIT answered: how many replicas have the writes.
fn acked(reply: Value) -> StoreResult<Replicated> {
    match reply {
        Value::Int(n) if n >= 1 => Ok(Replicated::Acked),
        Value::Int(_) => Ok(Replicated::TimedOut),
        other => Err(StoreError::Reply(format!("WAIT answered {other:?}"))),
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
