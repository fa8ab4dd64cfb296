//! An NDJSON recipient upload, framed and read exactly as `POST /v1/campaigns/{id}/recipients`
//! does (`campaign::ndjson`), the body arriving in pieces whose sizes the input picks: no
//! panic; one item per line of the body, whatever the line holds (a bad line never ends the
//! upload); no line past `MAX_LINE`; a refusal that echoes at most `MAX_ECHOED_EMAIL` and
//! says at most `MAX_ERROR` bytes; an accepted recipient whose address stages unchanged.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_scheduler::campaign::ndjson::{self, MAX_ECHOED_EMAIL, MAX_ERROR, MAX_LINE, UploadLine, UploadLines};
use tokio_util::codec::Decoder;

fuzz_target!(|input: &[u8]| {
    let Some((&piece, body)) = input.split_first() else { return };
    let piece = usize::from(piece) * 512 + 1;
    let (mut codec, mut buf, mut items) = (UploadLines::default(), BytesMut::new(), Vec::new());
    for chunk in body.chunks(piece) {
        buf.extend_from_slice(chunk);
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            items.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
        items.push(item);
    }
    let lines = body.iter().filter(|b| **b == b'\n').count() + usize::from(body.last().is_some_and(|b| *b != b'\n'));
    assert_eq!(items.len(), lines, "one item per line");

    for (number, item) in items.into_iter().enumerate().map(|(i, item)| (i + 1, item)) {
        let UploadLine::Text(line) = item else { continue };
        assert!(line.len() <= MAX_LINE);
        match ndjson::recipient_line(number, &line) {
            Ok(None) => assert!(line.trim().is_empty()),
            Ok(Some(staged)) => {
                assert!(staged.recipient.len() <= 254 && staged.recipient.contains('@'), "{:?}", staged.recipient);
                let stored = serde_json::to_string(&staged).unwrap();
                let back: serde_json::Value = serde_json::from_str(&stored).unwrap();
                assert_eq!(back["r"].as_str(), Some(staged.recipient.as_str()));
            }
            Err(refused) => {
                assert_eq!(refused.line, number);
                assert!(refused.email.as_ref().is_none_or(|e| e.len() <= MAX_ECHOED_EMAIL));
                assert!(!refused.error.is_empty() && refused.error.len() <= MAX_ERROR);
            }
        }
    }
});
