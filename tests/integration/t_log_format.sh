#!/bin/bash
# t_log_format: log_format text | logfmt | json. One relay in front of an
# echo server, run with each format (text: the default; logfmt: the
# log_format key; json: --log-format): a client's connection makes its
# "close" line. Proves: text lines are today's; every logfmt line is
# key=value pairs only (a small parser reads it whole) and every json line
# is one object (python3 json.loads), with ts, level and msg first, then the
# message's fields in order; the close line's keys and values are the ones
# the text line has. An unknown format is refused with the expected values.
. "$(dirname "$0")/lib.sh"
need socat python3

read -r PE PL <<<"$(free_ports 2)"
start echo socat TCP-LISTEN:"$PE",bind=127.0.0.1,reuseaddr,fork EXEC:cat
wait_port "$PE"

# run NAME ARGS...: airlock NAME relays one connection, then stops cleanly.
run() {
    local name=$1
    shift
    airlock_up "$name" "$@"
    local pid=$LAST_PID
    [ "$(echo "ping-$name" | socat -t 5 - TCP:127.0.0.1:"$PL")" = "ping-$name" ] ||
        fail "$name: no echo through the relay"
    wait_log "$T/$name.log" 'close' 10 "$pid"
    stop_clean "$pid" "$name"
}

# check FORMAT LOG: every line of LOG parses in FORMAT, and its close line
# has the fields of the relay's close line in their order.
check() {
    python3 - "$1" "$2" <<'PY' || fail "$1 lines of $2: $(cat "$2")"
import json, re, sys
fmt, path = sys.argv[1], sys.argv[2]
pair = re.compile(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^ "=\\]+)(?: |$)')
closes = []
for line in open(path, encoding="utf-8"):
    line = line.rstrip("\n")
    if fmt == "json":
        obj = json.loads(line)
        assert isinstance(obj, dict), line
    else:
        pos, obj = 0, {}
        while pos < len(line):
            m = pair.match(line, pos)
            assert m, "not logfmt at %d: %s" % (pos, line)
            assert m.group(1) not in obj, "duplicate key: " + line
            v = m.group(2)
            obj[m.group(1)] = json.loads(v) if v.startswith('"') else v
            pos = m.end()
    keys = list(obj)
    assert keys[:3] == ["ts", "level", "msg"], line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["ts"]), line
    assert obj["level"] in ("error", "warn", "info", "debug"), line
    if obj["msg"] == "close":
        closes.append((keys, obj))
assert len(closes) == 1, closes
keys, obj = closes[0]
assert keys[3:] == ["relay", "conn", "client", "duration_ms", "bytes_in", "bytes_out", "end"], keys
assert obj["relay"] == "echo" and obj["end"] == "eof", obj
assert obj["bytes_in"] == obj["bytes_out"] != "0", obj
PY
}

cat >"$T/logfmt.yaml" <<EOF
log_format: logfmt
relays:
  - name: echo
    listen: tcp:127.0.0.1:$PL
    target: tcp:127.0.0.1:$PE
EOF
grep -v '^log_format:' "$T/logfmt.yaml" >"$T/text.yaml"
"$AIRLOCK" check -c "$T/logfmt.yaml" >/dev/null || fail "logfmt config refused"
printf 'log_format: xml\n' >"$T/bad.yaml"
out=$("$AIRLOCK" check -c "$T/bad.yaml" 2>&1) && fail "log_format: xml accepted"
[[ $out == *"bad.yaml:1: log_format: expected text, logfmt or json" ]] || fail "log_format: xml: $out"

run text run -c "$T/text.yaml"
grep -qE '^[0-9-]{10}T[0-9:.]{12}Z info close relay=echo conn=1 client=127\.0\.0\.1:[0-9]+ duration_ms=[0-9]+ bytes_in=[0-9]+ bytes_out=[0-9]+ end=eof$' \
    "$T/text.log" || fail "text close line: $(grep close "$T/text.log")"
run logfmt run -c "$T/logfmt.yaml"
check logfmt "$T/logfmt.log"
run json relay tcp:127.0.0.1:"$PL" tcp:127.0.0.1:"$PE" --name echo --log-format json
check json "$T/json.log"
echo PASS
