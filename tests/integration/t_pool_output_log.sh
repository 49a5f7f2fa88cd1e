#!/bin/bash
# t_pool_output_log: an instance's output cannot forge a field of airlock's
# log line. The pool's instance writes a line that closes a quote and goes
# on with "pool=victim instance=victim-0 login user=bob ...", a NEL, an
# escape and a byte of no UTF-8, and airlock runs with log_format json.
# Proves: the line is logged as the one quoted value out="..." (its quote,
# control and non-ASCII bytes as '?'); every json line is one object whose
# keys are unique, and the out line has pool=fa, the instance's own name
# and no user (before, the words read as fields: a json reader took
# pool=victim, instance=victim-0 and user=bob for the line's).
. "$(dirname "$0")/lib.sh"
need python3

P0=$(free_range 10)
cat >"$T/p.yaml" <<EOF
log_format: json
directory:
  backend: memory
pools:
  - name: fa
    command: [/bin/sh, -c, 'printf "%s\\302\\205\\033[2J\\377 end\\n" "hi\\" pool=victim instance=victim-0 login user=bob provisioned=yes"; echo WAITING_LOGIN; exec sleep 300']
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $P0-$((P0 + 9))
    dir: $T/inst
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"
EOF
airlock_up al run -c "$T/p.yaml"
AL=$LAST_PID
wait_log "$T/al.log" 'WAITING_LOGIN' 10 "$AL"
stop_clean "$AL" al

python3 - "$T/al.log" <<'PY' || fail "the instance's line forged fields: $(grep victim "$T/al.log")"
import json, sys

def unique(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "duplicate keys: %r" % keys
    return dict(pairs)

outs = []
for line in open(sys.argv[1], encoding="utf-8"):
    obj = json.loads(line, object_pairs_hook=unique)
    if "out" in obj:
        outs.append(obj)
hostile = [o for o in outs if "victim" in o["out"]]
assert len(hostile) >= 1, outs
for o in hostile:
    assert o["pool"] == "fa" and o["instance"].startswith("fa-"), o
    assert "user" not in o and "provisioned" not in o, o
    assert o["out"] == ("hi? pool=victim instance=victim-0 login user=bob provisioned=yes"
                        "???[2J? end"), o
PY
log "the instance's line is one quoted value: $(grep -m1 victim "$T/al.log")"
