//! Stream entry ids (`<ms>-<seq>`): checking one given as a cursor, and reading its time.

/// Whether `id` is a stream entry id, the form of every stream cursor in the API.
pub fn is_valid(id: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    id.split_once('-').is_some_and(|(ms, seq)| digits(ms) && digits(seq))
}

/// The time part of an entry id (ms since the epoch, Redis clock).
pub fn millis(id: &str) -> Option<i64> {
    id.split('-').next()?.parse().ok()
}

/// The id as (ms, seq), which orders ids of one stream.
pub fn parse(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_checked_and_read() {
        assert!(is_valid("1795690000000-0"));
        for bad in ["", "x-1", "1-", "-1", "1-2-3", "1"] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert_eq!(millis("1795690000000-3"), Some(1_795_690_000_000));
        assert_eq!(millis("nope"), None);
        assert_eq!(parse("17-3"), Some((17, 3)));
        assert!(parse("17-2") < parse("17-10") && parse("9-9") < parse("17-0"));
    }
}
