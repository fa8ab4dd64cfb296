//! The engagement record Sluice keeps per address, for list hygiene: first seen, last sent,
//! last real open (prefetched opens do not count), last click, and sends since the last
//! engagement. Ten bytes per address in small hashes: 65,536 buckets in 16 groups, each group
//! one hash slot, so expansion reads and counts a chunk with one script per group.
//!
//! An address is dormant under `[hygiene]`'s sunset policy once it got `sunset_after_sends`
//! sends and `sunset_after_days` days passed since its engagement (its first send when it
//! never engaged); expansion skips it unless the campaign says `include_dormant`.

use serde::Serialize;

/// Buckets per group, and groups.
pub const BUCKETS_PER_GROUP: u32 = 4096;
pub const GROUPS: u32 = 16;

/// Days are counted from this date (day 1); 0 means never.
const EPOCH: chrono::NaiveDate = chrono::NaiveDate::from_ymd_opt(2019, 12, 31).expect("a valid date");

/// Today as engagement records count days.
pub fn day(at: chrono::DateTime<chrono::Utc>) -> u16 {
    (at.date_naive() - EPOCH).num_days().clamp(0, u16::MAX as i64) as u16
}

fn date_of(day: u16) -> Option<String> {
    (day > 0).then(|| (EPOCH + chrono::Days::new(day as u64)).format("%Y-%m-%d").to_string())
}

/// FNV-1a over the lower-cased address: its bucket, 0..65536.
pub fn bucket(address: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in address.bytes() {
        h ^= b.to_ascii_lowercase() as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h % (BUCKETS_PER_GROUP * GROUPS)
}

/// The group (hash slot) of a bucket.
pub fn group(bucket: u32) -> u32 {
    bucket / BUCKETS_PER_GROUP
}

/// One address's record, as stored (10 bytes, little-endian u16s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub first_seen: u16,
    pub last_sent: u16,
    pub last_open: u16,
    pub last_click: u16,
    pub sends_since_engagement: u16,
}

impl Record {
    pub fn from_bytes(b: &[u8]) -> Option<Record> {
        let n: [u8; 10] = b.try_into().ok()?;
        let at = |i: usize| u16::from_le_bytes([n[i], n[i + 1]]);
        Some(Record {
            first_seen: at(0),
            last_sent: at(2),
            last_open: at(4),
            last_click: at(6),
            sends_since_engagement: at(8),
        })
    }

    /// Dormant under `policy` on `today`.
    pub fn is_dormant(&self, policy: &crate::config::HygieneConfig, today: u16) -> bool {
        let (sends, days) = (policy.sunset_after_sends.unwrap_or(0), policy.sunset_after_days.unwrap_or(0));
        let since = self.first_seen.max(self.last_open).max(self.last_click);
        (sends > 0 || days > 0)
            && (sends == 0 || u32::from(self.sends_since_engagement) >= sends)
            && (days == 0 || u32::from(today.saturating_sub(since)) >= days)
    }

    /// As the API shows it: dates (`YYYY-MM-DD`, null for never) and the count.
    pub fn view(&self, policy: &crate::config::HygieneConfig, today: u16) -> View {
        View {
            first_seen: date_of(self.first_seen),
            last_sent: date_of(self.last_sent),
            last_open: date_of(self.last_open),
            last_click: date_of(self.last_click),
            sends_since_engagement: self.sends_since_engagement,
            dormant: self.is_dormant(policy, today),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct View {
    pub first_seen: Option<String>,
    pub last_sent: Option<String>,
    pub last_open: Option<String>,
    pub last_click: Option<String>,
    pub sends_since_engagement: u16,
    pub dormant: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_spread_and_ignore_case() {
        assert_eq!(bucket("Ann@X.example"), bucket("ann@x.example"));
        let groups: std::collections::BTreeSet<u32> =
            (0..1000).map(|i| group(bucket(&format!("u{i}@x.example")))).collect();
        assert_eq!(groups.len(), GROUPS as usize);
        assert!((0..1000).all(|i| bucket(&format!("u{i}@x.example")) < BUCKETS_PER_GROUP * GROUPS));
    }

    #[test]
    fn days_and_records_read_back() {
        let d = day("2026-12-04T10:00:00Z".parse().unwrap());
        assert_eq!(date_of(d).as_deref(), Some("2026-12-04"));
        assert_eq!(date_of(0), None);
        let bytes: Vec<u8> = [d, d, 0, 0, 7].iter().flat_map(|n| n.to_le_bytes()).collect();
        let r = Record::from_bytes(&bytes).unwrap();
        assert_eq!((r.first_seen, r.last_open, r.sends_since_engagement), (d, 0, 7));
        let policy = crate::config::HygieneConfig {
            sunset_after_sends: Some(5),
            sunset_after_days: Some(30),
            ..Default::default()
        };
        assert!(!r.is_dormant(&policy, d), "seven sends, but first seen today");
        assert!(r.is_dormant(&policy, d + 30));
        let engaged = Record { last_click: d + 20, ..r };
        assert!(!engaged.is_dormant(&policy, d + 30), "clicked ten days ago");
        assert!(!r.is_dormant(&crate::config::HygieneConfig::default(), d + 999), "no policy, nobody dormant");
    }
}
