//! A text or HTML part's body, encoded exactly as lettre's `Body::new` encodes it (the same
//! transfer encoding chosen, the same bytes), in one pass into one buffer. lettre's way costs
//! a tenth of a worker's instructions: it scans the text three times to choose, inserts each
//! missing CR one by one, then quoted-printable encodes through a `String`.
//!
//! The choice, as lettre makes it for text that may not go out as 8bit: ASCII whose lines are
//! short is sent as 7bit; anything else as quoted-printable, unless more than a third of its
//! bytes would need escaping (Japanese, say), which lettre itself then encodes as base64.

use lettre::message::{Body, header::ContentTransferEncoding};

/// The longest quoted-printable line, soft break included (RFC 2045 6.7).
const QP_LINE: usize = 76;

/// `text` as the body of a part, with CRLF line ends.
pub fn encode(text: String) -> Body {
    let bytes = text.as_bytes();
    let too_long = line_too_long(bytes);
    if bytes.is_ascii() && !too_long {
        return Body::dangerous_pre_encoded(with_crlf(text), ContentTransferEncoding::SevenBit);
    }
    if escaped(bytes) > bytes.len() / 3 {
        return Body::new(text);
    }
    Body::dangerous_pre_encoded(QuotedPrintable::encode(bytes), ContentTransferEncoding::QuotedPrintable)
}

/// How many bytes quoted-printable would escape, by lettre's count (which takes `=` as plain
/// and a line end as escaped). Counted in chunks of bytes so that the compiler vectorises it.
fn escaped(bytes: &[u8]) -> usize {
    let chunk = |c: &[u8]| c.iter().fold(0u8, |n, &b| n + u8::from(b != b'\t' && !(b' '..=b'~').contains(&b)));
    bytes.chunks(255).map(|c| usize::from(chunk(c))).sum()
}

/// lettre's measure: the first line is too long at 76 bytes, a later one at 75 (its distance
/// from the previous LF counts that LF). Kept as is so that the choice stays the same.
fn line_too_long(bytes: &[u8]) -> bool {
    let mut last = 0;
    for lf in memchr::memchr_iter(b'\n', bytes) {
        if lf - last >= QP_LINE {
            return true;
        }
        last = lf;
    }
    bytes.len() - last >= QP_LINE
}

/// `text` with a CR before every LF that has none; no copy when none is missing.
fn with_crlf(text: String) -> Vec<u8> {
    let bytes = text.as_bytes();
    let bare = memchr::memchr_iter(b'\n', bytes).filter(|&i| i == 0 || bytes[i - 1] != b'\r').count();
    if bare == 0 {
        return text.into_bytes();
    }
    let mut out = Vec::with_capacity(bytes.len() + bare);
    let mut from = 0;
    for lf in memchr::memchr_iter(b'\n', bytes) {
        out.extend_from_slice(&bytes[from..lf]);
        if lf == 0 || bytes[lf - 1] != b'\r' {
            out.push(b'\r');
        }
        from = lf;
    }
    out.extend_from_slice(&bytes[from..]);
    out
}

/// Quoted-printable in text mode over a text whose bare LFs count as CRLF: a line end is a
/// hard break, a CR on its own is `=0D`, space or tab before a line end (or the end) is
/// escaped, and soft breaks keep lines within [`QP_LINE`]. Byte for byte what the
/// `quoted_printable` crate (lettre's) makes of the text after lettre's CRLF pass.
struct QuotedPrintable {
    out: Vec<u8>,
    /// Bytes on the current output line.
    on_line: usize,
    /// Where the last piece appended starts: a soft break that would not fit after it goes
    /// before it.
    backup: usize,
}

impl QuotedPrintable {
    fn encode(input: &[u8]) -> Vec<u8> {
        let mut qp =
            QuotedPrintable { out: Vec::with_capacity(input.len() + input.len() / 16 + 8), on_line: 0, backup: 0 };
        let mut cr = false;
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            i += 1;
            if byte == b'\n' {
                qp.escape_trailing_blank();
                qp.out.extend_from_slice(b"\r\n");
                qp.on_line = 0;
                cr = false;
                continue;
            }
            if std::mem::replace(&mut cr, byte == b'\r') {
                qp.append(b"=0D");
            }
            if cr {
                continue;
            }
            if QP_LINE - qp.on_line >= 3 && is_literal(byte) {
                // A run of literal bytes goes in whole, up to two short of the line's end.
                let start = i - 1;
                let end = input.len().min(start + QP_LINE - qp.on_line - 2);
                i = input[i..end].iter().position(|&b| !is_literal(b)).map_or(end, |n| i + n);
                qp.out.extend_from_slice(&input[start..i]);
                qp.on_line += i - start;
                qp.backup = qp.out.len();
                continue;
            }
            match byte {
                b'=' => qp.append(b"=3D"),
                b if is_literal(b) => qp.append(&[b]),
                b => qp.append(&hex(b)),
            }
        }
        if cr {
            qp.append(b"=0D");
        } else {
            qp.escape_trailing_blank();
        }
        qp.out
    }

    fn append(&mut self, piece: &[u8]) {
        if self.on_line + piece.len() > QP_LINE {
            if self.on_line == QP_LINE {
                self.on_line = self.out.len() - self.backup;
                let tail = self.out.split_off(self.backup);
                self.out.extend_from_slice(b"=\r\n");
                self.out.extend_from_slice(&tail);
            } else {
                self.out.extend_from_slice(b"=\r\n");
                self.on_line = 0;
            }
        }
        self.out.extend_from_slice(piece);
        self.on_line += piece.len();
        self.backup = self.out.len() - piece.len();
    }

    /// A space or tab may not end an encoded line (RFC 2045 6.7 (3)).
    fn escape_trailing_blank(&mut self) {
        let escaped: &[u8] = match self.out.last() {
            Some(b' ') => b"=20",
            Some(b'\t') => b"=09",
            _ => return,
        };
        self.out.pop();
        self.on_line -= 1;
        self.append(escaped);
    }
}

/// Goes out as itself: printable ASCII but `=`, and tab.
fn is_literal(b: u8) -> bool {
    LITERAL[usize::from(b)]
}

const LITERAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        table[b as usize] = b != b'=';
        b += 1;
    }
    table[b'\t' as usize] = true;
    table
};

fn hex(b: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts made of the pieces that move the encoder's edges: blanks before line ends, lone
    /// CRs, bare and full line ends, `=`, multi-byte characters, lines about 76 long.
    fn texts() -> impl Iterator<Item = String> {
        let long = "x".repeat(70);
        let pieces = ["a", "word ", " ", "\t", "=", "\r", "\n", "\r\n", "é", "日本", "🙂"].map(String::from);
        let pieces: Vec<String> = pieces.into_iter().chain([long]).collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        (0..20_000).map(move |n| {
            let mut text = String::new();
            for _ in 0..(n % 60) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(&pieces[(seed % pieces.len() as u64) as usize]);
            }
            text
        })
    }

    #[test]
    fn every_text_is_encoded_as_lettre_encodes_it() {
        let mut seen = std::collections::HashSet::new();
        // Every escape and line end after a run that ends at each place around the limit.
        let edges = (70..=80)
            .flat_map(|n| ["=", " \n", "\t", "é", "\r", "ab=c"].map(|end| format!("{}{end}x\n", "x".repeat(n))));
        for text in texts().chain(edges).chain(["".into(), " ".into(), "a\n".into(), "\r".into()]) {
            let ours = encode(text.clone());
            let theirs = Body::new(text.clone());
            assert_eq!(ours.encoding(), theirs.encoding(), "{text:?}");
            assert_eq!(String::from_utf8_lossy(ours.as_ref()), String::from_utf8_lossy(theirs.as_ref()), "{text:?}");
            seen.insert(format!("{:?}", ours.encoding()));
        }
        assert_eq!(seen.len(), 3, "7bit, quoted-printable and base64 were all met: {seen:?}");
    }

    #[test]
    fn quoted_printable_lines_stay_within_76_and_decode_back() {
        for text in texts() {
            let body = encode(text.clone());
            if body.encoding() != ContentTransferEncoding::QuotedPrintable {
                continue;
            }
            let encoded = String::from_utf8(body.as_ref().to_vec()).unwrap();
            assert!(encoded.split("\r\n").all(|line| line.len() <= QP_LINE), "{encoded:?}");
            let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
            let decoded = quoted_printable::decode(encoded.as_bytes(), quoted_printable::ParseMode::Strict).unwrap();
            assert_eq!(String::from_utf8_lossy(&decoded), crlf, "{text:?}");
        }
    }
}
