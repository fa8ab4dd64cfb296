//! `POST /v1/inbound`: one raw RFC 5322 message (a DSN or an ARF report) from whatever
//! receives the bounce domain's mail. `?rcpt=` passes the envelope recipient (the VERP
//! address) when the message's headers do not show it.

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, error::ApiError};
use crate::{field_error::FieldError, inbound::Inbound};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    rcpt: Option<String>,
}

#[utoipa::path(post, path = "/inbound", tag = "operations", params(Params),
    request_body(content = String, content_type = "message/rfc822", description = "A raw DSN or ARF report"),
    responses((status = 200, description = "Matched to messages we sent", body = Object), (status = 202, description = "Kept unmatched", body = Object)))]
pub async fn receive(
    State(state): State<AppState>,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.is_empty() {
        return Err(ApiError::Field(FieldError::invalid("body", "expected a raw RFC 5322 message")));
    }
    let Some(parts) = &state.inbound else {
        return Err(ApiError::Field(FieldError::invalid(
            "body",
            "inbound reports need a [public] section (its secret checks VERP addresses and references)",
        )));
    };
    let inbound = Inbound { config: &state.config, tokens: &parts.tokens, rules: &parts.rules };
    let mut conn = state.conn().await?;
    let processed = inbound.process(&mut conn, &body, params.rcpt.as_deref()).await?;
    // 202 when kept for a person to look at; 200 when recorded.
    let status = if processed.kept.is_some() { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(json!(processed))))
}
