//! A transactional message request (`POST /v1/messages`) turned into the campaign request it
//! is stored as: one recipient per `to` address, each with the message's `vars`.

use serde_json::{Map, Value, json};
use sluice_shared::validate;

use crate::field_error::{ErrorKind, FieldError};

/// Fields a message request may carry.
const FIELDS: &[&str] = &[
    "from",
    "to",
    "reply_to",
    "subject",
    "html",
    "text",
    "template",
    "template_version",
    "vars",
    "headers",
    "tags",
    "metadata",
    "tracking",
    "charset",
    "locale",
];

/// The campaign request for a message (without an id: the caller supplies the message's),
/// and its normalised recipients.
pub fn to_campaign(value: Value, max_recipients: usize) -> Result<(Value, Vec<String>), FieldError> {
    let Value::Object(mut input) = value else {
        return Err(FieldError {
            field: "body".into(),
            message: "must be a JSON object".into(),
            kind: ErrorKind::Malformed,
        });
    };
    if let Some(unknown) = input.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(FieldError::invalid(
            unknown.clone(),
            format!("unknown field; expected one of {}", FIELDS.join(", ")),
        ));
    }
    let to = recipients(input.remove("to"), max_recipients)?;
    let vars = match input.remove("vars") {
        None | Some(Value::Null) => None,
        Some(Value::Object(v)) => Some(v),
        Some(_) => return Err(FieldError::invalid("vars", "must be a JSON object")),
    };
    if let Some(Value::String(email)) = input.get("from") {
        let email = email.clone();
        input.insert("from".into(), json!({"email": email}));
    }
    let list: Vec<Value> = to
        .iter()
        .map(|email| match &vars {
            Some(v) => json!({"email": email, "vars": v}),
            None => json!({"email": email}),
        })
        .collect();
    let mut campaign = Map::new();
    campaign.insert("recipients".into(), list.into());
    campaign.insert("start".into(), true.into());
    campaign.extend(input);
    Ok((Value::Object(campaign), to))
}

fn recipients(to: Option<Value>, max: usize) -> Result<Vec<String>, FieldError> {
    let list = match to {
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(a)) => a,
        None => return Err(FieldError::invalid("to", "missing: one address or a list of addresses")),
        Some(_) => return Err(FieldError::invalid("to", "must be an address or a list of addresses")),
    };
    if list.is_empty() || list.len() > max {
        return Err(FieldError::invalid("to", format!("needs 1-{max} addresses (messages.max_recipients)")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let field = format!("to[{i}]");
        let text = v.as_str().ok_or_else(|| FieldError::invalid(&field, "must be an address string"))?;
        let email = validate::email(text).map_err(|m| FieldError::invalid(&field, m))?.address;
        if let Some(first) = out.iter().position(|e| e.eq_ignore_ascii_case(&email)) {
            return Err(FieldError::invalid(field, format!("duplicate of to[{first}]")));
        }
        out.push(email);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_becomes_a_campaign_with_one_recipient_per_address() {
        let body = json!({"from": "shop@shop.example", "to": ["a@x.example", "B@Y.example"], "subject": "Hi",
            "text": "t", "vars": {"n": 1}});
        let (campaign, to) = to_campaign(body, 50).unwrap();
        assert_eq!(to, ["a@x.example", "B@y.example"]);
        assert_eq!(campaign["from"]["email"], "shop@shop.example");
        assert_eq!(campaign["recipients"][1]["vars"]["n"], 1);
        assert_eq!(campaign["start"], true);
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = |v: Value| to_campaign(v, 2).unwrap_err().field;
        assert_eq!(err(json!({"from": "a@b.example", "subject": "s"})), "to");
        assert_eq!(err(json!({"to": ["a@b.example", "nope"]})), "to[1]");
        assert_eq!(err(json!({"to": ["a@b.example", "A@b.example"]})), "to[1]");
        assert_eq!(err(json!({"to": ["a@b.example", "c@b.example", "d@b.example"]})), "to");
        assert_eq!(err(json!({"to": "a@b.example", "vars": [1]})), "vars");
        assert_eq!(err(json!({"to": "a@b.example", "send_at": "now"})), "send_at");
    }
}
