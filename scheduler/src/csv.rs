//! CSV (RFC 4180) as Sluice writes and reads it: cells that a spreadsheet cannot run as
//! formulas on the way out, and records of one line each on the way in (the uploads are
//! framed by line, so a cell may not hold a line break).

/// How an export is written: NDJSON (each line a JSON object) or CSV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    /// The `format` query parameter: `ndjson` (the default) or `csv`.
    pub fn parse(given: Option<&str>) -> Result<Format, &'static str> {
        match given {
            None | Some("ndjson") => Ok(Format::Ndjson),
            Some("csv") => Ok(Format::Csv),
            Some(_) => Err("must be ndjson or csv"),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// One cell: quoted when it holds a comma, quote or line break. A cell a spreadsheet would run
/// as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'` (OWASP's advice):
/// recipients and data come from strangers. [`unescaped`] takes the `'` off again.
pub fn cell(value: &str) -> String {
    let formula = value.starts_with(FORMULA_STARTS);
    let value = if formula { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as [`cell`] wrote it: without the `'` it put before a formula's first character.
pub fn unescaped(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => value,
    }
}

/// The cells of one record (a line without its line break).
pub fn cells(line: &str) -> Result<Vec<String>, String> {
    let (mut out, mut current) = (Vec::new(), String::new());
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => current.push(c),
            (false, '"') if current.is_empty() && !was_quoted => (quoted, was_quoted) = (true, true),
            (false, '"') => return Err(format!("cell {} has a quote inside an unquoted value", out.len() + 1)),
            (false, ',') => {
                out.push(std::mem::take(&mut current));
                was_quoted = false;
            }
            (false, _) if was_quoted => return Err(format!("cell {} has text after its closing quote", out.len() + 1)),
            (false, c) => current.push(c),
        }
    }
    if quoted {
        return Err(format!("cell {} opens a quote it does not close on this line", out.len() + 1));
    }
    out.push(current);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_never_formulas() {
        assert_eq!(cell("ann@example.com"), "ann@example.com");
        assert_eq!(cell(r#"{"code":250,"text":"Ok"}"#), r#""{""code"":250,""text"":""Ok""}""#);
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1@example.com"), "'+1@example.com");
        assert_eq!(cell("a\r\nb"), "\"a\r\nb\"");
    }

    #[test]
    fn written_cells_read_back() {
        for value in ["ann@example.com", "+1@example.com", "a, \"b\"", "", "=1+2", "'plain"] {
            let line = format!("{},x", cell(value));
            let read = cells(&line).unwrap();
            assert_eq!((unescaped(&read[0]), read[1].as_str()), (value, "x"), "{line}");
        }
    }

    #[test]
    fn malformed_records_say_which_cell() {
        assert_eq!(cells("a,b,,").unwrap(), ["a", "b", "", ""]);
        assert!(cells("a,\"b").unwrap_err().contains("cell 2"));
        assert!(cells("a,b\"c").unwrap_err().contains("cell 2"));
        assert!(cells("\"a\"b").unwrap_err().contains("cell 1"));
    }
}
