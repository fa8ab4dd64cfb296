//! What a submission client sends, read as the listener reads it: a command line
//! (`submission::command`, with MAIL/RCPT paths and BDAT arguments) and a message made ready
//! to store (`submission::mime::prepare`). No panic; a prepared message has CRLF line endings
//! only, no `Bcc:` or `X-Sluice-*` field left, and a From address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_scheduler::submission::{command, mime};

fuzz_target!(|input: &[u8]| {
    let (line, message) = match input.iter().position(|b| *b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[][..]),
    };
    let text = String::from_utf8_lossy(line);
    match command::Command::parse(&text) {
        command::Command::Mail(argument) | command::Command::Rcpt(argument) => {
            if let Some(path) = command::path(argument) {
                assert!(!path.address.contains('>'), "{:?}", path.address);
            }
        }
        command::Command::Bdat(arguments) => {
            let _ = command::bdat(arguments);
        }
        _ => {}
    }
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let Ok(prepared) = mime::prepare(message, now) else { return };
    let mime = &prepared.mime;
    assert!(mime.ends_with(b"\r\n"));
    for (i, b) in mime.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(mime.get(i + 1), Some(&b'\n'), "a bare CR at {i}"),
            b'\n' => assert!(i > 0 && mime[i - 1] == b'\r', "a bare LF at {i}"),
            _ => {}
        }
    }
    let head = mime.windows(4).position(|w| w == b"\r\n\r\n").map_or(&mime[..], |end| &mime[..end + 2]);
    for line in head.split(|b| *b == b'\n') {
        let lower = line.to_ascii_lowercase();
        for removed in [&b"bcc:"[..], b"x-sluice-tags:", b"x-sluice-metadata:", b"x-sluice-ref:"] {
            assert!(!lower.starts_with(removed), "{:?} left", String::from_utf8_lossy(line));
        }
    }
    assert!(!prepared.from.is_empty());
});
