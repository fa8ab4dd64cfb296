//! Turns a campaign request (HTTP body or intake stream entry) into a validated spec plus the
//! recipients to stage, or a [`FieldError`] naming the field and the problem.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice_shared::{
    config::CampaignConfig,
    model::{CampaignSpec, Charset, Sender, Staged, TemplateRef, Tracking},
    validate,
};

use crate::field_error::{ErrorKind, FieldError};

/// One recipient that was not accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    pub index: usize,
    pub email: Option<String>,
    pub error: String,
}

/// The sender: an address and an optional display name.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SenderInput {
    #[schema(format = Email)]
    email: String,
    name: Option<String>,
}

/// A campaign request (`POST /v1/campaigns`); its schema in the OpenAPI document is derived
/// from this very struct.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// Idempotency: the same id and body again answers the first result; default: a new id.
    id: Option<String>,
    name: Option<String>,
    from: SenderInput,
    reply_to: Option<String>,
    /// A Handlebars template, like `html` and `text`.
    subject: String,
    html: Option<String>,
    text: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Up to 10,000 inline; more through `POST /v1/campaigns/{id}/recipients`.
    #[serde(default)]
    #[schema(value_type = Vec<RecipientInput>)]
    recipients: Vec<Value>,
    /// RFC 3339; a future time holds the campaign until then.
    #[schema(format = DateTime)]
    send_at: Option<String>,
    /// False makes a draft.
    #[serde(default = "yes")]
    start: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    #[serde(default)]
    #[schema(value_type = TrackingInput)]
    tracking: Tracking,
    /// A stored template's id, in place of subject, html and text (`template_version` picks
    /// a version); resolved before this struct is read (see `crate::template::resolve`).
    #[schema(value_type = Option<String>)]
    template: Option<TemplateRef>,
    /// With `template`: that version instead of the latest. Taken out by template resolution
    /// before this struct is read; declared so that the document lists it.
    #[allow(dead_code)]
    #[schema(minimum = 1)]
    template_version: Option<u64>,
    /// The mailing list this campaign belongs to (1-64 of `[A-Za-z0-9._-]`): its unsubscribe
    /// link unsubscribes from this list only, and only that list's unsubscribes skip recipients.
    list: Option<String>,
    /// `utf-8` or `iso-2022-jp` (subject, From name and text part; HTML stays UTF-8); default:
    /// the destination's profile (the Japanese carriers: iso-2022-jp), else utf-8.
    charset: Option<String>,
    /// The language of the unsubscribe page (`ja`, `en`, ...); default: the visitor's browser.
    locale: Option<String>,
    /// Send to addresses the sunset policy (`[hygiene]`) calls dormant too.
    #[serde(default)]
    include_dormant: bool,
}

/// Open and click tracking (`sluice_shared::model::Tracking`, as the document shows it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TrackingInput {
    #[schema(default = false)]
    opens: bool,
    #[schema(default = false)]
    clicks: bool,
}

fn yes() -> bool {
    true
}

/// One recipient: the address and the template variables for it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientInput {
    #[schema(format = Email)]
    email: String,
    #[schema(value_type = Option<Object>)]
    vars: Option<serde_json::Map<String, Value>>,
}

/// A campaign that passed validation.
#[derive(Debug)]
pub struct ValidCampaign {
    pub spec: CampaignSpec,
    /// Digest of the request body: the same id with another digest is a conflict.
    pub digest: String,
    pub start: bool,
    /// Recipients to stage, as JSON lines.
    pub recipients: Vec<String>,
    pub rejected: Vec<Rejection>,
}

fn field_of(path: &serde_path_to_error::Path, inner: &str) -> String {
    let p = path.to_string();
    // serde names a missing or unknown field only in its message: `missing field `from``.
    let named =
        inner.split('`').nth(1).filter(|_| inner.starts_with("missing field") || inner.starts_with("unknown field"));
    match (p.as_str(), named) {
        (".", Some(f)) => f.to_string(),
        (_, Some(f)) if !p.ends_with(f) => format!("{p}.{f}"),
        _ => p,
    }
}

/// Parses and validates a campaign. `fallback_id` is used when the request has no `id`.
#[cfg(test)]
pub fn parse(
    body: &[u8],
    limits: &CampaignConfig,
    fallback_id: impl FnOnce() -> String,
) -> Result<ValidCampaign, FieldError> {
    parse_value(decode(body)?, limits, fallback_id)
}

/// The request body as a JSON object.
pub fn decode(body: &[u8]) -> Result<Value, FieldError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| FieldError {
        field: "body".into(),
        message: format!("invalid JSON: {e}"),
        kind: ErrorKind::Malformed,
    })?;
    if !value.is_object() {
        return Err(FieldError {
            field: "body".into(),
            message: "must be a JSON object".into(),
            kind: ErrorKind::Malformed,
        });
    }
    Ok(value)
}

/// Validates a decoded campaign request (templates already resolved).
pub fn parse_value(
    value: Value,
    limits: &CampaignConfig,
    fallback_id: impl FnOnce() -> String,
) -> Result<ValidCampaign, FieldError> {
    let digest = hex::encode(Sha256::digest(value.to_string().as_bytes()));
    let input: CampaignInput = serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.inner().to_string();
        FieldError { field: field_of(e.path(), &inner), message: inner, kind: ErrorKind::Malformed }
    })?;
    validate_campaign(input, digest, limits, fallback_id)
}

fn validate_campaign(
    input: CampaignInput,
    digest: String,
    limits: &CampaignConfig,
    fallback_id: impl FnOnce() -> String,
) -> Result<ValidCampaign, FieldError> {
    let id = match input.id {
        Some(id) => {
            validate::campaign_id(&id).map_err(|m| FieldError::invalid("id", m))?;
            id
        }
        None => fallback_id(),
    };
    if let Some(name) = &input.name {
        validate::header_value(name).map_err(|m| FieldError::invalid("name", m))?;
    }
    let from_email = validate::email(&input.from.email).map_err(|m| FieldError::invalid("from.email", m))?;
    if let Some(name) = &input.from.name {
        validate::header_value(name).map_err(|m| FieldError::invalid("from.name", m))?;
    }
    let reply_to = match &input.reply_to {
        Some(r) => Some(validate::email(r).map_err(|m| FieldError::invalid("reply_to", m))?.address),
        None => None,
    };
    let (html, text) = check_content(&input.subject, input.html, input.text, "a campaign")?;
    for (name, value) in &input.headers {
        validate::header_name(name).map_err(|m| FieldError::invalid(format!("headers.{name}"), m))?;
        validate::header_value(value).map_err(|m| FieldError::invalid(format!("headers.{name}"), m))?;
    }
    check_size(&input.subject, html.as_deref(), text.as_deref(), &input.headers, limits)?;
    let send_at_ms = input.send_at.as_deref().map(send_at_ms).transpose()?;
    check_inline_count(input.recipients.len(), limits)?;
    check_tags(&input.tags)?;
    check_metadata(input.metadata.as_ref())?;
    if let Some(list) = &input.list {
        validate::list_name(list).map_err(|m| FieldError::invalid("list", m))?;
    }
    if let Some(locale) = &input.locale {
        validate::locale(locale).map_err(|m| FieldError::invalid("locale", m))?;
    }
    let charset = match &input.charset {
        Some(c) => {
            Some(Charset::parse(c).ok_or_else(|| FieldError::invalid("charset", "must be utf-8 or iso-2022-jp"))?)
        }
        None => None,
    };
    let mut batch = RecipientBatch::default();
    for (index, r) in input.recipients.into_iter().enumerate() {
        batch.add(index, r);
    }
    let spec = CampaignSpec {
        id,
        name: input.name,
        from: Sender { email: from_email.address, name: input.from.name },
        reply_to,
        subject: input.subject,
        html,
        text,
        headers: input.headers,
        send_at_ms,
        tags: input.tags,
        metadata: input.metadata,
        to: Vec::new(),
        template: input.template,
        tracking: input.tracking,
        mime: None,
        list: input.list,
        charset,
        locale: input.locale,
        include_dormant: input.include_dormant,
    };
    Ok(ValidCampaign { spec, digest, start: input.start, recipients: batch.accepted, rejected: batch.rejected })
}

/// Subject, body and headers within `campaigns.max_body_bytes`.
fn check_size(
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
    headers: &BTreeMap<String, String>,
    limits: &CampaignConfig,
) -> Result<(), FieldError> {
    let size = subject.len()
        + html.map_or(0, str::len)
        + text.map_or(0, str::len)
        + headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if size > limits.max_body_bytes {
        return Err(FieldError {
            field: if html.is_some() { "html".into() } else { "text".into() },
            message: format!(
                "subject, body and headers are {size} bytes; the limit (campaigns.max_body_bytes) is {}",
                limits.max_body_bytes
            ),
            kind: ErrorKind::TooLarge,
        });
    }
    Ok(())
}

fn send_at_ms(text: &str) -> Result<i64, FieldError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| FieldError::invalid("send_at", format!("{text:?} is not an RFC 3339 time: {e}")))
}

fn check_inline_count(count: usize, limits: &CampaignConfig) -> Result<(), FieldError> {
    if count > limits.max_inline_recipients {
        return Err(FieldError {
            field: "recipients".into(),
            message: format!(
                "{count} recipients inline; the limit is {} (upload more as NDJSON to /v1/campaigns/{{id}}/recipients)",
                limits.max_inline_recipients
            ),
            kind: ErrorKind::TooLarge,
        });
    }
    Ok(())
}

pub(crate) fn check_metadata(metadata: Option<&Value>) -> Result<(), FieldError> {
    let Some(m) = metadata else { return Ok(()) };
    if !m.is_object() {
        return Err(FieldError::invalid("metadata", "must be a JSON object"));
    }
    let size = m.to_string().len();
    if size > MAX_METADATA_BYTES {
        return Err(FieldError::invalid("metadata", format!("is {size} bytes; the limit is {MAX_METADATA_BYTES}")));
    }
    Ok(())
}

/// Largest `metadata` object (serialised): it is echoed in every event.
const MAX_METADATA_BYTES: usize = 4096;
const MAX_TAGS: usize = 10;

pub(crate) fn check_tags(tags: &[String]) -> Result<(), FieldError> {
    if tags.len() > MAX_TAGS {
        return Err(FieldError::invalid("tags", format!("{} tags; the limit is {MAX_TAGS}", tags.len())));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.len() > 64 || t.chars().any(char::is_control) {
            return Err(FieldError::invalid(
                format!("tags[{i}]"),
                "must be 1-64 characters without control characters",
            ));
        }
    }
    Ok(())
}

/// Subject and bodies as every path that takes content checks them: a non-empty one-line
/// subject, html or text (or both), each a valid handlebars template. Returns the bodies that
/// are not empty. `what` names the thing in the error ("a campaign", "a template").
pub fn check_content(
    subject: &str,
    html: Option<String>,
    text: Option<String>,
    what: &str,
) -> Result<(Option<String>, Option<String>), FieldError> {
    if subject.trim().is_empty() {
        return Err(FieldError::invalid("subject", "must not be empty"));
    }
    validate::header_value(subject).map_err(|m| FieldError::invalid("subject", m))?;
    let html = html.filter(|h| !h.is_empty());
    let text = text.filter(|t| !t.is_empty());
    if html.is_none() && text.is_none() {
        return Err(FieldError::invalid("html", format!("{what} needs html or text (or both)")));
    }
    check_template("subject", subject)?;
    for (field, source) in [("html", &html), ("text", &text)] {
        if let Some(source) = source {
            check_template(field, source)?;
        }
    }
    Ok((html, text))
}

fn check_template(field: &str, source: &str) -> Result<(), FieldError> {
    sluice_shared::template::check(source).map(|_| ()).map_err(|e| FieldError::invalid(field, e))
}

/// Validates recipients one by one; a bad one rejects only itself. Duplicate addresses within
/// one batch are rejected so nobody gets two copies of the same campaign from one request.
#[derive(Default)]
pub struct RecipientBatch {
    pub accepted: Vec<String>,
    pub rejected: Vec<Rejection>,
    seen: HashMap<String, usize>,
}

impl RecipientBatch {
    pub fn add(&mut self, index: usize, value: Value) {
        let email_hint = value.get("email").and_then(Value::as_str).map(str::to_string);
        match check_recipient(value) {
            Ok(staged) => {
                let key = staged.recipient.to_ascii_lowercase();
                if let Some(first) = self.seen.get(&key) {
                    self.rejected.push(Rejection {
                        index,
                        email: email_hint,
                        error: format!("duplicate of recipient {first}"),
                    });
                    return;
                }
                self.seen.insert(key, index);
                self.accepted.push(serde_json::to_string(&staged).expect("staged recipient serialises"));
            }
            Err(error) => self.rejected.push(Rejection { index, email: email_hint, error }),
        }
    }
}

/// Validates one recipient object.
pub fn check_recipient(value: Value) -> Result<Staged, String> {
    let input: RecipientInput = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let email = validate::email(&input.email).map_err(|m| format!("email: {m}"))?;
    Ok(Staged { recipient: email.address, vars: input.vars.filter(|v| !v.is_empty()) })
}

#[cfg(test)]
mod tests;
