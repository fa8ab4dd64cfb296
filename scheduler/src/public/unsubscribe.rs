//! RFC 8058 one-click unsubscribe. `POST /u/{token}` with `List-Unsubscribe=One-Click`
//! (form-urlencoded or multipart) unsubscribes the address and answers 200: no redirect, no
//! cookie, no login. `GET /u/{token}` shows a page whose buttons make that same POST, so link
//! scanners that fetch URLs never unsubscribe anyone. The pages speak the campaign's language
//! (English or Japanese, [`super::unsubscribe_text`]) and name the sender.

use crate::late::{self, LateKind, PageFacts, Recorded};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::json;
use sluice_shared::tokens::Recipient;

use super::{
    PublicState,
    unsubscribe_text::{self, Words},
};

fn html_page(status: StatusCode, words: &Words, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>{title}</title></head><body style=\"font-family:sans-serif;\
         max-width:32em;margin:4em auto\"><h1>{title}</h1>{body}</body></html>",
        words.lang
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn invalid_link(words: &Words) -> Response {
    html_page(StatusCode::BAD_REQUEST, words, words.invalid_title, &format!("<p>{}</p>", words.invalid))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
}

/// The campaign's facts (None once it expired) and the words to use.
async fn facts(
    state: &PublicState,
    campaign: &str,
    headers: &HeaderMap,
) -> anyhow::Result<(Option<PageFacts>, &'static Words)> {
    let mut conn = state.pool.get().await?;
    let facts = late::page_facts(&mut conn, campaign).await?;
    let words = unsubscribe_text::words(facts.as_ref().and_then(|f| f.locale.as_deref()), accept_language(headers));
    Ok((facts, words))
}

/// The human page, in the campaign's language: who sends, to whom, and a button; two when the
/// campaign is on a list (that list, or everything from this sender).
pub async fn confirm_page(State(state): State<PublicState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let Some(u) = state.tokens.open_unsubscribe(&token) else {
        return invalid_link(unsubscribe_text::words(None, accept_language(&headers)));
    };
    let (facts, words) = match facts(&state, &u.campaign, &headers).await {
        Ok(found) => found,
        Err(e) => return unavailable(e, unsubscribe_text::words(None, accept_language(&headers))),
    };
    let sender = escape(facts.as_ref().map_or(words.unknown_sender, |f| f.sender.as_str()));
    let button = |scope: &str, label: &str| {
        format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <input type=\"hidden\" name=\"scope\" value=\"{scope}\"><button type=\"submit\" id=\"{scope}\">{label}</button></form>"
        )
    };
    let buttons = match facts.as_ref().and_then(|f| f.list.as_deref()) {
        Some(list) => format!(
            "{}{}",
            button("list", &(words.this_list)(&escape(list))),
            button("everything", &(words.everything)(&sender))
        ),
        None => button("everything", words.only_button),
    };
    let ask = (words.ask)(&sender, &escape(&u.address));
    html_page(StatusCode::OK, words, words.title, &format!("<p>{ask}</p>{buttons}"))
}

/// The one-click POST (from a mailbox provider, or the page's buttons). A provider's POST
/// unsubscribes from the campaign's list when it has one, as its List-Unsubscribe promises;
/// the page may ask for everything from the sender (`scope=everything`).
pub async fn one_click(
    State(state): State<PublicState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(u) = state.tokens.open_unsubscribe(&token) else {
        return invalid_link(unsubscribe_text::words(None, accept_language(&headers)));
    };
    let (facts, words) = match facts(&state, &u.campaign, &headers).await {
        Ok(found) => found,
        Err(e) => return unavailable(e, unsubscribe_text::words(None, accept_language(&headers))),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !asks_one_click(content_type, &body) {
        return html_page(StatusCode::BAD_REQUEST, words, words.title, &format!("<p>{}</p>", words.no_one_click));
    }
    let list = facts.as_ref().and_then(|f| f.list.clone()).filter(|_| !asks_everything(&body));
    let (address, sender) =
        (escape(&u.address), escape(facts.as_ref().map_or(words.unknown_sender, |f| f.sender.as_str())));
    match record(&state, &u, list.as_deref()).await {
        Ok(()) => {
            let said = match &list {
                Some(l) => (words.left_list)(&address, &escape(l), &sender),
                None => (words.left_everything)(&address, &sender),
            };
            html_page(StatusCode::OK, words, words.done_title, &format!("<p>{said}</p>"))
        }
        Err(e) => unavailable(e, words),
    }
}

fn unavailable(e: anyhow::Error, words: &Words) -> Response {
    tracing::error!(error = %e, "unsubscribe could not be read or recorded");
    html_page(StatusCode::SERVICE_UNAVAILABLE, words, words.retry_title, &format!("<p>{}</p>", words.retry))
}

/// Unsubscribes the address (a genuine link works even after its campaign expired, then from
/// every campaign) from `list`, or every campaign; then records the unsubscribe once on its
/// campaign.
async fn record(state: &PublicState, u: &Recipient, list: Option<&str>) -> anyhow::Result<()> {
    let mut conn = state.pool.get().await?;
    let detail = match list {
        Some(name) => json!({"method": "one-click", "list": name}),
        None => json!({"method": "one-click"}),
    };
    let maxlen = state.config.campaigns.events_maxlen;
    let kind = LateKind::Unsubscribed;
    late::unsubscribe(&mut conn, &u.campaign, &u.address, list, &detail).await?;
    let recorded = late::record(&mut conn, maxlen, kind, &u.campaign, u.index, &u.address, &detail).await?;
    if recorded == Recorded::New {
        metrics::counter!(sluice_shared::metrics::UNSUBSCRIBES).increment(1);
        tracing::info!(campaign = %u.campaign, index = u.index, "recipient unsubscribed");
    }
    Ok(())
}

/// Whether the page's form asked to leave every campaign rather than the campaign's list.
fn asks_everything(body: &[u8]) -> bool {
    form_urlencoded::parse(body).any(|(k, v)| k == "scope" && v == "everything")
}

/// Whether the body says `List-Unsubscribe=One-Click`, as form-urlencoded or multipart.
fn asks_one_click(content_type: &str, body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else { return false };
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "multipart/form-data" {
        let Some(boundary) = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"'))
        else {
            return false;
        };
        return text.split(&format!("--{boundary}")).any(|part| {
            let Some((head, value)) = part.split_once("\r\n\r\n") else { return false };
            let named = head.to_ascii_lowercase().contains("name=\"list-unsubscribe\"");
            named && value.trim_end_matches("\r\n").trim() == "One-Click"
        });
    }
    form_urlencoded::parse(text.trim().as_bytes()).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_click_bodies_in_both_encodings() {
        assert!(asks_one_click("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"));
        assert!(asks_one_click("", b"List-Unsubscribe=One-Click\r\n"));
        assert!(asks_one_click("application/x-www-form-urlencoded", b"a=b&List-Unsubscribe=One%2DClick"));
        let multipart =
            "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(asks_one_click("multipart/form-data; boundary=XyZ", multipart.as_bytes()));
        assert!(asks_one_click("multipart/form-data; boundary=\"XyZ\"", multipart.as_bytes()));
        assert!(!asks_one_click("application/x-www-form-urlencoded", b"List-Unsubscribe=Maybe"));
        assert!(!asks_one_click("application/x-www-form-urlencoded", b""));
        assert!(!asks_one_click("multipart/form-data", multipart.as_bytes()), "no boundary");
    }
}
