//! Reading what an inbound SMTP client sends: command lines and the DATA section, each held to
//! its limit while reading (nothing is buffered past it), and a command line's meaning. Apart
//! from the session so that the fuzz target `smtp_commands` drives exactly this code.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt},
    sync::{OwnedSemaphorePermit, Semaphore},
};

/// Longest command line, CRLF included (Postfix's `line_length_limit`).
pub const COMMAND_LINE_MAX: usize = 2048;
/// Longest line of DATA, CRLF included: RFC 5321 allows 1,000; this leaves room for senders
/// that overstep it without letting one line fill memory.
pub const DATA_LINE_MAX: usize = 8192;
/// DATA memory is taken from the shared budget in steps of this many bytes.
pub const BUDGET_STEP: usize = 64 * 1024;

/// A line read under a length cap.
#[derive(Debug)]
pub enum Line {
    Eof,
    TooLong,
    Full(Vec<u8>),
}

/// What DATA produced.
#[derive(Debug)]
pub enum Data {
    Message(Vec<u8>, OwnedSemaphorePermit),
    TooBig,
    LineTooLong,
    NoMemory,
}

/// A command line's meaning. Verbs are case-insensitive; arguments the listener ignores
/// (EHLO's name, MAIL's path and parameters) are not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo,
    Helo,
    StartTls,
    Mail,
    /// The address inside RCPT TO's angle brackets (or the bare argument).
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    Unknown,
}

impl Command {
    /// The meaning of one command line, its line ending already removed.
    pub fn parse(line: &str) -> Command {
        // Verbs that stand alone, then verbs followed by an argument; no verb is a prefix of
        // another, so the order does not matter.
        const WHOLE: [(&str, Command); 5] = [
            ("STARTTLS", Command::StartTls),
            ("DATA", Command::Data),
            ("RSET", Command::Rset),
            ("NOOP", Command::Noop),
            ("QUIT", Command::Quit),
        ];
        const LEADING: [(&str, Command); 3] =
            [("EHLO", Command::Ehlo), ("HELO", Command::Helo), ("MAIL FROM:", Command::Mail)];
        let starts = |verb: &str| line.get(..verb.len()).is_some_and(|head| head.eq_ignore_ascii_case(verb));
        if let Some((_, command)) = WHOLE.iter().find(|(verb, _)| line.eq_ignore_ascii_case(verb)) {
            return command.clone();
        }
        if let Some((_, command)) = LEADING.iter().find(|(verb, _)| starts(verb)) {
            return command.clone();
        }
        if starts("RCPT TO:") {
            let path = line["RCPT TO:".len()..].trim().trim_start_matches('<');
            return Command::Rcpt(path.split('>').next().unwrap_or("").to_string());
        }
        Command::Unknown
    }
}

/// One line of at most `max` bytes (its LF included), read within `wait`. A longer line is
/// `TooLong` once `max + 1` bytes were read: the rest is never buffered.
pub async fn read_line<R: AsyncBufRead + Unpin>(read: &mut R, max: usize, wait: Duration) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let n = tokio::time::timeout(wait, read.take(max as u64 + 1).read_until(b'\n', &mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "command timeout"))??;
    Ok(match n {
        0 => Line::Eof,
        _ if buf.len() > max => Line::TooLong,
        _ => Line::Full(buf),
    })
}

/// A command line as text: invalid UTF-8 replaced, the line ending removed.
pub fn command_text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).trim_end_matches(['\r', '\n']).to_string()
}

/// The DATA section up to the lone dot, dot-stuffing undone, each line and the whole held to
/// their limits while reading; the memory it holds is taken from `budget` as it grows and
/// given back when the returned permit drops.
pub async fn read_data<R: AsyncBufRead + Unpin>(
    read: &mut R,
    max: usize,
    wait: Duration,
    budget: &Arc<Semaphore>,
) -> std::io::Result<Data> {
    let mut out = Vec::new();
    let Ok(mut held) = budget.clone().try_acquire_owned() else { return Ok(Data::NoMemory) };
    let mut allowed = BUDGET_STEP;
    loop {
        let line = match read_line(read, DATA_LINE_MAX, wait).await? {
            Line::Eof => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof in DATA")),
            Line::TooLong => return Ok(Data::LineTooLong),
            Line::Full(line) => line,
        };
        if line == b".\r\n" || line == b".\n" {
            return Ok(Data::Message(out, held));
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if out.len() + line.len() > max {
            return Ok(Data::TooBig);
        }
        while out.len() + line.len() > allowed {
            let Ok(more) = budget.clone().try_acquire_owned() else { return Ok(Data::NoMemory) };
            held.merge(more);
            allowed += BUDGET_STEP;
        }
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn data(input: &[u8], max: usize, budget: usize) -> Data {
        let mut reader = BufReader::new(input);
        let budget = Arc::new(Semaphore::new(budget));
        read_data(&mut reader, max, Duration::from_secs(1), &budget).await.unwrap()
    }

    #[tokio::test]
    async fn data_is_held_to_its_limits_while_reading() {
        match data(b"a\r\n..b\r\n.\r\n", 100, 1).await {
            Data::Message(m, _) => assert_eq!(m, b"a\r\n.b\r\n"),
            _ => panic!("a small message is read whole"),
        }
        let long_line = vec![b'x'; DATA_LINE_MAX * 4];
        assert!(matches!(data(&long_line, 1 << 20, 100).await, Data::LineTooLong));
        let many_lines = b"0123456789\r\n".repeat(1000);
        assert!(matches!(data(&many_lines, 5000, 100).await, Data::TooBig));
        let big = b"0123456789\r\n".repeat(10_000);
        assert!(matches!(data(&big, 1 << 20, 1).await, Data::NoMemory), "past the shared budget");
        assert!(matches!(data(b"x\r\n", 100, 0).await, Data::NoMemory));
    }

    #[test]
    fn commands_are_read_case_insensitively() {
        let cases = [
            ("ehlo client.example", Command::Ehlo),
            ("HELO x", Command::Helo),
            ("StartTLS", Command::StartTls),
            ("STARTTLS now", Command::Unknown),
            ("mail from:<a@b.example> SIZE=10", Command::Mail),
            ("RCPT TO:<b+tag@bounces.example> NOTIFY=NEVER", Command::Rcpt("b+tag@bounces.example".into())),
            ("rcpt to: plain@bounces.example", Command::Rcpt("plain@bounces.example".into())),
            ("DATA", Command::Data),
            ("data now", Command::Unknown),
            ("RSET", Command::Rset),
            ("noop", Command::Noop),
            ("QUIT", Command::Quit),
            ("VRFY root", Command::Unknown),
            ("", Command::Unknown),
            ("RCPT TO:\u{e9}", Command::Rcpt("\u{e9}".into())),
            ("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}", Command::Unknown),
        ];
        for (line, want) in cases {
            assert_eq!(Command::parse(line), want, "{line:?}");
        }
    }
}
