//! ISO-2022-JP (RFC 1468) for campaigns that ask for it, or whose destination's profile does
//! (the Japanese carriers): the subject and the From display name as RFC 2047 encoded-words,
//! the text part as 7-bit JIS. Only JIS X 0208 proper is used: the vendor rows that
//! WHATWG's encoder also accepts (NEC's ①, ㈱ in row 13; IBM's 髙 in rows 89-92 and 115-119)
//! are not JIS X 0208 and older clients show them wrong, so a text holding one is sent as
//! UTF-8 instead (the caller records that it did).

use base64::{Engine, engine::general_purpose::STANDARD};

/// `text` in ISO-2022-JP, or the first character that keeps it from being so.
pub fn iso_2022_jp(text: &str) -> Result<Vec<u8>, char> {
    let (bytes, _, unmappable) = encoding_rs::ISO_2022_JP.encode(text);
    if unmappable {
        return Err(first_outside(text));
    }
    if !in_jis_x_0208(&bytes) || encoding_rs::ISO_2022_JP.decode_without_bom_handling(&bytes).0 != text {
        // Not JIS X 0208 proper, or changed on the way (half-width katakana become full-width).
        return Err(first_outside(text));
    }
    Ok(bytes.into_owned())
}

/// The first character of `text` that does not go through ISO-2022-JP unchanged.
fn first_outside(text: &str) -> char {
    let mut buf = [0u8; 4];
    text.chars()
        .find(|c| {
            let one: &str = c.encode_utf8(&mut buf);
            let (bytes, _, unmappable) = encoding_rs::ISO_2022_JP.encode(one);
            unmappable
                || !in_jis_x_0208(&bytes)
                || encoding_rs::ISO_2022_JP.decode_without_bom_handling(&bytes).0 != one
        })
        .unwrap_or('\u{fffd}')
}

/// Whether every two-byte character in `bytes` (after `ESC $ B` or `ESC $ @`) lies in the rows
/// JIS X 0208 assigns: 1-8 and 16-84.
fn in_jis_x_0208(bytes: &[u8]) -> bool {
    let (mut two_byte, mut i) = (false, 0);
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            two_byte = bytes.get(i + 1) == Some(&b'$');
            i += 3;
            continue;
        }
        if two_byte {
            let row = bytes[i].wrapping_sub(0x20);
            if !((1..=8).contains(&row) || (16..=84).contains(&row)) {
                return false;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    true
}

/// Encoded-word payloads are kept to this many bytes, so that a word stays within RFC 2047's
/// 75 characters (`=?ISO-2022-JP?B?` + base64 + `?=`).
const WORD_BYTES: usize = 42;

/// A header value (a subject, a display name) as RFC 2047 encoded-words in ISO-2022-JP,
/// folded between words; `text` itself when it is ASCII. Each word is whole: it starts and
/// ends in ASCII mode, split between characters.
pub fn header_words(text: &str) -> Result<String, char> {
    if text.is_ascii() {
        return Ok(text.to_string());
    }
    iso_2022_jp(text)?;
    let mut words = Vec::new();
    let mut start = 0;
    let mut fits = 0;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let (bytes, _, _) = encoding_rs::ISO_2022_JP.encode(&text[start..end]);
        if bytes.len() > WORD_BYTES && fits > start {
            words.push(word(&text[start..fits]));
            start = fits;
        }
        fits = end;
    }
    words.push(word(&text[start..]));
    Ok(words.join("\r\n "))
}

fn word(chunk: &str) -> String {
    let (bytes, _, _) = encoding_rs::ISO_2022_JP.encode(chunk);
    format!("=?ISO-2022-JP?B?{}?=", STANDARD.encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_text_goes_to_jis_and_back() {
        let text = "こんにちは、山田様。セールは本日からです。";
        let bytes = iso_2022_jp(text).unwrap();
        assert!(bytes.iter().all(|b| *b < 0x80) && bytes.starts_with(b"\x1b$B") && bytes.ends_with(b"\x1b(B"));
        assert_eq!(encoding_rs::ISO_2022_JP.decode_without_bom_handling(&bytes).0, text);
        assert_eq!(iso_2022_jp("plain ASCII").unwrap(), b"plain ASCII");
    }

    #[test]
    fn characters_outside_jis_x_0208_are_named() {
        assert_eq!(iso_2022_jp("会議は①から"), Err('①'));
        assert_eq!(iso_2022_jp("㈱ショップ"), Err('㈱'));
        assert_eq!(iso_2022_jp("髙橋様"), Err('髙'));
        assert_eq!(iso_2022_jp("ｶﾀｶﾅ"), Err('ｶ'), "half-width katakana would come back full-width");
        assert_eq!(iso_2022_jp("emoji 😀"), Err('😀'));
    }

    #[test]
    fn long_headers_become_whole_words_that_decode_to_the_text() {
        let subject = "【重要】お客様各位：年末年始の営業時間と配送スケジュールについてのお知らせ";
        let folded = header_words(subject).unwrap();
        let mut decoded = String::new();
        for word in folded.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
            let b64 = word.strip_prefix("=?ISO-2022-JP?B?").unwrap().strip_suffix("?=").unwrap();
            let bytes = STANDARD.decode(b64).unwrap();
            assert!(
                bytes.ends_with(b"\x1b(B") || bytes.is_ascii() && !bytes.contains(&0x1b),
                "each word ends in ASCII mode"
            );
            decoded.push_str(&encoding_rs::ISO_2022_JP.decode_without_bom_handling(&bytes).0);
        }
        assert_eq!(decoded, subject);
        assert_eq!(header_words("Sale").unwrap(), "Sale");
        assert_eq!(header_words("①のご案内"), Err('①'));
    }
}
