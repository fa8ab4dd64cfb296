//! Everything sealed with the link secret for one recipient of one campaign, built in one
//! place: the one-click unsubscribe link, tracked HTML (click links and the open pixel), the
//! trace reference (`X-Sluice-Ref`) and the VERP envelope sender. Without `[public]` there is
//! no secret: no links, HTML untouched, the From address as envelope sender.

use sluice_shared::{
    config::{Config, PublicConfig},
    model::CampaignSpec,
    refs,
    tokens::TokenKey,
};

use crate::{message, tracking};

/// One recipient's links.
pub struct RecipientLinks<'a> {
    config: &'a Config,
    signing: Option<(&'a PublicConfig, &'a TokenKey)>,
    spec: &'a CampaignSpec,
    index: u64,
    address: &'a str,
    /// When the message is sent (seconds), sealed into tracking links.
    sent: i64,
    unsubscribe_url: Option<String>,
}

impl<'a> RecipientLinks<'a> {
    pub fn new(
        config: &'a Config,
        key: Option<&'a TokenKey>,
        spec: &'a CampaignSpec,
        index: u64,
        address: &'a str,
        sent: i64,
    ) -> RecipientLinks<'a> {
        let signing = config.public.as_ref().zip(key);
        let unsubscribe_url =
            signing.map(|(public, key)| format!("{}/u/{}", public.base_url, key.unsubscribe(&spec.id, index, address)));
        RecipientLinks { config, signing, spec, index, address, sent, unsubscribe_url }
    }

    /// The one-click unsubscribe link (also the `unsubscribe_url` template variable).
    pub fn unsubscribe_url(&self) -> Option<&str> {
        self.unsubscribe_url.as_deref()
    }

    /// The HTML with tracked links and the open pixel, as the campaign's `tracking` asks.
    /// Links to the public listener itself (unsubscribe) stay as they are.
    pub fn track(&self, html: &str) -> Result<String, String> {
        let Some((public, key)) = self.signing else { return Ok(html.to_string()) };
        let (base, tracking_asked) = (&public.base_url, &self.spec.tracking);
        let (id, index, address, sent) = (&self.spec.id, self.index, self.address, self.sent);
        let click = |url: &str| -> Option<String> {
            if url.starts_with(&format!("{base}/")) {
                return None;
            }
            key.click(id, index, address, sent, url).map(|t| format!("{base}/c/{t}"))
        };
        let pixel = tracking_asked.opens.then(|| format!("{base}/o/{}", key.open_pixel(id, index, address, sent)));
        let click: Option<tracking::ClickLink> = if tracking_asked.clicks { Some(&click) } else { None };
        tracking::rewrite(html, click, pixel.as_deref())
    }

    /// The signed trace reference for `X-Sluice-Ref`.
    pub fn reference(&self) -> Option<String> {
        self.signing.map(|(_, key)| key.reference(&self.spec.id, self.index, self.address))
    }

    /// What the message builder adds: List-Unsubscribe, the trace header, a sealed Message-ID.
    pub fn for_message<'r>(&'r self, reference: Option<&'r str>) -> message::Links<'r> {
        message::Links {
            unsubscribe: self.unsubscribe_url().map(|url| message::ListUnsubscribe {
                url,
                mailto: self.signing.and_then(|(public, _)| public.unsubscribe_mailto.as_deref()),
            }),
            reference,
            tokens: self.signing.map(|(_, key)| key),
        }
    }

    /// The envelope sender: a VERP address at `bounces.return_path_domain` when configured (or
    /// `b@` that domain when the VERP form would not fit), else the From address.
    pub fn return_path(&self) -> String {
        match (&self.config.bounces.return_path_domain, self.signing) {
            (Some(domain), Some((_, key))) => refs::verp_address(key, &self.spec.id, self.index, self.address, domain)
                .unwrap_or_else(|| format!("b@{domain}")),
            _ => self.spec.from.email.clone(),
        }
    }
}
