#!/bin/bash
# t_grafana: docs/grafana/airlock.json is a dashboard whose every query
# reads metrics a running airlock exports. The JSON parses, panel ids are
# unique, every query uses the dashboard's data source; every metric name
# in a query (and in the instance variable) is in the /metrics scrape of an
# airlock with a relay, a pool and a memory directory (a histogram's
# _bucket, _sum and _count count as its family).
. "$(dirname "$0")/lib.sh"
need python3
pool_setup
pool_conf "$CONF" "$P0" <<<'    min_idle: 1'
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:%s\n' \
    "$(free_port)" "$(free_port)" >>"$CONF"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for metric_is airlock_pool_instances 'pool="fa",state="idle"' 1
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/metrics" || fail "no scrape"

python3 - "$ROOT/docs/grafana/airlock.json" "$T/metrics" <<'PY' || fail "the dashboard does not match the metrics"
import json, re, sys

dash = json.load(open(sys.argv[1]))
families = {}
for line in open(sys.argv[2]):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        families[m.group(1)] = m.group(2)
exported = set(families)
for name, kind in families.items():
    if kind == "histogram":
        exported |= {name + "_bucket", name + "_sum", name + "_count"}

queries, ids, bad = [], set(), []
for p in dash["panels"]:
    if p["id"] in ids:
        bad.append("panel id %d twice" % p["id"])
    ids.add(p["id"])
    for t in p.get("targets", []):
        queries.append(t["expr"])
        if t.get("datasource", {}).get("uid") != "${datasource}":
            bad.append("panel %r: a query without the dashboard's data source" % p["title"])
for v in dash["templating"]["list"]:
    if v["type"] == "query":
        queries.append(v["definition"])
if len(queries) < 20:
    bad.append("only %d queries" % len(queries))
for q in queries:
    for name in re.findall(r"\b((?:airlock|process)_[a-z0-9_]+)\b", q):
        if name not in exported:
            bad.append("%s (in %s) is not exported" % (name, q))
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
stop_clean "$AL" al
