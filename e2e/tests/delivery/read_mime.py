"""Reads one message the way a mail client does (Python's email package, default policy) and
prints what it shows as JSON: subject, From display name, the text part and its charset, the
HTML part's charset."""
import email
import email.policy
import json
import sys

msg = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
text = msg.get_body(preferencelist=("plain",))
html = msg.get_body(preferencelist=("html",))
print(json.dumps({
    "subject": str(msg["subject"]),
    "from_name": msg["from"].addresses[0].display_name,
    "text": text.get_content() if text is not None else None,
    "text_charset": text.get_content_charset() if text is not None else None,
    "html_charset": html.get_content_charset() if html is not None else None,
}, ensure_ascii=False))
