//! DKIM relaxed canonicalization (RFC 6376 3.4.2, 3.4.4) and header selection.

/// One header field as it appears in the message: the name and the raw value (everything
/// after the colon, continuation lines included, without the final CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// Splits a message into its header fields and its body. The header block ends at the first
/// empty line; a message without one is all header.
pub fn split(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let (head, body) = match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, &message[message.len()..]),
    };
    // Our own messages are ASCII headers (RFC 2047 for the rest); anything else is skipped.
    let head = std::str::from_utf8(head).unwrap_or("");
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    for line in head.split_inclusive("\r\n") {
        let continuation = line.starts_with([' ', '\t']);
        if !continuation {
            if let Some(s) = start {
                push_field(&mut fields, &head[s..pos]);
            }
            start = Some(pos);
        }
        pos += line.len();
    }
    if let Some(s) = start {
        push_field(&mut fields, &head[s..pos]);
    }
    (fields, body)
}

fn push_field<'a>(fields: &mut Vec<Field<'a>>, raw: &'a str) {
    let raw = raw.strip_suffix("\r\n").unwrap_or(raw);
    if let Some((name, value)) = raw.split_once(':') {
        fields.push(Field { name, value });
    }
}

/// `name:value` in relaxed form: lower-case name, unfolded value, runs of whitespace as one
/// space, none at either end. No trailing CRLF.
pub fn relaxed_header(name: &str, value: &str, out: &mut Vec<u8>) {
    out.extend(name.trim_end().to_ascii_lowercase().as_bytes());
    out.push(b':');
    let mut pending_space = false;
    let mut wrote = false;
    for c in value.bytes() {
        match c {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => pending_space = wrote,
            _ => {
                if pending_space {
                    out.push(b' ');
                    pending_space = false;
                }
                out.push(c);
                wrote = true;
            }
        }
    }
}

/// The body in relaxed form (trailing whitespace off each line, inner runs as one space, no
/// trailing empty lines; a non-empty body ends with CRLF), handed to `emit` in pieces. Spans
/// already in relaxed form go out as slices of `body` itself, so a typical body is hashed
/// without a copy: most lines need nothing changed.
pub fn relaxed_body(body: &[u8], mut emit: impl FnMut(&[u8])) {
    let is_blank = |b: u8| b == b' ' || b == b'\t';
    // body[from..done] is in relaxed form and not yet emitted.
    let (mut from, mut done) = (0, 0);
    // Empty lines seen since the last line with text: kept only if text follows.
    let mut empty_lines = 0;
    let mut empty_lines_verbatim = true;
    let mut start = 0;
    while start < body.len() {
        let lf = memchr::memchr(b'\n', &body[start..]).map(|i| start + i);
        let end = lf.unwrap_or(body.len());
        let has_cr = end > start && body[end - 1] == b'\r';
        let content_end = end - usize::from(has_cr);
        let text_end = body[start..content_end].iter().rposition(|&b| !is_blank(b)).map_or(start, |i| start + i + 1);
        let next = lf.map_or(body.len(), |lf| lf + 1);
        if text_end == start {
            empty_lines += 1;
            empty_lines_verbatim &= has_cr && content_end == start && lf.is_some();
            start = next;
            continue;
        }
        if empty_lines > 0 && !empty_lines_verbatim {
            emit(&body[from..done]);
            for _ in 0..empty_lines {
                emit(b"\r\n");
            }
            from = start;
        }
        (empty_lines, empty_lines_verbatim) = (0, true);
        // Inner whitespace: one space before text stays; anything else becomes one space.
        let mut i = start;
        while let Some(at) = memchr::memchr2(b' ', b'\t', &body[i..text_end]).map(|n| i + n) {
            let run_end = body[at..text_end].iter().position(|&b| !is_blank(b)).map_or(text_end, |n| at + n);
            if body[at] != b' ' || run_end - at > 1 {
                emit(&body[from..at]);
                emit(b" ");
                from = run_end;
            }
            i = run_end;
        }
        if text_end == content_end && has_cr && lf.is_some() {
            done = next;
        } else {
            emit(&body[from..text_end]);
            emit(b"\r\n");
            (from, done) = (next, next);
        }
        start = next;
    }
    emit(&body[from..done]);
}

/// The header names to list in `h=`: each wanted header once per instance present, then
/// `oversign` names once more, so a header added later cannot pass as signed.
pub fn signed_names(fields: &[Field<'_>], wanted: &[&str], oversign: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for w in wanted {
        let present = fields.iter().filter(|f| f.name.trim().eq_ignore_ascii_case(w)).count();
        names.extend(std::iter::repeat_n(w.to_ascii_lowercase(), present));
    }
    names.extend(oversign.iter().map(|o| o.to_ascii_lowercase()));
    names
}

/// The canonical header data for `names` (RFC 6376 5.4.2): for each name, the last instance
/// not yet used; a name with no instance left adds nothing.
pub fn header_data(fields: &[Field<'_>], names: &[String]) -> Vec<u8> {
    let mut used = vec![false; fields.len()];
    let mut out = Vec::new();
    for name in names {
        let found = (0..fields.len()).rev().find(|&i| !used[i] && fields[i].name.trim().eq_ignore_ascii_case(name));
        if let Some(i) = found {
            used[i] = true;
            relaxed_header(fields[i].name, fields[i].value, &mut out);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_header_examples_from_rfc_6376() {
        // RFC 6376 3.4.6: "A: X" -> "a:X", "B : Y\t\r\n\tZ  " -> "b:Y Z".
        let mut out = Vec::new();
        relaxed_header("A", " X", &mut out);
        assert_eq!(out, b"a:X");
        out.clear();
        relaxed_header("B ", " Y\t\r\n\tZ  ", &mut out);
        assert_eq!(out, b"b:Y Z");
    }

    fn relaxed(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        relaxed_body(body, |piece| out.extend_from_slice(piece));
        out
    }

    #[test]
    fn relaxed_body_examples_from_rfc_6376() {
        assert_eq!(relaxed(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed(b""), b"");
        assert_eq!(relaxed(b"\r\n\r\n"), b"");
        assert_eq!(relaxed(b"x"), b"x\r\n");
        assert_eq!(relaxed(b"a\r\n\r\nb\r\n"), b"a\r\n\r\nb\r\n");
        assert_eq!(relaxed(b"a\n \nb\r\n\t"), b"a\r\n\r\nb\r\n");
    }

    /// RFC 6376 3.4.4 written out line by line, the plain way: the reference the sliced
    /// version must match byte for byte.
    fn relaxed_line_by_line(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut empty_lines = 0;
        let mut lines = body.split(|b| *b == b'\n').peekable();
        while let Some(line) = lines.next() {
            let last = lines.peek().is_none();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if last && line.is_empty() {
                break;
            }
            let mut canon = Vec::new();
            let mut space = false;
            for &c in line {
                if c == b' ' || c == b'\t' {
                    space = true;
                } else {
                    if std::mem::take(&mut space) {
                        canon.push(b' ');
                    }
                    canon.push(c);
                }
            }
            if canon.is_empty() {
                empty_lines += 1;
                continue;
            }
            out.extend(b"\r\n".repeat(std::mem::take(&mut empty_lines)));
            out.extend(canon);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn every_body_is_relaxed_as_rfc_6376_says() {
        let pieces: [&[u8]; 9] = [b"a", b"word", b" ", b"  ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n\r\n"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in 0..20_000 {
            let mut body = Vec::new();
            for _ in 0..(n % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                body.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            assert_eq!(relaxed(&body), relaxed_line_by_line(&body), "body {:?}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn headers_split_with_continuations_and_oversigning_adds_nothing() {
        let msg = b"From: a@b.example\r\nSubject: one\r\n two\r\nTo: c@d.example\r\n\r\nbody\r\n";
        let (fields, body) = split(msg);
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[1], Field { name: "Subject", value: " one\r\n two" });
        assert_eq!(body, b"body\r\n");
        let names = signed_names(&fields, &["from", "subject", "reply-to"], &["from"]);
        assert_eq!(names, ["from", "subject", "from"]);
        assert_eq!(header_data(&fields, &names), b"from:a@b.example\r\nsubject:one two\r\n");
    }
}
