//! One path for new campaigns, whether they come over HTTP or the intake stream.

use serde::Serialize;
use sluice_shared::redis::Conn;
use sluice_shared::{
    config::Config,
    model::{CampaignSpec, CampaignStatus},
    redis::StoreError,
};

use super::{
    request::{self, Rejection},
    store::{self, Created},
};
use crate::field_error::FieldError;

/// The answer to a campaign submission.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    pub id: String,
    pub status: CampaignStatus,
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
    /// True when this was a replay of an existing campaign (nothing new was written).
    #[serde(skip)]
    pub replay: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{}: {}", .0.field, .0.message)]
    Field(FieldError),
    #[error("campaign {0:?} already exists with a different body")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::template::ResolveError> for SubmitError {
    fn from(e: crate::template::ResolveError) -> Self {
        match e {
            crate::template::ResolveError::Field(f) => SubmitError::Field(f),
            crate::template::ResolveError::Store(s) => SubmitError::Store(s),
        }
    }
}

/// What a valid request still needs from this deployment: a DKIM key for its From domain
/// (unless `dkim.missing_key = "send"`), and the public listener if it asks for tracking.
pub fn check_against_config(spec: &CampaignSpec, config: &Config) -> Result<(), FieldError> {
    if !spec.tracking.is_off() && config.public.is_none() {
        return Err(FieldError::invalid(
            "tracking",
            "open and click tracking need the [public] listener (public.base_url) configured",
        ));
    }
    let from_domain = spec.from.email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if !config.dkim.allows(from_domain) {
        return Err(FieldError::invalid(
            "from.email",
            format!("no DKIM key is configured for {from_domain:?} and dkim.missing_key = \"refuse\""),
        ));
    }
    Ok(())
}

/// Validates and stores a campaign; rejected as a whole, it writes nothing.
pub async fn submit(
    conn: &mut Conn,
    config: &Config,
    body: &[u8],
    fallback_id: impl FnOnce() -> String,
    source: &'static str,
) -> Result<Submitted, SubmitError> {
    let mut value = request::decode(body).map_err(SubmitError::Field)?;
    crate::template::resolve(conn, &mut value).await?;
    let valid = request::parse_value(value, &config.campaigns, fallback_id).map_err(SubmitError::Field)?;
    check_against_config(&valid.spec, config).map_err(SubmitError::Field)?;
    let now = chrono::Utc::now().timestamp_millis();
    let created = store::create(conn, &valid, now).await?;
    let (status, replay) = match created {
        Created::New(s) => {
            metrics::counter!(sluice_shared::metrics::CAMPAIGNS_CREATED, "source" => source).increment(1);
            metrics::counter!(sluice_shared::metrics::INTAKE_RECIPIENTS, "result" => "accepted")
                .increment(valid.recipients.len() as u64);
            metrics::counter!(sluice_shared::metrics::INTAKE_RECIPIENTS, "result" => "rejected")
                .increment(valid.rejected.len() as u64);
            tracing::info!(campaign = %valid.spec.id, accepted = valid.recipients.len(), rejected = valid.rejected.len(), %s, source, "campaign created");
            (s, false)
        }
        Created::Replay(s) => (s, true),
        Created::Conflict => return Err(SubmitError::Conflict(valid.spec.id)),
    };
    Ok(Submitted { id: valid.spec.id, status, accepted: valid.recipients.len(), rejected: valid.rejected, replay })
}
