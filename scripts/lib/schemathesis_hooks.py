"""Loaded by scripts/api-fuzz.sh (SCHEMATHESIS_HOOKS): the admin API's two raw bodies, an
NDJSON upload and an RFC 5322 report, are sent as the text schemathesis generates."""
import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schemathesis.serializer.alias("message/rfc822", "text/plain")
