//! Open and click tracking, for campaigns and messages that ask for it: the rendered HTML is
//! rewritten with a streaming HTML rewriter (lol_html), not regexes. Every http(s) link
//! becomes a signed click link carrying its original URL (so the redirect can only go where
//! the message pointed); the unsubscribe link stays direct; an invisible pixel goes at the
//! end of the body. The text part is left as it is, with its links working.

use lol_html::{RewriteStrSettings, element, html_content::ContentType, rewrite_str};

/// Gives the tracked link for a URL, or None to leave it.
pub type ClickLink<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Rewrites `html`: `click(url)` gives the tracked link for a URL (None: leave it), `pixel` the
/// open pixel's URL.
pub fn rewrite(html: &str, click: Option<ClickLink<'_>>, pixel: Option<&str>) -> Result<String, String> {
    let img = pixel.map(|url| {
        format!(r#"<img src="{url}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">"#)
    });
    let mut in_body = false;
    let mut handlers = Vec::new();
    if let Some(click) = click {
        handlers.push(element!("a[href]", move |el| {
            let href = el.get_attribute("href").unwrap_or_default();
            let url = decode_entities(href.trim());
            let lower = url.to_ascii_lowercase();
            if (lower.starts_with("http://") || lower.starts_with("https://"))
                && let Some(tracked) = click(&url)
            {
                el.set_attribute("href", &tracked)?;
            }
            Ok(())
        }));
    }
    if let Some(img) = &img {
        handlers.push(element!("body", |el| {
            in_body = true;
            el.append(img, ContentType::Html);
            Ok(())
        }));
    }
    if handlers.is_empty() {
        return Ok(html.to_string());
    }
    let mut out = rewrite_str(html, RewriteStrSettings { element_content_handlers: handlers, ..Default::default() })
        .map_err(|e| format!("html: {e}"))?;
    if let (Some(img), false) = (&img, in_body) {
        out.push_str(img);
    }
    Ok(out)
}

/// The few entities that appear in URLs in attributes (`&amp;` above all).
fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_wrapped_and_the_pixel_ends_the_body() {
        let html = r#"<html><body><a href="https://shop.example/a?x=1&amp;y=2">A</a> <a href="mailto:x@y">m</a>
            <a href="https://t.example/u/keep">unsub</a><p>end</p></body></html>"#;
        let click = |url: &str| (!url.contains("/u/")).then(|| format!("https://t.example/c/[{url}]"));
        let out = rewrite(html, Some(&click), Some("https://t.example/o/tok")).unwrap();
        assert!(out.contains(r#"href="https://t.example/c/[https://shop.example/a?x=1&y=2]""#), "{out}");
        assert!(out.contains(r#"href="mailto:x@y""#) && out.contains(r#"href="https://t.example/u/keep""#));
        assert!(out.contains(r#"<p>end</p><img src="https://t.example/o/tok""#), "{out}");
        assert!(out.ends_with("</body></html>"));
    }

    #[test]
    fn a_fragment_without_body_gets_the_pixel_at_the_end() {
        let out = rewrite("<p>hi</p>", None, Some("https://t.example/o/t")).unwrap();
        assert!(out.starts_with("<p>hi</p><img"), "{out}");
        assert_eq!(rewrite("<p>hi</p>", None, None).unwrap(), "<p>hi</p>");
    }
}
