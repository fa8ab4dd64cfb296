//! Recording what happens to a recipient after the send (open, click, unsubscribe, bounce
//! report, complaint): count it (unique per recipient and in total) and log the event on its
//! campaign; and, apart, suppress the address (a report) or unsubscribe it (a link). Callers
//! choose the order: an unsubscribe link works even after its campaign expired (then from
//! every campaign, its list being unknown), a report only once its campaign is known.

use serde_json::Value;

use sluice_shared::{
    config::Config,
    keys,
    redis::{
        Conn, StoreResult,
        scripts::{campaign, suppression},
    },
    reputation,
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

/// What the unsubscribe page needs to know of a campaign (or message).
pub struct PageFacts {
    pub list: Option<String>,
    pub locale: Option<String>,
    /// The From name, else the From domain.
    pub sender: String,
}

/// The facts of campaign `id`; None when it is gone.
pub async fn page_facts(conn: &mut Conn, id: &str) -> StoreResult<Option<PageFacts>> {
    let spec: Option<String> = redis::cmd("HGET").arg(keys::campaign_meta(id)).arg("spec").query_async(conn).await?;
    let Some(spec) = spec.and_then(|s| serde_json::from_str::<sluice_shared::model::CampaignSpec>(&s).ok()) else {
        return Ok(None);
    };
    let domain = spec.from.email.rsplit_once('@').map_or("", |(_, d)| d).to_string();
    Ok(Some(PageFacts { list: spec.list, locale: spec.locale, sender: spec.from.name.unwrap_or(domain) }))
}

/// Counts a complaint about campaign `id`'s mail to `address` for the reputation guard (the
/// campaign's and its From domain's counts, overall and at the address's provider), which may
/// pause the campaign.
pub async fn count_complaint(conn: &mut Conn, config: &Config, id: &str, address: &str) -> StoreResult<()> {
    let spec: Option<String> = redis::cmd("HGET").arg(keys::campaign_meta(id)).arg("spec").query_async(conn).await?;
    let Some(spec) = spec.and_then(|s| serde_json::from_str::<sluice_shared::model::CampaignSpec>(&s).ok()) else {
        return Ok(());
    };
    let from_domain = spec.from.email.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
    let to_domain = address.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
    let limits = &config.limits;
    let provider = match limits.providers().by_domain(&to_domain) {
        Some(p) => p.name.clone(),
        None => limits.label(&to_domain).to_string(),
    };
    let scopes = reputation::Scope::all_for(id, &from_domain, &provider, sluice_shared::lane::is_message(id));
    let add = reputation::Counts { complaints: 1, ..Default::default() };
    reputation::observe(conn, &config.reputation, config.campaigns.events_maxlen, id, &scopes, &add).await?;
    Ok(())
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
