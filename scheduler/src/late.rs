//! Recording what happens to a recipient after the send (open, click, unsubscribe, bounce
//! report, complaint): count it (unique per recipient and in total) and log the event on its
//! campaign; and, apart, suppress the address (a report) or unsubscribe it (a link). Callers
//! choose the order: an unsubscribe link works even after its campaign expired (then from
//! every campaign, its list being unknown), a report only once its campaign is known.

use serde_json::Value;

use sluice_shared::{
    keys,
    redis::{
        Conn, StoreResult,
        scripts::{campaign, suppression},
    },
};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateKind {
    Opened,
    Clicked,
    Unsubscribed,
    Bounced,
    Complained,
}

impl LateKind {
    fn member_prefix(self) -> &'static str {
        match self {
            LateKind::Opened => "o",
            LateKind::Clicked => "k",
            LateKind::Unsubscribed => "u",
            LateKind::Bounced => "b",
            LateKind::Complained => "c",
        }
    }
    /// The counter of recipients it happened to (once each).
    fn unique_counter(self) -> &'static str {
        match self {
            LateKind::Opened => "opened_unique",
            LateKind::Clicked => "clicked_unique",
            LateKind::Unsubscribed => "unsubscribed_unique",
            LateKind::Bounced => "bounced_async",
            LateKind::Complained => "complained_unique",
        }
    }
    /// The counter of every time it happened; a bounce report counts once per recipient only.
    fn total_counter(self) -> &'static str {
        match self {
            LateKind::Opened => "opened",
            LateKind::Clicked => "clicked",
            LateKind::Unsubscribed => "unsubscribed",
            LateKind::Bounced => "",
            LateKind::Complained => "complained",
        }
    }
    /// The event type in the campaign's stream.
    pub fn event(self) -> &'static str {
        match self {
            LateKind::Opened => "opened",
            LateKind::Clicked => "clicked",
            LateKind::Unsubscribed => "unsubscribed",
            LateKind::Bounced => "bounced",
            LateKind::Complained => "complained",
        }
    }
}

pub use sluice_shared::redis::scripts::campaign::Recorded;

/// Adds `address` to the suppression list with `reason`, naming the event and campaign.
pub async fn suppress(
    conn: &mut Conn,
    kind: LateKind,
    campaign: &str,
    address: &str,
    detail: &Value,
    reason: &str,
) -> StoreResult<()> {
    let entry = sluice_shared::suppression::entry(reason, kind.event(), Some(campaign), Some(detail));
    redis::cmd("HSET")
        .arg(keys::suppressed())
        .arg(address.to_ascii_lowercase())
        .arg(entry.to_string())
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

/// Unsubscribes `address` from the campaigns of `list`, or from every campaign (`list` None);
/// transactional mail still reaches it. False when it already was.
pub async fn unsubscribe(
    conn: &mut Conn,
    campaign: &str,
    address: &str,
    list: Option<&str>,
    detail: &Value,
) -> StoreResult<bool> {
    let mut entry = sluice_shared::suppression::entry("unsubscribed", "unsubscribed", Some(campaign), Some(detail));
    if list.is_none() {
        entry["scope"] = "campaigns".into();
    }
    let (address, entry_json) = (address.to_ascii_lowercase(), entry.to_string());
    let one = suppression::Unsubscribe { address: &address, list, entry_json: &entry_json };
    Ok(suppression::unsubscribe(conn, &[one]).await? == 1)
}

/// The list campaign `id` belongs to; None when it has none or is gone.
pub async fn list_of(conn: &mut Conn, id: &str) -> StoreResult<Option<String>> {
    let stored: Option<String> =
        redis::cmd("HGET").arg(keys::campaign_meta(id)).arg("expand").query_async(conn).await?;
    Ok(stored.and_then(|s| sluice_shared::model::Expansion::from_stored(&s).ok()).and_then(|e| e.list))
}

/// Records the event on the campaign: `New` the first time for this recipient and kind,
/// `CampaignGone` (nothing written) when the campaign does not exist.
pub async fn record(
    conn: &mut Conn,
    events_maxlen: u64,
    kind: LateKind,
    campaign: &str,
    index: u64,
    address: &str,
    detail: &Value,
) -> StoreResult<Recorded> {
    let address = address.to_ascii_lowercase();
    let member = format!("{}:{index}", kind.member_prefix());
    let detail_json = detail.to_string();
    let late = campaign::LateEvent {
        member: &member,
        unique_counter: kind.unique_counter(),
        event: kind.event(),
        index,
        address: &address,
        detail_json: &detail_json,
        total_counter: kind.total_counter(),
    };
    campaign::late_event(conn, campaign, events_maxlen, &late).await
}
