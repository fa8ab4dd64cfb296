//! Transactional messages: one request, one to a few recipients, sent on the priority lane.
//! A message is stored like a campaign under its own `msg_` id (spec, counters, recipient
//! states, retries, events), so every delivery rule is the campaigns' own; the schedulers look
//! after it through the due index (`sluice:messages:due`) rather than the active campaigns.

pub mod idempotency;
pub mod request;
pub mod view;
pub mod watch;

use serde::Serialize;
use sluice_shared::{config::Config, keys, redis::Conn};

use crate::{
    campaign::{
        request as campaign_request,
        store::{self, Created},
        submit::{SubmitError, check_against_config},
    },
    field_error::FieldError,
    pipeline::{enqueue::Enqueuer, expander},
};

/// How long after acceptance a scheduler checks a message that nothing nudged (it also
/// repairs a message whose acceptance stopped before its jobs were queued).
pub const CHECK_AFTER_MS: i64 = 5_000;

/// The answer to `POST /v1/messages`.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub id: String,
    pub recipients: usize,
}

/// A new message id: `msg_` and a time-ordered UUID.
pub fn new_id() -> String {
    format!("{}{}", sluice_shared::lane::MESSAGE_PREFIX, uuid::Uuid::now_v7().simple())
}

/// Validates, stores and queues message `id`. Safe to repeat with the same id and body: the
/// store recognises the replay and the queueing is a compare-and-set, so nothing goes twice.
pub async fn send(
    conn: &mut Conn,
    config: &Config,
    enqueuer: &Enqueuer,
    body: &[u8],
    id: &str,
) -> Result<Accepted, SubmitError> {
    let value = campaign_request::decode(body).map_err(SubmitError::Field)?;
    let (mut value, to) = request::to_campaign(value, config.messages.max_recipients).map_err(SubmitError::Field)?;
    crate::template::resolve(conn, &mut value).await?;
    let mut valid = campaign_request::parse_value(value, &config.campaigns, || id.to_string())
        .map_err(|e| SubmitError::Field(rename_campaign_field(e)))?;
    if let Some(r) = valid.rejected.first() {
        return Err(SubmitError::Field(FieldError::invalid(format!("to[{}]", r.index), r.error.clone())));
    }
    check_against_config(&valid.spec, config).map_err(SubmitError::Field)?;
    valid.spec.to = to;
    queue(conn, config, enqueuer, &valid).await?;
    Ok(Accepted { id: id.to_string(), recipients: valid.spec.to.len() })
}

/// Stores a validated message under its id and queues its jobs. Safe to repeat with the same
/// message: the store recognises the replay and the queueing is a compare-and-set.
pub async fn queue(
    conn: &mut Conn,
    config: &Config,
    enqueuer: &Enqueuer,
    valid: &crate::campaign::request::ValidCampaign,
) -> Result<(), SubmitError> {
    let id = valid.spec.id.as_str();
    let now = chrono::Utc::now().timestamp_millis();
    // Indexed first: whatever happens next, a scheduler comes to finish the job.
    redis::cmd("ZADD")
        .arg(keys::messages_due())
        .arg("NX")
        .arg(now + CHECK_AFTER_MS)
        .arg(id)
        .query_async::<()>(conn)
        .await
        .map_err(|e| SubmitError::Store(e.into()))?;
    match store::create(conn, valid, now).await? {
        Created::New(_) | Created::Replay(_) => {}
        Created::Conflict => return Err(SubmitError::Conflict(id.to_string())),
    }
    expander::expand_chunk(conn, enqueuer, config, id).await?;
    metrics::counter!(sluice_shared::metrics::MESSAGES_ACCEPTED).increment(1);
    Ok(())
}

/// Campaign field names that mean something else in a message request.
fn rename_campaign_field(mut e: FieldError) -> FieldError {
    if let Some(rest) = e.field.strip_prefix("recipients") {
        e.field = format!("to{rest}");
    }
    e
}
