//! One line of a suppression import (`POST /v1/suppressions/import`), read as CSV under a
//! header the input picks, and as NDJSON: no panic; a refusal echoes at most
//! `MAX_ECHOED_EMAIL` and says at most `MAX_ERROR` bytes; an accepted line stores a lower-case
//! address (or an erased address's token) and an entry whose reason and source stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_scheduler::{
    campaign::ndjson::{MAX_ECHOED_EMAIL, MAX_ERROR},
    suppression::import::{self, Columns, Row},
};

const HEADERS: [&str; 3] =
    ["email", "email,reason,scope,list", "email,scope,list,reason,source,created_at,campaign,detail"];

fn check(row: &Row) {
    assert!(row.name.starts_with("sha256:") || (row.name.contains('@') && row.name == row.name.to_ascii_lowercase()));
    for k in ["reason", "source"] {
        assert!(row.entry[k].as_str().is_some_and(|v| v.len() <= 256), "{k}: {}", row.entry[k]);
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&pick, line)) = input.split_first() else { return };
    let Ok(line) = std::str::from_utf8(line) else { return };
    let columns = Columns::from_header(HEADERS[usize::from(pick) % HEADERS.len()]).unwrap();
    for read in [import::csv_line(7, line, &columns), import::ndjson_line(7, line)] {
        match read {
            Ok(Some(row)) => check(&row),
            Ok(None) => assert!(line.trim().is_empty()),
            Err(refused) => {
                assert_eq!(refused.line, 7);
                assert!(refused.error.len() <= MAX_ERROR);
                assert!(refused.email.as_ref().is_none_or(|e| e.len() <= MAX_ECHOED_EMAIL));
            }
        }
    }
    let _ = Columns::from_header(line);
});
