//! The inbound SMTP listener's reader (`inbound::command`) on any byte stream a client can
//! send: command lines and DATA read under their limits, exactly as a session reads them. No
//! panic, no line past `COMMAND_LINE_MAX`, no message past the size limit, and DATA memory
//! taken from the shared budget is all given back.
#![no_main]

use std::{sync::Arc, sync::LazyLock, time::Duration};

use libfuzzer_sys::fuzz_target;
use sluice_scheduler::inbound::command::{
    BUDGET_STEP, COMMAND_LINE_MAX, Command, Data, Line, command_text, read_data, read_line,
};
use tokio::{io::BufReader, runtime::Runtime, sync::Semaphore};

static RUNTIME: LazyLock<Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap());

/// Small, so that the size and budget limits are reached by short inputs.
const MAX_MESSAGE: usize = 3 * BUDGET_STEP;
const BUDGET_STEPS: usize = 2;

fuzz_target!(|stream: &[u8]| {
    RUNTIME.block_on(async {
        let budget = Arc::new(Semaphore::new(BUDGET_STEPS));
        let mut read = BufReader::new(stream);
        let wait = Duration::from_secs(5);
        loop {
            let line = match read_line(&mut read, COMMAND_LINE_MAX, wait).await.unwrap() {
                Line::Eof | Line::TooLong => break,
                Line::Full(line) => line,
            };
            assert!(line.len() <= COMMAND_LINE_MAX);
            let command = Command::parse(&command_text(&line));
            if let Command::Rcpt(address) = &command {
                assert!(!address.contains('>') && !address.contains('\n'), "{address:?}");
            }
            if command != Command::Data {
                continue;
            }
            match read_data(&mut read, MAX_MESSAGE, wait, &budget).await {
                Ok(Data::Message(message, held)) => {
                    assert!(message.len() <= MAX_MESSAGE);
                    drop(held);
                }
                Ok(Data::TooBig | Data::LineTooLong | Data::NoMemory) => break,
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
                    break;
                }
            }
            assert_eq!(budget.available_permits(), BUDGET_STEPS, "DATA memory given back");
        }
        assert_eq!(budget.available_permits(), BUDGET_STEPS, "DATA memory given back");
    });
});
