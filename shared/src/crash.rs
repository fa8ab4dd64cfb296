//! Crash points for reliability tests. Compiled in only with the `failpoints` feature and
//! armed only through the `FAILPOINTS` environment variable, e.g.
//! `FAILPOINTS=worker::before_record=1*return`: the process then exits at once (code 86),
//! without draining, as a `kill -9` at that exact step would.
//!
//! Points: `worker::before_send` (argument: a recipient prefix, e.g. `return(poison)`),
//! `worker::mid_batch` (half of a batch's sends answered), `worker::before_record` (relay
//! answered, outcomes not recorded), `worker::before_ack` (recorded, not acked),
//! `worker::bulk_round` and `worker::priority_round` (each scheduling round of a lane),
//! `scheduler::intake_read` (intake entries read, not yet handled), `scheduler::pump_round`
//! (each round of an event pump shard). Armed with `panic` instead of `return`, a point
//! panics where it stands (a bug's way out, not a kill's).

/// Exit here if the point is armed.
pub fn point(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        crash(name);
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Exit here if the point is armed and its argument (if any) is a prefix of `recipient`.
pub fn point_for(name: &str, recipient: &str) {
    #[cfg(feature = "failpoints")]
    if let Some(arg) = fail::eval(name, |arg| arg)
        && arg.is_none_or(|prefix| recipient.starts_with(&prefix))
    {
        crash(name);
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = (name, recipient);
}

#[cfg(feature = "failpoints")]
fn crash(name: &str) -> ! {
    eprintln!("crash point {name} reached; exiting without cleanup");
    std::process::exit(86)
}
