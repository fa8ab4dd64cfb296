"""Checks Sluice-Signature headers with Python's own hmac, independently of Sluice's code.

usage: webhook_verify.py SECRET DIR -- DIR holds N.sig (the header) and N.body (the raw body);
exits 1 naming the first request whose signature does not verify.
"""
import hashlib
import hmac
import pathlib
import sys

secret, folder = sys.argv[1].encode(), pathlib.Path(sys.argv[2])
checked = 0
for sig_file in sorted(folder.glob("*.sig")):
    header = sig_file.read_text().strip()
    parts = dict(p.split("=", 1) for p in header.split(","))
    body = sig_file.with_suffix(".body").read_bytes()
    expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts["v1"]):
        print(f"{sig_file.name}: signature does not verify")
        sys.exit(1)
    checked += 1
print(f"{checked} signatures verified")
