//! Bulk threads yield the CPU to latency-critical ones. On a host where the processes want more
//! CPU than there is, the kernel shares it out by niceness: a thread a few steps nicer than
//! the priority lane, the admin API and Redis still gets its turn, but one of those waking up
//! runs first. On Linux niceness belongs to each thread and a new thread inherits its
//! creator's; raising it needs no privilege, lowering it back does.

/// The highest niceness Linux knows.
pub const MAX: u8 = 19;

/// Raises the calling thread's niceness by `by` (capped at [`MAX`]); 0 leaves it alone.
pub fn raise_this_thread(by: u8) {
    if by == 0 {
        return;
    }
    // `None`: the calling thread (Linux's getpriority/setpriority take a thread id).
    let raised = rustix::process::getpriority_process(None)
        .and_then(|now| rustix::process::setpriority_process(None, (now + i32::from(by)).min(i32::from(MAX))));
    if let Err(e) = raised {
        tracing::warn!(error = %e, by, "could not make a bulk thread nicer; it competes with latency-critical ones as an equal");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of_this_thread() -> i32 {
        rustix::process::getpriority_process(None).unwrap()
    }

    #[test]
    fn raising_touches_only_the_calling_thread_and_stops_at_the_maximum() {
        let before = of_this_thread();
        let (raised, capped) = std::thread::spawn(|| {
            raise_this_thread(3);
            let raised = of_this_thread();
            raise_this_thread(MAX);
            (raised, of_this_thread())
        })
        .join()
        .unwrap();
        assert_eq!(raised, (before + 3).min(i32::from(MAX)));
        assert_eq!(capped, i32::from(MAX));
        assert_eq!(of_this_thread(), before, "the spawning thread kept its niceness");
        raise_this_thread(0);
        assert_eq!(of_this_thread(), before);
    }
}
