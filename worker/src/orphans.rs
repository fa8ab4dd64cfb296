//! Entries pending under this worker's own name that no batch of it holds: a take whose reply
//! was lost (the master died after the claim reached its replica), a batch whose steps failed
//! on Redis, an ack that never got through. Others would reclaim them only after
//! `worker.reclaim_idle`; the worker retakes them itself at its next visit to the lane that
//! finds none of its batches there (then everything pending under its name is an orphan).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use sluice_shared::lane::Lane;

type LaneOf = (String, Lane);

#[derive(Default)]
struct State {
    /// Lanes that may hold orphans.
    suspects: HashSet<LaneOf>,
    /// This worker's batches in flight per lane.
    running: HashMap<LaneOf, usize>,
}

#[derive(Clone, Default)]
pub struct Orphans(Arc<Mutex<State>>);

/// One batch in flight on a lane; dropping it ends the batch.
pub struct Running {
    lane: LaneOf,
    orphans: Orphans,
}

impl Orphans {
    /// Something on `domain`'s `lane` failed in a way that may leave entries pending under
    /// this worker's name.
    pub fn suspect(&self, domain: &str, lane: Lane) {
        self.0.lock().unwrap().suspects.insert((domain.to_string(), lane));
    }

    /// Whether a visit to the lane should retake this worker's pending entries first: it may
    /// hold orphans and none of this worker's batches is on it.
    pub fn retake(&self, domain: &str, lane: Lane) -> bool {
        let state = self.0.lock().unwrap();
        // Every visit asks; almost always nothing is suspect, and then no key is built.
        if state.suspects.is_empty() {
            return false;
        }
        let key = (domain.to_string(), lane);
        state.suspects.contains(&key) && !state.running.contains_key(&key)
    }

    /// The visit looked at every entry pending under this worker's name on the lane.
    pub fn cleared(&self, domain: &str, lane: Lane) {
        self.0.lock().unwrap().suspects.remove(&(domain.to_string(), lane));
    }

    /// A batch starts on the lane.
    pub fn start(&self, domain: &str, lane: Lane) -> Running {
        let key = (domain.to_string(), lane);
        *self.0.lock().unwrap().running.entry(key.clone()).or_default() += 1;
        Running { lane: key, orphans: self.clone() }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut state = self.orphans.0.lock().unwrap();
        if let Some(n) = state.running.get_mut(&self.lane) {
            *n -= 1;
            if *n == 0 {
                state.running.remove(&self.lane);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspect_lane_is_retaken_only_while_no_batch_of_ours_runs_on_it() {
        let orphans = Orphans::default();
        assert!(!orphans.retake("a.example", Lane::Bulk), "nothing failed");
        orphans.suspect("a.example", Lane::Bulk);
        assert!(!orphans.retake("a.example", Lane::Priority), "another lane");
        assert!(!orphans.retake("b.example", Lane::Bulk), "another destination");

        let first = orphans.start("a.example", Lane::Bulk);
        let second = orphans.start("a.example", Lane::Bulk);
        assert!(!orphans.retake("a.example", Lane::Bulk), "our batches hold pending entries there");
        drop(first);
        assert!(!orphans.retake("a.example", Lane::Bulk), "one still runs");
        drop(second);
        assert!(orphans.retake("a.example", Lane::Bulk));
        orphans.cleared("a.example", Lane::Bulk);
        assert!(!orphans.retake("a.example", Lane::Bulk), "cleared");
    }
}
