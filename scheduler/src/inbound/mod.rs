//! Reports that arrive after the send (DSN bounces, ARF complaints), over `POST /v1/inbound`
//! or the inbound SMTP listener: parsed ([`report`]), matched back to the message by VERP,
//! the signed trace header or the Message-ID, recorded as `bounced` or `complained` events,
//! and the address suppressed on hard bounces and complaints. What cannot be parsed or
//! matched is counted and kept in `sluice:inbound:unmatched` (its first 32 KiB, the stream
//! capped at 2,000 entries), and changes nothing.

pub mod command;
pub mod report;
pub mod smtp;

use std::sync::Arc;

use crate::late::{self, LateKind, Recorded};
use serde::Serialize;
use serde_json::json;
use sluice_shared::{
    classify::{Action, Classifier},
    config::Config,
    keys, metrics as m,
    redis::{Conn, StoreResult},
    refs,
    tokens::{Recipient, TokenKey},
};

use report::{DsnRecipient, Kind, Report, field};

/// The link secret (unsubscribe, VERP and trace tokens) and the reply rules, built once;
/// shared by the admin API, the public listener and the inbound listener.
pub struct InboundParts {
    pub tokens: TokenKey,
    pub rules: Classifier,
}

impl InboundParts {
    /// Built when `[public]` is configured (its secret signs the links).
    pub fn from_config(config: &Config) -> Option<Arc<InboundParts>> {
        config.public.as_ref().map(|p| {
            Arc::new(InboundParts {
                tokens: TokenKey::new(&p.secret),
                rules: config.bounces.classifier().expect("rules were checked when the config was validated"),
            })
        })
    }
}

/// What processing one report did, per recipient it named.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub campaign: String,
    pub index: u64,
    pub recipient: String,
    /// bounced, complained, or ignored (a `delayed` or `delivered` DSN).
    pub event: &'static str,
    pub category: Option<&'static str>,
    pub suppressed: bool,
    /// False when the same report (kind and recipient) was recorded before.
    pub new: bool,
}

/// The result for the whole message.
#[derive(Debug, Clone, Serialize)]
pub struct Processed {
    /// dsn, arf, or unknown.
    pub kind: &'static str,
    pub outcomes: Vec<Outcome>,
    /// Why nothing could be matched; the message is then kept in the unmatched stream.
    pub kept: Option<String>,
}

/// What the inbound path needs.
pub struct Inbound<'a> {
    pub config: &'a Config,
    pub tokens: &'a TokenKey,
    pub rules: &'a Classifier,
}

/// Most unmatched messages kept (oldest trimmed first, exactly); older than
/// `inbound.unmatched_retention` they go too.
const UNMATCHED_MAXLEN: usize = 2_000;
/// Bytes kept of each unmatched message (its headers come first): with the cap above, the
/// stream never holds more than ~64 MiB, whatever strangers send.
const UNMATCHED_PREFIX: usize = 32 * 1024;

impl Inbound<'_> {
    /// Processes one raw message. `envelope_rcpt` is the SMTP RCPT TO when known (the VERP
    /// address); otherwise the report's own To/Delivered-To headers are read.
    pub async fn process(&self, conn: &mut Conn, raw: &[u8], envelope_rcpt: Option<&str>) -> StoreResult<Processed> {
        let report = match report::parse(raw) {
            Ok(r) => r,
            Err(reason) => return self.keep(conn, raw, "unparseable", &reason, "unknown").await,
        };
        let kind = if matches!(report.kind, Kind::Dsn(_)) { "dsn" } else { "arf" };
        let candidates = self.candidates(&report, envelope_rcpt);
        let mut outcomes = Vec::new();
        match &report.kind {
            Kind::Dsn(recipients) => {
                for d in recipients {
                    if let Some(who) = self.identify(&candidates, d.address.as_deref()) {
                        outcomes.extend(self.record_dsn(conn, &who, d).await?);
                    }
                }
            }
            Kind::Arf { feedback_type, original_rcpt } => {
                let stated = original_rcpt.clone().or_else(|| field(&report.original, "to").map(plain_address));
                if let Some(who) = self.identify(&candidates, stated.as_deref()) {
                    outcomes.extend(self.record_complaint(conn, &who, feedback_type).await?);
                }
            }
        }
        if outcomes.is_empty() {
            return self
                .keep(conn, raw, "unmatched", "no VERP address, trace header or Message-ID of a message we sent", kind)
                .await;
        }
        for o in &outcomes {
            metrics::counter!(m::INBOUND_REPORTS, "result" => o.event).increment(1);
        }
        Ok(Processed { kind, outcomes, kept: None })
    }

    /// Every way the report points at one of our messages, strongest first.
    fn candidates(&self, report: &Report, envelope_rcpt: Option<&str>) -> Vec<Candidate> {
        let mut out = Vec::new();
        if let Some(r) = field(&report.original, "x-sluice-ref").and_then(|t| self.tokens.open_reference(t.trim())) {
            out.push(Candidate::Signed(r));
        }
        let verp_sources = envelope_rcpt.into_iter().map(String::from).chain(
            ["to", "delivered-to", "x-original-to", "envelope-to"]
                .iter()
                .filter_map(|n| field(&report.headers, n))
                .map(plain_address),
        );
        for address in verp_sources {
            if let Some(v) = refs::parse_verp(&address) {
                out.push(Candidate::Verp(v));
            }
        }
        if let Some(id) = field(&report.original, "message-id") {
            out.push(Candidate::MessageId(id.trim().to_string()));
        }
        out
    }

    /// The recipient a report is about: a sealed reference names it; a VERP tag and a sealed
    /// Message-ID are bound to an address, and must be confirmed by the address the report
    /// states. Nothing else (a Message-ID built by hand, an address alone) names anyone.
    fn identify(&self, candidates: &[Candidate], stated: Option<&str>) -> Option<Recipient> {
        let stated = stated.map(|a| a.trim().to_ascii_lowercase()).filter(|a| a.contains('@'));
        for c in candidates {
            match c {
                Candidate::Signed(r) => {
                    let consistent =
                        stated.as_deref().is_none_or(|s| redacted(s) || s.eq_ignore_ascii_case(&r.address));
                    if consistent {
                        return Some(r.clone());
                    }
                }
                Candidate::Verp(v) => {
                    if let Some(s) = stated.as_deref().filter(|s| v.matches(self.tokens, s)) {
                        return Some(Recipient {
                            campaign: v.campaign.clone(),
                            index: v.index,
                            address: s.to_string(),
                        });
                    }
                }
                Candidate::MessageId(id) => {
                    let opened = stated.as_deref().and_then(|s| Some((s, refs::open_message_id(self.tokens, id, s)?)));
                    if let Some((s, (campaign, index))) = opened {
                        return Some(Recipient { campaign, index, address: s.to_string() });
                    }
                }
            }
        }
        None
    }

    async fn record_dsn(&self, conn: &mut Conn, who: &Recipient, d: &DsnRecipient) -> StoreResult<Option<Outcome>> {
        if d.action != "failed" {
            return Ok(Some(outcome(who, "ignored", None, false, false)));
        }
        let (code, text) = diagnostic_reply(d);
        let rule = self.rules.classify(code, d.status.as_deref(), &text);
        let suppress = rule.action == Action::BounceAndSuppress;
        let detail = json!({
            "async": true, "status": d.status, "diagnostic": d.diagnostic,
            "category": rule.category.as_str(), "rule": rule.name,
        });
        let reason = suppress.then_some("bounce");
        let recorded = self.record(conn, LateKind::Bounced, who, &detail, reason).await?;
        Ok(recorded.map(|r| outcome(who, "bounced", Some(rule.category.as_str()), suppress, r == Recorded::New)))
    }

    async fn record_complaint(
        &self,
        conn: &mut Conn,
        who: &Recipient,
        feedback_type: &str,
    ) -> StoreResult<Option<Outcome>> {
        // not-spam is a report that mail was wrongly filtered: recorded, nothing suppressed.
        let suppress = feedback_type != "not-spam";
        let detail = json!({"feedback_type": feedback_type});
        let reason = suppress.then_some("complaint");
        let recorded = self.record(conn, LateKind::Complained, who, &detail, reason).await?;
        if suppress && recorded == Some(Recorded::New) {
            late::count_complaint(conn, self.config, &who.campaign, &who.address).await?;
        }
        Ok(recorded.map(|r| outcome(who, "complained", None, suppress, r == Recorded::New)))
    }

    /// Records the event on its campaign, then suppresses the address if asked; None (nothing
    /// written) when the campaign is unknown, so a report about no campaign of ours changes
    /// nothing. A repeat suppresses again, which completes a report cut short between the two.
    async fn record(
        &self,
        conn: &mut Conn,
        kind: LateKind,
        who: &Recipient,
        detail: &serde_json::Value,
        suppress: Option<&str>,
    ) -> StoreResult<Option<Recorded>> {
        let maxlen = self.config.campaigns.events_maxlen;
        let recorded = late::record(conn, maxlen, kind, &who.campaign, who.index, &who.address, detail).await?;
        if recorded == Recorded::CampaignGone {
            return Ok(None);
        }
        if let Some(reason) = suppress {
            late::suppress(conn, kind, &who.campaign, &who.address, detail, reason).await?;
        }
        Ok(Some(recorded))
    }

    async fn keep(
        &self,
        conn: &mut Conn,
        raw: &[u8],
        result: &'static str,
        reason: &str,
        kind: &'static str,
    ) -> StoreResult<Processed> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let kept = &raw[..raw.len().min(UNMATCHED_PREFIX)];
        let oldest = chrono::Utc::now().timestamp_millis() - self.config.inbound.unmatched_retention.as_millis() as i64;
        redis::pipe()
            .cmd("XTRIM")
            .arg(keys::inbound_unmatched())
            .arg("MINID")
            .arg(oldest.max(0))
            .ignore()
            .cmd("XADD")
            .arg(keys::inbound_unmatched())
            .arg("MAXLEN")
            .arg(UNMATCHED_MAXLEN)
            .arg("*")
            .arg("reason")
            .arg(reason)
            .arg("received_at")
            .arg(now)
            .arg("size")
            .arg(raw.len())
            .arg("truncated")
            .arg(u8::from(kept.len() < raw.len()))
            .arg("raw")
            .arg(kept)
            .ignore()
            .query_async::<()>(conn)
            .await?;
        metrics::counter!(m::INBOUND_REPORTS, "result" => result).increment(1);
        tracing::warn!(result, reason, "inbound message kept in sluice:inbound:unmatched");
        Ok(Processed { kind, outcomes: Vec::new(), kept: Some(format!("{result}: {reason}")) })
    }
}

enum Candidate {
    Signed(Recipient),
    Verp(refs::Verp),
    /// The original Message-ID as the report quotes it.
    MessageId(String),
}

fn outcome(
    who: &Recipient,
    event: &'static str,
    category: Option<&'static str>,
    suppressed: bool,
    new: bool,
) -> Outcome {
    Outcome {
        campaign: who.campaign.clone(),
        index: who.index,
        recipient: who.address.clone(),
        event,
        category,
        suppressed,
        new,
    }
}

/// `Name <a@b>` or `<a@b>` -> `a@b`.
fn plain_address(value: &str) -> String {
    let v = value.trim();
    match (v.rfind('<'), v.rfind('>')) {
        (Some(s), Some(e)) if s < e => v[s + 1..e].trim().to_string(),
        _ => v.to_string(),
    }
}

/// Providers redact the recipient in complaints (`xxxxxxxx@...`, `redacted@...`).
fn redacted(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("");
    local.is_empty()
        || local.chars().all(|c| c == 'x' || c == 'X' || c == '*')
        || local.eq_ignore_ascii_case("redacted")
}

/// The reply code and text from a DSN's Diagnostic-Code, or a code made from its Status class.
fn diagnostic_reply(d: &DsnRecipient) -> (u16, String) {
    let diag = d.diagnostic.clone().unwrap_or_default();
    let code = diag.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
    match code {
        Some(c) => {
            let rest = diag[3..].trim_start_matches(['-', ' ']);
            let text = match &d.status {
                Some(s) => rest.strip_prefix(s.as_str()).unwrap_or(rest).trim().to_string(),
                None => rest.to_string(),
            };
            (c, text)
        }
        None => {
            let class = d.status.as_deref().and_then(|s| s.chars().next()).unwrap_or('5');
            (if class == '4' { 450 } else { 550 }, diag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_codes_give_the_reply_and_redacted_addresses_are_seen() {
        let d = DsnRecipient {
            address: None,
            action: "failed".into(),
            status: Some("5.1.1".into()),
            diagnostic: Some("550 5.1.1 <ann@x.example>: User unknown".into()),
        };
        assert_eq!(diagnostic_reply(&d), (550, "<ann@x.example>: User unknown".into()));
        let no_code =
            DsnRecipient { diagnostic: Some("X-Unix; mailbox full".into()), status: Some("4.2.2".into()), ..d };
        assert_eq!(diagnostic_reply(&no_code).0, 450);
        assert!(redacted("xxxxxxxx@x.example") && redacted("redacted@y.example") && !redacted("ann@x.example"));
        assert_eq!(plain_address("Shop <b+c=1=ab@d.example>"), "b+c=1=ab@d.example");
    }
}
