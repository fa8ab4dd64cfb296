//! Rendering: campaign content as workers need it, the spec and its compiled templates, loaded from
//! Redis once per campaign (specs never change after creation) and kept in a bounded cache.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use handlebars::Handlebars;
use sluice_shared::{
    keys,
    model::CampaignSpec,
    redis::{Conn, StoreError, StoreResult},
    template,
};

/// A campaign ready to render.
pub struct Campaign {
    pub spec: CampaignSpec,
    /// Creation time (ms), part of every Message-ID so ids never repeat across campaigns.
    pub created_ms: i64,
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
}

/// Subject and bodies rendered for one recipient.
#[derive(Debug)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

impl Campaign {
    /// Compiles the content under the rules of [`template::check`]: content stored before
    /// those rules fails here, with the reason, instead of reaching a render.
    pub fn compile(spec: CampaignSpec, created_ms: i64) -> Result<Campaign, String> {
        let mut html = template::registry(true);
        let mut plain = template::registry(false);
        if spec.mime.is_some() {
            // Submitted over SMTP: sent as given, nothing to render.
            return Ok(Campaign { spec, created_ms, html, plain });
        }
        plain.register_template("subject", template::check(&spec.subject).map_err(|e| format!("subject: {e}"))?);
        if let Some(t) = &spec.text {
            plain.register_template("text", template::check(t).map_err(|e| format!("text: {e}"))?);
        }
        if let Some(h) = &spec.html {
            html.register_template("html", template::check(h).map_err(|e| format!("html: {e}"))?);
        }
        Ok(Campaign { spec, created_ms, html, plain })
    }

    /// Renders for one recipient: `vars` plus `email` and, when the public listener is
    /// configured, `unsubscribe_url`. HTML escaping applies to html only. Each part is capped
    /// at `max_bytes`; line endings in the bodies become one kind (the message builder writes
    /// them as CRLF), and a subject with a control character other than tab is refused.
    pub fn render(
        &self,
        email: &str,
        vars_json: &str,
        unsubscribe_url: Option<&str>,
        max_bytes: usize,
    ) -> Result<Rendered, String> {
        let mut data = if vars_json.is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_str(vars_json).map_err(|e| format!("vars: {e}"))?
        };
        data.entry("email").or_insert_with(|| email.into());
        if let Some(url) = unsubscribe_url {
            data.insert("unsubscribe_url".into(), url.into());
        }
        let data = template::Data::new(serde_json::Value::Object(data));
        let subject =
            template::render(&self.plain, "subject", &data, max_bytes).map_err(|e| format!("subject: {e}"))?;
        match subject.chars().find(|c| c.is_control() && *c != '\t') {
            Some('\r' | '\n') => return Err("subject: rendered subject contains a line break".into()),
            Some(c) => {
                return Err(format!("subject: rendered subject contains the control character U+{:04X}", c as u32));
            }
            None => {}
        }
        let text = match self.spec.text {
            Some(_) => Some(template::render(&self.plain, "text", &data, max_bytes).map_err(|e| format!("text: {e}"))?),
            None => None,
        };
        let html = match self.spec.html {
            Some(_) => Some(template::render(&self.html, "html", &data, max_bytes).map_err(|e| format!("html: {e}"))?),
            None => None,
        };
        Ok(Rendered { subject, html: html.map(one_line_ending), text: text.map(one_line_ending) })
    }
}

/// Every CRLF and every bare CR becomes LF, which the message builder writes as CRLF: a bare
/// CR from a variable can then never put `<CR>.<CR><LF>` (SMTP smuggling) on the wire.
fn one_line_ending(body: String) -> String {
    if !body.contains('\r') {
        return body;
    }
    body.replace("\r\n", "\n").replace('\r', "\n")
}

/// Most campaigns kept compiled; beyond it the cache starts over (campaigns are few and large).
const CAPACITY: usize = 256;

/// Bytes of submitted MIME (up to `submission.max_message_bytes` each) the cache holds at
/// most; past it the cache starts over, so 256 large messages never pin gigabytes.
const MIME_BYTES: usize = 64 * 1024 * 1024;

/// Per-process cache of compiled campaigns.
#[derive(Default)]
pub struct CampaignCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    compiled: HashMap<String, Arc<Campaign>>,
    mime_bytes: usize,
}

impl CampaignCache {
    /// The compiled campaign, loading it on first use. `Ok(None)` if it no longer exists.
    pub async fn get(&self, conn: &mut Conn, id: &str) -> StoreResult<Option<Result<Arc<Campaign>, String>>> {
        if let Some(c) = self.entries.lock().unwrap().compiled.get(id) {
            return Ok(Some(Ok(c.clone())));
        }
        let (spec, created): (Option<String>, Option<i64>) =
            redis::cmd("HMGET").arg(keys::campaign_meta(id)).arg(&["spec", "created_at"]).query_async(conn).await?;
        let Some(spec) = spec else { return Ok(None) };
        let spec: CampaignSpec =
            serde_json::from_str(&spec).map_err(|e| StoreError::Reply(format!("campaign spec: {e}")))?;
        let compiled = match Campaign::compile(spec, created.unwrap_or(0)) {
            Ok(c) => Arc::new(c),
            Err(e) => return Ok(Some(Err(e))),
        };
        let mime = compiled.spec.mime.as_ref().map_or(0, Vec::len);
        let mut entries = self.entries.lock().unwrap();
        if entries.compiled.len() >= CAPACITY || entries.mime_bytes + mime > MIME_BYTES {
            *entries = Entries::default();
        }
        entries.mime_bytes += mime;
        entries.compiled.insert(id.to_string(), compiled.clone());
        Ok(Some(Ok(compiled)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::model::Sender;

    const MAX: usize = 1 << 20;

    fn spec(subject: &str, html: Option<&str>, text: Option<&str>) -> CampaignSpec {
        CampaignSpec {
            id: "c".into(),
            name: None,
            from: Sender { email: "a@b.example".into(), name: None },
            reply_to: None,
            subject: subject.into(),
            html: html.map(Into::into),
            text: text.map(Into::into),
            headers: Default::default(),
            send_at_ms: None,
            ..Default::default()
        }
    }

    #[test]
    fn html_is_escaped_but_subject_and_text_are_not() {
        let c = Campaign::compile(spec("Hi {{name}}", Some("<p>{{name}}</p>"), Some("Hi {{name}} <{{email}}>")), 1)
            .unwrap();
        let r = c.render("x@y.example", r#"{"name":"Tom & <Jerry>"}"#, None, MAX).unwrap();
        assert_eq!(r.subject, "Hi Tom & <Jerry>");
        assert_eq!(r.html.unwrap(), "<p>Tom &amp; &lt;Jerry&gt;</p>");
        assert_eq!(r.text.unwrap(), "Hi Tom & <Jerry> <x@y.example>");
    }

    #[test]
    fn the_unsubscribe_url_is_a_template_variable() {
        let c = Campaign::compile(spec("s", Some("<a href=\"{{unsubscribe_url}}\">stop</a>"), None), 1).unwrap();
        let r = c.render("x@y.example", "", Some("https://m.example/u/abc"), MAX).unwrap();
        assert_eq!(r.html.unwrap(), "<a href=\"https://m.example/u/abc\">stop</a>");
        assert!(c.render("x@y.example", "", None, MAX).unwrap_err().contains("unsubscribe_url"));
    }

    #[test]
    fn a_missing_variable_is_a_clear_error() {
        let c = Campaign::compile(spec("Hi {{name}}", None, Some("x")), 1).unwrap();
        let err = c.render("x@y.example", "", None, MAX).unwrap_err();
        assert!(err.starts_with("subject:") && err.contains("name"), "{err}");
    }

    #[test]
    fn a_rendered_line_break_in_the_subject_is_refused() {
        let c = Campaign::compile(spec("Hi {{name}}", None, Some("x")), 1).unwrap();
        assert!(
            c.render("x@y.example", r#"{"name":"a\r\nBcc: v@x.example"}"#, None, MAX)
                .unwrap_err()
                .contains("line break")
        );
    }

    #[test]
    fn bare_carriage_returns_and_control_characters_never_pass() {
        let c = Campaign::compile(spec("Hi {{name}}", Some("<p>{{name}}</p>"), Some("Hi {{name}}")), 1).unwrap();
        let smuggle = r#"{"name":"x\r.\r\nMAIL FROM:<ceo@bank.example>\r\n"}"#;
        let err = c.render("x@y.example", smuggle, None, MAX).unwrap_err();
        assert!(err.contains("line break"), "{err}");
        let c = Campaign::compile(spec("Hi", Some("<p>{{name}}</p>"), Some("Hi {{name}}")), 1).unwrap();
        let r = c.render("x@y.example", smuggle, None, MAX).unwrap();
        assert_eq!(r.text.unwrap(), "Hi x\n.\nMAIL FROM:<ceo@bank.example>\n");
        assert!(!r.html.unwrap().contains('\r'));
        let c = Campaign::compile(spec("Hi {{name}}", None, Some("x")), 1).unwrap();
        for bad in [r#"{"name":"a\u0000b"}"#, r#"{"name":"a\u001b[31m"}"#] {
            assert!(c.render("x@y.example", bad, None, MAX).unwrap_err().contains("control character"), "{bad}");
        }
        assert!(c.render("x@y.example", r#"{"name":"a\tb"}"#, None, MAX).is_ok(), "tab is allowed");
    }

    #[test]
    fn content_stored_before_the_template_rules_fails_to_compile() {
        let err = Campaign::compile(spec("s", None, Some("{{> footer}}")), 1).err().unwrap();
        assert!(err.starts_with("text: partials"), "{err}");
    }
}
