"""An SMTP submission client on Python's smtplib, driven by one JSON argument:

  {"port": 587, "mode": "starttls" | "tls" | "plain", "ca": "ca.pem",
   "user": "key id", "password": "token",                       (optional: AUTH PLAIN)
   "messages": [{"from": "...", "to": ["..."], "data": "...",
                 "signal": "file to create first", "wait": "file to wait for first"}]}

Prints, as JSON, every reply: {"ehlo": "...", "auth": [code, text],
"results": [{"mail": [code, text], "rcpt": [[code, text]...], "data": [code, text]}]}.
The server is verified against `ca` (a test CA made at test time).
"""

import json
import os
import smtplib
import ssl
import sys
import time

args = json.loads(sys.argv[1])
context = ssl.create_default_context(cafile=args["ca"])
if args["mode"] == "tls":
    s = smtplib.SMTP_SSL("127.0.0.1", args["port"], context=context, timeout=30)
else:
    s = smtplib.SMTP("127.0.0.1", args["port"], timeout=30)
s.ehlo("client.example")
out = {}
if args["mode"] == "starttls":
    code, text = s.starttls(context=context)
    out["starttls"] = [code, text.decode()]
    s.ehlo("client.example")
out["ehlo"] = s.ehlo_resp.decode()


def reply(pair):
    return [pair[0], pair[1].decode(errors="replace")]


if args.get("user"):
    try:
        s.user, s.password = args["user"], args["password"]
        out["auth"] = reply(s.auth("PLAIN", s.auth_plain))
    except smtplib.SMTPException as e:
        error = getattr(e, "smtp_error", str(e))
        out["auth"] = [getattr(e, "smtp_code", 0), error.decode() if isinstance(error, bytes) else error]

out["results"] = []
for m in args.get("messages", []):
    if m.get("signal"):
        open(m["signal"], "w").close()
    if m.get("wait"):
        deadline = time.time() + 60
        while not os.path.exists(m["wait"]) and time.time() < deadline:
            time.sleep(0.05)
    result = {"mail": reply(s.mail(m["from"], m.get("options", [])))}
    if result["mail"][0] == 250:
        result["rcpt"] = [reply(s.rcpt(t)) for t in m["to"]]
        if any(r[0] == 250 for r in result["rcpt"]):
            result["data"] = reply(s.data(m["data"].encode()))
    out["results"].append(result)
    if result.get("data", [0])[0] != 250:
        try:
            s.rset()
        except smtplib.SMTPServerDisconnected:
            break
try:
    s.quit()
except smtplib.SMTPServerDisconnected:
    pass
print(json.dumps(out))
