"""Verifies every DKIM signature of one message with dkimpy, an implementation no one here
wrote, answering its DNS queries from the command line instead of the network.

usage: dkim_verify.py MESSAGE_FILE NAME=TXT_RECORD...
prints one word per signature, top first: pass or fail."""
import sys

import dkim

message = open(sys.argv[1], "rb").read()
records = dict(arg.split("=", 1) for arg in sys.argv[2:])


def dns(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return records.get(name.rstrip("."), "").encode()


def verdict(checker, i):
    try:
        return "pass" if checker.verify(idx=i, dnsfunc=dns) else "fail"
    except dkim.ValidationError:
        return "fail"


signatures = sum(1 for line in message.split(b"\r\n") if line.lower().startswith(b"dkim-signature:"))
checker = dkim.DKIM(message)
print(" ".join(verdict(checker, i) for i in range(signatures)))
