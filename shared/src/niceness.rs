//! Bulk threads yield the CPU to latency-critical ones. On a host where the processes want more
//! CPU than there is, the kernel shares it out by niceness: a thread a few steps nicer than
//! the priority lane, the admin API and Redis still gets its turn, but one of those waking up
//! runs first. On Linux niceness belongs to each thread and a new thread inherits its
//! creator's; raising it needs no privilege, lowering it back does.

/// The highest niceness Linux knows.
pub const MAX: u8 = 19;

/// The niceness `by` steps above the calling thread's (at most [`MAX`]); `None` for 0 steps,
/// or when the thread's own cannot be read.
pub fn above_this_thread(by: u8) -> Option<i32> {
    if by == 0 {
        return None;
    }
    // `None`: the calling thread (Linux's getpriority/setpriority take a thread id).
    let now = rustix::process::getpriority_process(None).ok()?;
    Some((now + i32::from(by)).min(i32::from(MAX)))
}

/// Makes the calling thread at least as nice as `target`. An absolute target, not a step: a
/// thread started by an already nicer one (tokio's blocking threads are) ends at the same
/// niceness as its creator, not a step further.
pub fn at_least(target: i32) {
    let raised = rustix::process::getpriority_process(None)
        .and_then(|now| if now < target { rustix::process::setpriority_process(None, target) } else { Ok(()) });
    if let Err(e) = raised {
        tracing::warn!(error = %e, target, "could not make a bulk thread nicer; it competes with latency-critical ones as an equal");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of_this_thread() -> i32 {
        rustix::process::getpriority_process(None).unwrap()
    }

    #[test]
    fn threads_reach_one_target_whoever_starts_them_and_only_themselves() {
        let before = of_this_thread();
        assert_eq!(above_this_thread(0), None);
        let target = above_this_thread(3).unwrap();
        assert_eq!(target, (before + 3).min(i32::from(MAX)));
        let (raised, again, child) = std::thread::spawn(move || {
            at_least(target);
            let raised = of_this_thread();
            at_least(target);
            // A thread started by a raised one inherits its niceness: the target holds it there.
            let child = std::thread::spawn(move || {
                at_least(target);
                of_this_thread()
            });
            (raised, of_this_thread(), child.join().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!((raised, again, child), (target, target, target));
        assert_eq!(of_this_thread(), before, "the spawning thread kept its niceness");
        let capped = std::thread::spawn(|| {
            at_least(above_this_thread(MAX).unwrap());
            of_this_thread()
        });
        assert_eq!(capped.join().unwrap(), i32::from(MAX));
    }
}
