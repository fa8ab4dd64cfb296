//! What the reconcile duty reads about a stalled campaign, and where its jobs are.
//!
//! The order of the reads is what makes a job that moves meanwhile never look lost: the
//! recipients' states first, then the retry set, then the streams. A job only moves forward
//! along that order (a retry is pushed into its stream before it leaves the retry set; an
//! expansion pushes before it moves the cursor; a stream entry stays until the outcome is
//! recorded, which changes the state), and reconcile.lua acts only where the state is still
//! the one read here. HSCAN and ZSCAN return every element present for the whole scan, which
//! is all this needs.

use std::collections::{HashMap, HashSet};

use sluice_shared::{
    keys,
    model::Job,
    redis::{Conn, StoreError, StoreResult, entry_id},
};

/// A recipient's state, as far as the duty cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// `q<attempt>:<entry>`: a worker claimed the job from that stream entry.
    InFlight { attempt: u32, entry: String },
    /// `d<n>`: attempt `n` was deferred; attempt `n + 1` waits for its retry.
    Deferred(u32),
    /// Recorded for good (sent, bounced, failed, suppressed, dormant, cancelled).
    Done,
    /// Dead-lettered (`p<n>`): it waits for an operator, in no queue.
    DeadLettered,
}

impl Seen {
    fn parse(code: &str) -> Seen {
        let rest = &code[code.len().min(1)..];
        match code.chars().next() {
            Some('q') => match rest.split_once(':').and_then(|(a, e)| Some((a.parse().ok()?, e))) {
                Some((attempt, entry)) => Seen::InFlight { attempt, entry: entry.to_string() },
                None => Seen::DeadLettered,
            },
            Some('d') => rest.parse().map_or(Seen::DeadLettered, Seen::Deferred),
            Some('p') => Seen::DeadLettered,
            _ => Seen::Done,
        }
    }
}

/// One campaign's recipients and waiting jobs.
pub struct Snapshot {
    pub id: String,
    /// Recipients below it were expanded.
    pub cursor: u64,
    /// The meta hash's `updated_at` (a pause or resume changes it).
    pub updated_at: String,
    /// Recipients with a state, with the raw code.
    pub states: HashMap<u64, (Seen, String)>,
    /// (index, attempt) of the jobs in the retry set.
    pub retry: HashSet<(u64, u32)>,
}

impl Snapshot {
    /// Reads campaign `id`'s cursor, states and retry set, in that order.
    pub async fn read(conn: &mut Conn, id: &str) -> StoreResult<Snapshot> {
        let (cursor, updated_at): (Option<u64>, Option<String>) =
            redis::cmd("HMGET").arg(keys::campaign_meta(id)).arg("cursor").arg("updated_at").query_async(conn).await?;
        let mut states = HashMap::new();
        for (index, code) in scan_pairs(conn, "HSCAN", &keys::campaign_state(id)).await? {
            if let Ok(index) = index.parse::<u64>() {
                states.insert(index, (Seen::parse(&code), code));
            }
        }
        let mut retry = HashSet::new();
        for (member, _) in scan_pairs(conn, "ZSCAN", &keys::campaign_retry(id)).await? {
            let job: Job =
                serde_json::from_str(&member).map_err(|e| StoreError::Reply(format!("retry member: {e}")))?;
            retry.insert((job.index, job.attempt));
        }
        Ok(Snapshot {
            id: id.to_string(),
            cursor: cursor.unwrap_or(0),
            updated_at: updated_at.unwrap_or_default(),
            states,
            retry,
        })
    }

    /// The jobs of this campaign that exist nowhere: (index, state seen, attempt to put back).
    pub fn lost(&self, found: &Found) -> Vec<(u64, &str, u32)> {
        let queued = |index: u64, attempt: u32| {
            self.retry.contains(&(index, attempt)) || found.jobs.contains_key(&(self.id.clone(), index, attempt))
        };
        let mut lost = Vec::new();
        for index in 0..self.cursor {
            match self.states.get(&index) {
                None if !queued(index, 0) => lost.push((index, "", 0)),
                Some((Seen::Deferred(n), code)) if !queued(index, n + 1) => lost.push((index, code.as_str(), n + 1)),
                Some((Seen::InFlight { attempt, entry }, code)) => {
                    let entries = found.jobs.get(&(self.id.clone(), index, *attempt));
                    if !entries.is_some_and(|e| e.iter().any(|(_, id)| id == entry)) {
                        lost.push((index, code.as_str(), *attempt));
                    }
                }
                _ => {}
            }
        }
        lost
    }

    /// Entries of this campaign's recipients already recorded for good, not yet handed to any
    /// worker: (stream, entry id), safe to delete (a worker would skip them).
    pub fn stale<'f>(&self, found: &'f Found) -> Vec<&'f (String, String)> {
        found
            .jobs
            .iter()
            .filter(|((campaign, index, _), _)| {
                *campaign == self.id && matches!(self.states.get(index), Some((Seen::Done, _)))
            })
            .flat_map(|(_, entries)| entries.iter())
            .filter(|(stream, id)| found.undelivered.contains(&(stream.clone(), id.clone())))
            .collect()
    }
}

/// Jobs of some campaigns found in the destination streams.
#[derive(Default)]
pub struct Found {
    /// (campaign, index, attempt) -> (stream, entry id) of each entry holding that job.
    pub jobs: HashMap<(String, u64, u32), Vec<(String, String)>>,
    /// Those entries after their group's last delivered id: no worker has read them.
    pub undelivered: HashSet<(String, String)>,
}

/// Reads every entry of `streams` and keeps those of `campaigns`, a thousand at a time.
pub async fn find_jobs(conn: &mut Conn, streams: &[String], campaigns: &HashSet<String>) -> StoreResult<Found> {
    let mut found = Found::default();
    for stream in streams {
        let delivered = last_delivered(conn, stream).await?;
        let mut from = "-".to_string();
        loop {
            let page: Vec<(String, HashMap<String, redis::Value>)> =
                redis::cmd("XRANGE").arg(stream).arg(&from).arg("+").arg("COUNT").arg(PAGE).query_async(conn).await?;
            for (id, fields) in &page {
                let Ok(job) = Job::from_fields(fields) else { continue };
                if !campaigns.contains(&job.campaign) {
                    continue;
                }
                if delivered.is_none_or(|d| entry_id::parse(id).is_some_and(|e| e > d)) {
                    found.undelivered.insert((stream.clone(), id.clone()));
                }
                found
                    .jobs
                    .entry((job.campaign, job.index, job.attempt))
                    .or_default()
                    .push((stream.clone(), id.clone()));
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => from = format!("({last}"),
                _ => break,
            }
        }
    }
    Ok(found)
}

const PAGE: usize = 1000;

/// The workers' group's last delivered id on `stream` (None: no stream or no group yet).
async fn last_delivered(conn: &mut Conn, stream: &str) -> StoreResult<Option<(u64, u64)>> {
    let exists: bool = redis::cmd("EXISTS").arg(stream).query_async(conn).await?;
    if !exists {
        return Ok(None);
    }
    let groups: Vec<HashMap<String, redis::Value>> =
        redis::cmd("XINFO").arg("GROUPS").arg(stream).query_async(conn).await?;
    Ok(groups.iter().find_map(|g| {
        let name: String = redis::from_redis_value_ref(g.get("name")?).ok()?;
        let last: String = redis::from_redis_value_ref(g.get("last-delivered-id")?).ok()?;
        (name == keys::WORKER_GROUP).then(|| entry_id::parse(&last)).flatten()
    }))
}

/// Every (field, value) of a hash, or (member, score) of a sorted set, by SCAN-style paging.
async fn scan_pairs(conn: &mut Conn, command: &str, key: &str) -> StoreResult<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, flat): (String, Vec<String>) =
            redis::cmd(command).arg(key).arg(&cursor).arg("COUNT").arg(PAGE).query_async(conn).await?;
        pairs.extend(flat.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())));
        if next == "0" {
            return Ok(pairs);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(cursor: u64, states: &[(u64, &str)], retry: &[(u64, u32)]) -> Snapshot {
        Snapshot {
            id: "c".into(),
            cursor,
            updated_at: String::new(),
            states: states.iter().map(|(i, code)| (*i, (Seen::parse(code), code.to_string()))).collect(),
            retry: retry.iter().copied().collect(),
        }
    }

    fn found(entries: &[(u64, u32, &str)], undelivered: &[&str]) -> Found {
        let mut found = Found::default();
        for (index, attempt, id) in entries {
            found.jobs.entry(("c".into(), *index, *attempt)).or_default().push(("s".into(), id.to_string()));
        }
        found.undelivered = undelivered.iter().map(|id| ("s".to_string(), id.to_string())).collect();
        found
    }

    #[test]
    fn states_read_as_the_scripts_write_them() {
        assert_eq!(Seen::parse("q2:17-3"), Seen::InFlight { attempt: 2, entry: "17-3".into() });
        assert_eq!(Seen::parse("d0"), Seen::Deferred(0));
        assert_eq!(Seen::parse("p1"), Seen::DeadLettered);
        for done in ["s", "b", "f", "u", "z", "x"] {
            assert_eq!(Seen::parse(done), Seen::Done, "{done}");
        }
    }

    #[test]
    fn a_job_is_lost_only_where_no_queue_holds_it() {
        // 0: pushed, in a stream. 1: pushed, gone. 2: deferred, its retry waits. 3: deferred,
        // retry gone. 4: in flight from entry 9-0, which is there. 5: in flight, entry gone
        // (another entry for it does not count). 6: sent. 7: dead-lettered. 8: not expanded.
        let snap = snapshot(8, &[(2, "d0"), (3, "d1"), (4, "q0:9-0"), (5, "q1:9-1"), (6, "s"), (7, "p0")], &[(2, 1)]);
        let found = found(&[(0, 0, "1-0"), (4, 0, "9-0"), (5, 1, "9-2"), (6, 0, "2-0")], &[]);
        assert_eq!(snap.lost(&found), [(1, "", 0), (3, "d1", 2), (5, "q1:9-1", 1)]);
    }

    #[test]
    fn only_unread_entries_of_recorded_recipients_are_stale() {
        let snap = snapshot(3, &[(0, "s"), (1, "s"), (2, "q0:5-0")], &[]);
        let found = found(&[(0, 0, "4-0"), (1, 0, "3-0"), (2, 0, "5-0"), (2, 0, "6-0")], &["4-0", "6-0"]);
        assert_eq!(snap.stale(&found), [&("s".to_string(), "4-0".to_string())]);
    }
}
