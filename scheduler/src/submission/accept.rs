//! A submitted message becomes a transactional message, exactly as if it came through
//! `POST /v1/messages`: stored in one step under a new `msg_` id with one recipient per
//! envelope recipient, then queued on the priority lane. The client's `Message-ID`, when it
//! set one, is its idempotency key: the same message submitted again within
//! `messages.idempotency_window` (a client that never saw our 250) is the same message.

use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_shared::model::{CampaignSpec, Sender};

use super::{Refusal, Submission, mime};
use crate::{
    api::auth::Principal,
    campaign::{
        request::{RecipientBatch, ValidCampaign},
        submit::SubmitError,
    },
    message::{
        self,
        idempotency::{self, Claim},
    },
};

/// Whose idempotency keys messages from `trusted_networks` (sent without AUTH) share.
const TRUSTED: &str = "smtp-trusted-networks";

/// Stores and queues the message `raw` for `recipients`; returns its id.
pub async fn accept(
    submission: &Submission,
    principal: Option<&Principal>,
    recipients: &[String],
    raw: &[u8],
) -> Result<String, Refusal> {
    let config = &submission.config;
    let prepared = mime::prepare(raw, chrono::Utc::now())?;
    let from_domain = prepared.from.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    if !config.dkim.allows(&from_domain) {
        return Err(Refusal::sender_domain("From:", &from_domain));
    }
    let mut conn = submission.pool.get().await.map_err(|e| Refusal::unavailable(&e))?;
    if let Some(p) = principal
        && let Some((text, _)) = p.over_send_rate(&mut conn).await.map_err(|e| Refusal::unavailable(&e))?
    {
        return Err(Refusal::rate_limited(text));
    }
    let mut digest = Sha256::new();
    digest.update(raw);
    recipients.iter().for_each(|r| digest.update(format!("\n{r}")));
    let digest = hex::encode(digest.finalize());
    let id = match &prepared.message_id {
        None => message::new_id(),
        Some(key) => {
            let owner = principal.map_or(TRUSTED, |p| p.id.as_str());
            let window = config.messages.idempotency_window.as_millis();
            match idempotency::claim(&mut conn, window, owner, key, &digest).await {
                Ok(Claim::First(id) | Claim::Replay(id)) => id,
                // The same Message-ID with other content: a new message after all.
                Ok(Claim::Conflict(_)) => message::new_id(),
                Err(e) => return Err(Refusal::unavailable(&e)),
            }
        }
    };
    let mut batch = RecipientBatch::default();
    for (index, r) in recipients.iter().enumerate() {
        batch.add(index, json!({ "email": r }));
    }
    if let Some(bad) = batch.rejected.first() {
        return Err(Refusal::content(format!("recipient {:?}: {}", bad.email.as_deref().unwrap_or(""), bad.error)));
    }
    let spec = CampaignSpec {
        id: id.clone(),
        from: Sender { email: prepared.from, name: prepared.from_name },
        subject: prepared.subject,
        tags: prepared.tags,
        metadata: prepared.metadata,
        to: recipients.to_vec(),
        mime: Some(prepared.mime),
        ..Default::default()
    };
    let valid = ValidCampaign { spec, digest, start: true, recipients: batch.accepted, rejected: Vec::new() };
    match message::queue(&mut conn, config, &submission.enqueuer, &valid).await {
        Ok(()) => Ok(id),
        Err(SubmitError::Field(e)) => Err(Refusal::content(format!("{}: {}", e.field, e.message))),
        Err(e) => Err(Refusal::unavailable(&e)),
    }
}
