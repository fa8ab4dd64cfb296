//! The report parser (`inbound::report::parse`) on any bytes a stranger can mail to the bounce
//! domain: it never panics, and a DSN yields between one and `MAX_DSN_RECIPIENTS` recipients.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_scheduler::inbound::report::{self, Kind, MAX_DSN_RECIPIENTS};

fuzz_target!(|raw: &[u8]| {
    if let Ok(report::Report { kind: Kind::Dsn(recipients), .. }) = report::parse(raw) {
        assert!((1..=MAX_DSN_RECIPIENTS).contains(&recipients.len()), "{} recipients", recipients.len());
    }
});
