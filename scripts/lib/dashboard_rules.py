"""Prints every PromQL query of the Grafana dashboards in a folder as Prometheus recording
rules, so that `promtool check rules` validates them. Grafana's interval variables are replaced
by a fixed window first. Dashboards on the PostgreSQL history (SQL targets) are left out: their
queries run against a real PostgreSQL in e2e/tests/history/dashboard.rs.

usage: dashboard_rules.py DASHBOARD_DIR > rules.yml"""
import json
import pathlib
import sys

lines = ["groups:"]
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    dashboard = json.loads(path.read_text())
    promql = [t for p in dashboard.get("panels", []) for t in p.get("targets", []) if "expr" in t]
    if not promql and any("rawSql" in t for p in dashboard.get("panels", []) for t in p.get("targets", [])):
        continue
    lines.append(f"  - name: {path.stem}")
    lines.append("    rules:")
    n = 0
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var in ("$__rate_interval", "$__interval", "$__range"):
                expr = expr.replace(var, "5m")
            n += 1
            lines.append(f"      - record: dashboard_{path.stem}_query_{n}")
            lines.append(f"        expr: {json.dumps(expr)}")
    if n == 0:
        sys.exit(f"{path}: no queries")
print("\n".join(lines))
