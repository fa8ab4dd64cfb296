//! Stored templates: subject, html and text kept under an id, versioned. Every `PUT` adds a
//! version; a campaign or message names a template (and optionally a version) instead of
//! carrying its content, and the content is copied into its spec at creation, so editing a
//! template never changes mail already accepted.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_shared::{
    keys,
    model::TemplateRef,
    redis::{Conn, StoreError, StoreResult, scripts::records},
    validate,
};

use crate::field_error::FieldError;

/// One version of a template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub created_at_ms: i64,
}

/// A template version's body (`PUT /v1/templates/{id}`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionInput {
    subject: String,
    html: Option<String>,
    text: Option<String>,
}

/// Checks a template body (`{subject, html?, text?}`) the way campaign content is checked.
pub fn parse(body: &[u8], max_bytes: usize) -> Result<Version, FieldError> {
    let input: VersionInput = serde_json::from_slice(body).map_err(|e| FieldError {
        field: "body".into(),
        message: format!("invalid template JSON: {e}"),
        kind: crate::field_error::ErrorKind::Malformed,
    })?;
    let (html, text) = crate::campaign::request::check_content(&input.subject, input.html, input.text, "a template")?;
    let size = input.subject.len() + html.as_ref().map_or(0, String::len) + text.as_ref().map_or(0, String::len);
    if size > max_bytes {
        return Err(FieldError::invalid("html", format!("template is {size} bytes; the limit is {max_bytes}")));
    }
    Ok(Version { subject: input.subject, html, text, version: 0, created_at_ms: 0 })
}

/// Stores `version` as the template's newest; returns its number.
pub async fn put(conn: &mut Conn, id: &str, version: &Version) -> StoreResult<u64> {
    let json = serde_json::to_string(version).expect("template serialises");
    let n = records::template_put(conn, id, &json).await?;
    let now = chrono::Utc::now().timestamp_millis();
    redis::cmd("ZADD").arg(keys::templates()).arg(now).arg(id).query_async::<()>(conn).await?;
    Ok(n)
}

/// A version of template `id` (the newest when `version` is None).
pub async fn get(conn: &mut Conn, id: &str, version: Option<u64>) -> StoreResult<Option<Version>> {
    let key = keys::template(id);
    let n = match version {
        Some(n) => n,
        None => match redis::cmd("HGET").arg(&key).arg("latest").query_async::<Option<u64>>(conn).await? {
            Some(n) => n,
            None => return Ok(None),
        },
    };
    let json: Option<String> = redis::cmd("HGET").arg(&key).arg(format!("v{n}")).query_async(conn).await?;
    json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Reply(format!("template {id}: {e}")))).transpose()
}

/// Deletes every version; true if the template existed.
pub async fn delete(conn: &mut Conn, id: &str) -> StoreResult<bool> {
    let (deleted, _): (i64, i64) =
        redis::pipe().del(keys::template(id)).zrem(keys::templates(), id).query_async(conn).await?;
    Ok(deleted == 1)
}

/// Template ids, most recently changed first, with their newest version number.
pub async fn list(conn: &mut Conn, limit: usize) -> StoreResult<Vec<(String, u64)>> {
    let ids: Vec<String> =
        redis::cmd("ZRANGE").arg(keys::templates()).arg(0).arg(limit as i64 - 1).arg("REV").query_async(conn).await?;
    if ids.is_empty() {
        // An empty pipeline is an error to Redis ("empty command"): there is nothing to ask.
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hget(keys::template(id), "latest");
    }
    let latest: Vec<Option<u64>> = pipe.query_async(conn).await?;
    Ok(ids.into_iter().zip(latest).filter_map(|(id, n)| Some((id, n?))).collect())
}

/// Replaces a request's `template` (an id string, or `{id, version}`) and optional
/// `template_version` by the stored content: `subject`, `html`, `text` and the resolved
/// `template: {id, version}`. A request that names a template may not carry its own content.
pub async fn resolve(conn: &mut Conn, request: &mut Value) -> Result<(), ResolveError> {
    let Some(object) = request.as_object_mut() else { return Ok(()) };
    let Some(named) = object.remove("template") else {
        if object.contains_key("template_version") {
            return Err(field("template_version", "needs `template`"));
        }
        return Ok(());
    };
    let (id, mut version) = match named {
        Value::String(id) => (id, None),
        Value::Object(o) => {
            let r: TemplateRef = serde_json::from_value(Value::Object(o))
                .map_err(|e| field("template", format!("must be an id or {{id, version}}: {e}")))?;
            (r.id, Some(r.version))
        }
        _ => return Err(field("template", "must be a template id")),
    };
    if let Some(v) = object.remove("template_version") {
        version =
            Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| field("template_version", "must be a positive integer"))?);
    }
    validate::template_id(&id).map_err(|m| field("template", m))?;
    if let Some(own) = ["subject", "html", "text"].into_iter().find(|k| object.contains_key(*k)) {
        return Err(field(own, "give either a template or subject/html/text, not both"));
    }
    let found = get(conn, &id, version).await.map_err(ResolveError::Store)?;
    let Some(t) = found else {
        let what = match version {
            Some(v) => format!("template {id:?} has no version {v}"),
            None => format!("no template {id:?}"),
        };
        return Err(field("template", what));
    };
    object.insert("subject".into(), t.subject.into());
    if let Some(h) = t.html {
        object.insert("html".into(), h.into());
    }
    if let Some(text) = t.text {
        object.insert("text".into(), text.into());
    }
    object.insert("template".into(), serde_json::json!({"id": id, "version": t.version}));
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{}: {}", .0.field, .0.message)]
    Field(FieldError),
    #[error(transparent)]
    Store(StoreError),
}

fn field(name: &str, message: impl Into<String>) -> ResolveError {
    ResolveError::Field(FieldError::invalid(name, message))
}
