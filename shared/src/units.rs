//! Human-friendly units used in config: rates like `"100/s"` and durations like `"30s"`.

use std::{fmt, time::Duration};

use serde::Deserialize;

/// Slowest rate accepted: one message a day.
pub const MIN_RATE_PER_SECOND: f64 = 1.0 / 86_400.0;
/// Fastest rate accepted; past it a number is a typo, not a limit.
pub const MAX_RATE_PER_SECOND: f64 = 1e9;

/// A message rate, stored as messages per second.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    per_second: f64,
}

impl Rate {
    pub fn per_second(self) -> f64 {
        self.per_second
    }
}

impl TryFrom<&str> for Rate {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let (count, unit) =
            text.trim().split_once('/').ok_or_else(|| format!("rate {text:?} must look like \"100/s\", \"5000/h\""))?;
        let count: f64 = count.trim().parse().map_err(|_| format!("rate {text:?}: {count:?} is not a number"))?;
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            "d" | "day" => 86400.0,
            other => return Err(format!("rate {text:?}: unknown unit {other:?} (use s, m, h or d)")),
        };
        if !(count.is_finite() && count > 0.0) {
            return Err(format!("rate {text:?} must be greater than zero"));
        }
        let per_second = count / seconds;
        if !(MIN_RATE_PER_SECOND * (1.0 - 1e-9)..=MAX_RATE_PER_SECOND).contains(&per_second) {
            return Err(format!("rate {text:?} must be between 1/d and 1000000000/s"));
        }
        Ok(Rate { per_second })
    }
}

impl TryFrom<String> for Rate {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Rate::try_from(text.as_str())
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

/// A duration written as `"250ms"`, `"30s"`, `"5m"`, `"2h"` or `"3d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Span(pub Duration);

impl Span {
    pub fn get(self) -> Duration {
        self.0
    }
    pub fn as_millis(self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl TryFrom<&str> for Span {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let t = text.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {text:?} needs a unit (ms, s, m, h, d)"))?;
        let (number, unit) = t.split_at(split);
        let number: u64 = number.parse().map_err(|_| format!("duration {text:?} must start with a whole number"))?;
        let millis = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => return Err(format!("duration {text:?}: unknown unit {other:?} (use ms, s, m, h or d)")),
        };
        let total = number.checked_mul(millis).ok_or_else(|| format!("duration {text:?} is too long"))?;
        Ok(Span(Duration::from_millis(total)))
    }
}

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Span::try_from(text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_to_per_second() {
        let cases = [("100/s", 100.0), ("5000/h", 5000.0 / 3600.0), ("60/m", 1.0), ("86400/d", 1.0), (" 2 / s ", 2.0)];
        for (text, want) in cases {
            let got = Rate::try_from(text).unwrap().per_second();
            assert!((got - want).abs() < 1e-9, "{text}: {got} != {want}");
        }
    }

    #[test]
    fn bad_rates_explain_themselves() {
        for (text, needle) in [
            ("100", "must look like"),
            ("x/s", "not a number"),
            ("5/w", "unknown unit"),
            ("0/s", "greater than zero"),
            ("0.5/d", "between"),
            ("2e9/s", "between"),
        ] {
            let err = Rate::try_from(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn spans_parse() {
        let cases = [("250ms", 250), ("30s", 30_000), ("5m", 300_000), ("2h", 7_200_000), ("3d", 259_200_000)];
        for (text, ms) in cases {
            assert_eq!(Span::try_from(text).unwrap().as_millis(), ms, "{text}");
        }
        assert!(Span::try_from("10").unwrap_err().contains("needs a unit"));
        assert!(Span::try_from("10w").unwrap_err().contains("unknown unit"));
        assert!(Span::try_from("s").unwrap_err().contains("whole number"));
        assert!(Span::try_from("18446744073709551615d").unwrap_err().contains("too long"));
    }
}
