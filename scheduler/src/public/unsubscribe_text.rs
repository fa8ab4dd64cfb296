//! What the unsubscribe page says, in the languages built in: English and Japanese. Each text
//! takes its values already HTML-escaped. The language is the campaign's `locale`, else the
//! visitor's `Accept-Language`, else English.

/// The page's words in one language.
pub struct Words {
    pub lang: &'static str,
    pub title: &'static str,
    pub done_title: &'static str,
    pub invalid_title: &'static str,
    pub invalid: &'static str,
    pub retry_title: &'static str,
    pub retry: &'static str,
    pub no_one_click: &'static str,
    /// "Stop mail from SENDER to ADDRESS?"
    pub ask: fn(sender: &str, address: &str) -> String,
    pub this_list: fn(list: &str) -> String,
    pub everything: fn(sender: &str) -> String,
    pub only_button: &'static str,
    /// The sender's name when the campaign is gone (its link still unsubscribes).
    pub unknown_sender: &'static str,
    pub left_list: fn(address: &str, list: &str, sender: &str) -> String,
    pub left_everything: fn(address: &str, sender: &str) -> String,
}

pub const ENGLISH: Words = Words {
    lang: "en",
    title: "Unsubscribe",
    done_title: "Unsubscribed",
    invalid_title: "Invalid link",
    invalid: "This unsubscribe link is not valid. Please use the link from the message as it arrived.",
    retry_title: "Please try again",
    retry: "We could not record this right now.",
    no_one_click: "The request must carry <code>List-Unsubscribe=One-Click</code> (RFC 8058).",
    ask: |sender, address| format!("Stop mail from <b>{sender}</b> to <b>{address}</b>?"),
    this_list: |list| format!("Unsubscribe from {list}"),
    everything: |sender| format!("Unsubscribe from everything from {sender}"),
    only_button: "Unsubscribe",
    unknown_sender: "us",
    left_list: |address, list, sender| format!("<b>{address}</b> will receive no more {list} mail from {sender}."),
    left_everything: |address, sender| format!("<b>{address}</b> will receive no more campaigns from {sender}."),
};

pub const JAPANESE: Words = Words {
    lang: "ja",
    title: "配信停止",
    done_title: "配信を停止しました",
    invalid_title: "無効なリンク",
    invalid: "この配信停止リンクは無効です。届いたメールのリンクをそのままお使いください。",
    retry_title: "もう一度お試しください",
    retry: "ただいま受け付けることができませんでした。",
    no_one_click: "リクエストには <code>List-Unsubscribe=One-Click</code> が必要です（RFC 8058）。",
    ask: |sender, address| format!("<b>{sender}</b>から<b>{address}</b>へのメール配信を停止しますか？"),
    this_list: |list| format!("{list}の配信を停止する"),
    everything: |sender| format!("{sender}からのすべての配信を停止する"),
    only_button: "配信を停止する",
    unknown_sender: "配信元",
    left_list: |address, list, sender| format!("<b>{address}</b>への{sender}からの{list}の配信を停止しました。"),
    left_everything: |address, sender| {
        format!("<b>{address}</b>への{sender}からのキャンペーンメールの配信を停止しました。")
    },
};

/// The words for `locale` (a campaign's), else the first language of `accept_language` that is
/// built in, else English.
pub fn words(locale: Option<&str>, accept_language: Option<&str>) -> &'static Words {
    let built_in = |tag: &str| match tag.split(['-', '_']).next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "ja" => Some(&JAPANESE),
        "en" => Some(&ENGLISH),
        _ => None,
    };
    if let Some(words) = locale.and_then(built_in) {
        return words;
    }
    let mut offered: Vec<(f32, &str)> = accept_language
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse().ok()).unwrap_or(1.0);
            (!tag.is_empty()).then_some((q, tag))
        })
        .collect();
    offered.sort_by(|a, b| b.0.total_cmp(&a.0));
    offered.iter().find_map(|(_, tag)| built_in(tag)).unwrap_or(&ENGLISH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_campaign_locale_wins_then_the_browser_then_english() {
        assert_eq!(words(Some("ja"), Some("en-US")).lang, "ja");
        assert_eq!(words(Some("ja-JP"), None).lang, "ja");
        assert_eq!(words(None, Some("fr-FR, ja;q=0.8, en;q=0.5")).lang, "ja");
        assert_eq!(words(None, Some("en;q=0.4, ja;q=0.9")).lang, "ja");
        assert_eq!(words(Some("de"), Some("de-DE")).lang, "en");
        assert_eq!(words(None, None).lang, "en");
        assert_eq!(words(None, Some(";;,q=,")).lang, "en");
    }
}
