//! What a submission client says, read into meaning: the verb, and for MAIL and RCPT the path
//! and the ESMTP parameters we advertise (SIZE, BODY, SMTPUTF8, AUTH). Pure, so the fuzz target
//! `submission_input` drives exactly this code.

/// One command line's meaning, its line ending already removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Ehlo,
    Helo,
    StartTls,
    /// The mechanism and the initial response, if given.
    Auth(&'a str, Option<&'a str>),
    /// `MAIL FROM:` and what follows it.
    Mail(&'a str),
    /// `RCPT TO:` and what follows it.
    Rcpt(&'a str),
    Data,
    /// `BDAT` (RFC 3030) and its arguments.
    Bdat(&'a str),
    Rset,
    Noop,
    Quit,
    Unknown,
}

impl<'a> Command<'a> {
    pub fn parse(line: &'a str) -> Command<'a> {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let is = |v: &str| verb.eq_ignore_ascii_case(v);
        let after = |prefix: &str| {
            rest.get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| rest[prefix.len()..].trim())
        };
        match () {
            _ if is("EHLO") => Command::Ehlo,
            _ if is("HELO") => Command::Helo,
            _ if is("STARTTLS") && rest.is_empty() => Command::StartTls,
            _ if is("AUTH") && !rest.is_empty() => {
                let (mechanism, initial) = rest.split_once(' ').unwrap_or((rest, ""));
                Command::Auth(mechanism, Some(initial.trim()).filter(|i| !i.is_empty()))
            }
            _ if is("MAIL") => after("FROM:").map_or(Command::Unknown, Command::Mail),
            _ if is("RCPT") => after("TO:").map_or(Command::Unknown, Command::Rcpt),
            _ if is("DATA") && rest.is_empty() => Command::Data,
            _ if is("BDAT") => Command::Bdat(rest),
            _ if is("RSET") && rest.is_empty() => Command::Rset,
            _ if is("NOOP") => Command::Noop,
            _ if is("QUIT") && rest.is_empty() => Command::Quit,
            _ => Command::Unknown,
        }
    }
}

/// A MAIL or RCPT argument: the address in the path and the parameters after it.
#[derive(Debug, PartialEq, Eq)]
pub struct Path<'a> {
    /// The address, empty for the null path `<>`.
    pub address: &'a str,
    pub params: Vec<(String, Option<&'a str>)>,
}

/// Reads `<address> KEY=VALUE ...`; a source route (`<@a,@b:x@y>`) is dropped (RFC 5321
/// section 4.1.1.3). `None` when there is no well-formed path.
pub fn path(argument: &str) -> Option<Path<'_>> {
    let inner = argument.strip_prefix('<')?;
    let close = inner.find('>')?;
    let mut address = &inner[..close];
    if address.starts_with('@') {
        address = address.split_once(':')?.1;
    }
    let params = inner[close + 1..]
        .split_whitespace()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        })
        .collect();
    Some(Path { address, params })
}

/// BDAT's arguments: the chunk size and whether it is the last.
pub fn bdat(arguments: &str) -> Option<(usize, bool)> {
    let mut words = arguments.split_whitespace();
    let size = words.next()?.parse().ok()?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return None,
    };
    words.next().is_none().then_some((size, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_case_insensitively() {
        let cases = [
            ("ehlo client.example", Command::Ehlo),
            ("STARTTLS", Command::StartTls),
            ("starttls now", Command::Unknown),
            ("AUTH PLAIN AGtleQB0b2s=", Command::Auth("PLAIN", Some("AGtleQB0b2s="))),
            ("auth login", Command::Auth("login", None)),
            ("AUTH", Command::Unknown),
            ("MAIL FROM:<a@b.example> SIZE=10", Command::Mail("<a@b.example> SIZE=10")),
            ("mail from: <a@b.example>", Command::Mail("<a@b.example>")),
            ("MAIL <a@b.example>", Command::Unknown),
            ("RCPT TO:<x@y.example>", Command::Rcpt("<x@y.example>")),
            ("BDAT 100 LAST", Command::Bdat("100 LAST")),
            ("DATA", Command::Data),
            ("QUIT", Command::Quit),
            ("VRFY root", Command::Unknown),
            ("", Command::Unknown),
            ("\u{e9}\u{e9}", Command::Unknown),
        ];
        for (line, want) in cases {
            assert_eq!(Command::parse(line), want, "{line:?}");
        }
    }

    #[test]
    fn paths_and_parameters() {
        let p = path("<a@b.example> size=100 BODY=8BITMIME SMTPUTF8").unwrap();
        assert_eq!(p.address, "a@b.example");
        assert_eq!(
            p.params,
            [("SIZE".into(), Some("100")), ("BODY".into(), Some("8BITMIME")), ("SMTPUTF8".into(), None)]
        );
        assert_eq!(path("<>").unwrap().address, "");
        assert_eq!(path("<@relay.example:x@y.example>").unwrap().address, "x@y.example");
        assert!(path("a@b.example").is_none(), "the angle brackets are required");
        assert!(path("<a@b.example").is_none());
    }

    #[test]
    fn bdat_arguments() {
        assert_eq!(bdat("100"), Some((100, false)));
        assert_eq!(bdat("0 last"), Some((0, true)));
        assert_eq!(bdat("x"), None);
        assert_eq!(bdat("10 LAST more"), None);
        assert_eq!(bdat("10 FIRST"), None);
        assert_eq!(bdat("99999999999999999999999"), None);
    }
}
