//! One line of an NDJSON recipient upload (`POST /v1/campaigns/{id}/recipients`): framing
//! and reading, apart from the handler so that the fuzz target `ndjson_line` drives exactly
//! this code. Every line of the body yields one [`UploadLine`], an overlong or non-UTF-8 one
//! included, so a bad line refuses only itself and never ends the upload early. What a refused
//! line reports back is bounded, whatever the line held.

use bytes::{Buf, BytesMut};
use serde::Serialize;
use serde_json::Value;
use tokio_util::codec::Decoder;

use sluice_shared::model::Staged;

use super::request::check_recipient;

/// Longest line accepted, its LF excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest `email` echoed back in a refusal (an address is at most 254 octets).
pub const MAX_ECHOED_EMAIL: usize = 256;
/// Longest refusal message (serde's errors quote the offending value).
pub const MAX_ERROR: usize = 512;

/// One line of the body as framed by [`UploadLines`].
#[derive(Debug, PartialEq, Eq)]
pub enum UploadLine {
    /// The line without its LF or CRLF.
    Text(String),
    /// Longer than [`MAX_LINE`]: its bytes were skipped, never buffered.
    TooLong,
    NotUtf8,
}

impl UploadLine {
    fn of(line: &[u8]) -> UploadLine {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        std::str::from_utf8(line).map_or(UploadLine::NotUtf8, |text| UploadLine::Text(text.to_string()))
    }
}

/// The line framing of every upload: LF or CRLF, at most [`MAX_LINE`] bytes a line held in
/// memory. Unlike tokio-util's `LinesCodec`, whose first error ends a `FramedRead`, a bad
/// line is an item, not an error.
#[derive(Debug, Default)]
pub struct UploadLines {
    /// Bytes already searched for a LF.
    searched: usize,
    /// Inside an overlong line: skipping to its LF.
    skipping: bool,
}

impl Decoder for UploadLines {
    type Item = UploadLine;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<UploadLine>> {
        if self.skipping {
            match buf.iter().position(|b| *b == b'\n') {
                Some(lf) => {
                    buf.advance(lf + 1);
                    self.skipping = false;
                }
                None => {
                    buf.clear();
                    return Ok(None);
                }
            }
        }
        let window = buf.len().min(MAX_LINE + 1);
        if let Some(lf) = buf[self.searched.min(window)..window].iter().position(|b| *b == b'\n') {
            let end = self.searched.min(window) + lf;
            self.searched = 0;
            let line = buf.split_to(end + 1);
            return Ok(Some(UploadLine::of(&line[..end])));
        }
        if buf.len() > MAX_LINE {
            self.searched = 0;
            self.skipping = true;
            return Ok(Some(UploadLine::TooLong));
        }
        self.searched = buf.len();
        Ok(None)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<UploadLine>> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.searched = 0;
        Ok(Some(UploadLine::of(&buf.split())))
    }
}

/// The next text line of an upload body, `number` counting every line from 1; an overlong or
/// non-UTF-8 line goes to `refuse` as it comes, and the reading goes on. None at the end.
pub async fn next_text_line<R: tokio::io::AsyncRead + Unpin>(
    lines: &mut tokio_util::codec::FramedRead<R, UploadLines>,
    number: &mut usize,
    mut refuse: impl FnMut(LineRejection),
) -> std::io::Result<Option<String>> {
    use futures::TryStreamExt;
    loop {
        let next = lines.try_next().await?;
        *number += 1;
        match next {
            Some(UploadLine::Text(line)) => return Ok(Some(line)),
            Some(UploadLine::TooLong) => {
                refuse(LineRejection::new(*number, None, &format!("line is longer than {MAX_LINE} bytes")))
            }
            Some(UploadLine::NotUtf8) => refuse(LineRejection::new(*number, None, "line is not UTF-8")),
            None => return Ok(None),
        }
    }
}

/// A line of an NDJSON upload that was not accepted.
#[derive(Debug, Serialize)]
pub struct LineRejection {
    pub line: usize,
    pub email: Option<String>,
    pub error: String,
}

impl LineRejection {
    /// A refusal of line `line`, the echoed address and the message cut to their bounds.
    pub fn new(line: usize, email: Option<&str>, error: &str) -> LineRejection {
        LineRejection { line, email: email.map(|e| cut(e, MAX_ECHOED_EMAIL)), error: cut(error, MAX_ERROR) }
    }
}

/// One line read: `Ok(None)` for a blank line, the staged recipient, or why the line is refused.
pub fn recipient_line(number: usize, line: &str) -> Result<Option<Staged>, LineRejection> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(line).map_err(|e| LineRejection::new(number, None, &format!("invalid JSON: {e}")))?;
    let hint = value.get("email").and_then(Value::as_str).map(str::to_string);
    check_recipient(value).map(Some).map_err(|e| LineRejection::new(number, hint.as_deref(), &e))
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(body: &[u8]) -> Vec<UploadLine> {
        let (mut codec, mut buf, mut out) = (UploadLines::default(), BytesMut::new(), Vec::new());
        // Fed in small pieces, as a body arrives.
        for piece in body.chunks(1000) {
            buf.extend_from_slice(piece);
            while let Some(line) = codec.decode(&mut buf).unwrap() {
                out.push(line);
            }
        }
        while let Some(line) = codec.decode_eof(&mut buf).unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn every_line_is_one_frame_whatever_it_holds() {
        let long = vec![b'x'; MAX_LINE + 1];
        let exact = "y".repeat(MAX_LINE);
        let body = [b"a\r\n".as_slice(), &long, b"\n\xff\xfe\nb\n", exact.as_bytes(), b"\n", &long].concat();
        let text = |t: &str| UploadLine::Text(t.into());
        let want = [text("a"), UploadLine::TooLong, UploadLine::NotUtf8, text("b"), text(&exact), UploadLine::TooLong];
        assert_eq!(frames(&body), want);
        assert_eq!(frames(b"last"), [text("last")]);
        assert_eq!(frames(b""), []);
    }

    #[test]
    fn lines_are_read_and_refusals_bounded() {
        assert!(recipient_line(1, "  \r").unwrap().is_none());
        let staged = recipient_line(2, r#"{"email":"Ann@X.example","vars":{"n":1}}"#).unwrap().unwrap();
        assert_eq!(staged.recipient, "Ann@x.example");
        let refused = recipient_line(3, "{").unwrap_err();
        assert!(refused.error.starts_with("invalid JSON"), "{}", refused.error);
        let long = "é".repeat(40_000);
        let refused = recipient_line(4, &format!(r#"{{"email":"{long}","vars":"{long}"}}"#)).unwrap_err();
        assert!(refused.email.as_ref().unwrap().len() <= MAX_ECHOED_EMAIL);
        assert!(refused.email.unwrap().ends_with('…'));
        assert!(refused.error.len() <= MAX_ERROR, "{}", refused.error.len());
        assert_eq!(refused.line, 4);
    }
}
