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

/// The body in relaxed form: trailing whitespace off each line, inner runs as one space, no
/// trailing empty lines; a non-empty body ends with CRLF.
pub fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut empty_lines = 0usize;
    let mut lines = body.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if last && line.is_empty() {
            break;
        }
        let mut canon = Vec::with_capacity(line.len());
        let mut space = false;
        for &c in line {
            if c == b' ' || c == b'\t' {
                space = true;
            } else {
                if space {
                    canon.push(b' ');
                    space = false;
                }
                canon.push(c);
            }
        }
        if canon.is_empty() {
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        empty_lines = 0;
        out.extend_from_slice(&canon);
        out.extend_from_slice(b"\r\n");
    }
    out
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

    #[test]
    fn relaxed_body_examples_from_rfc_6376() {
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b"x"), b"x\r\n");
        assert_eq!(relaxed_body(b"a\r\n\r\nb\r\n"), b"a\r\n\r\nb\r\n");
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
