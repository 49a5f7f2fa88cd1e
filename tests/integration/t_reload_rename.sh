#!/bin/bash
# t_reload_rename: a reload may move a listening endpoint from one relay to
# another. The relay that listens there gives its socket up to the relay of
# the new file that names it:
#   - a tcp relay, a unix relay and a field proxy renamed (same endpoint,
#     new name; the proxy only in a build with field encryption);
#   - two relays that swap their ports;
# each reload is applied ("reloaded (generation N)"), every endpoint then
# serves with the new relay's target, and a connection made before goes on.
# Before, the new relay bound the endpoint itself, found it in use by its
# own process, and the whole reload failed ("cannot listen on ...: Address
# already in use"); a renamed proxy's reload was applied in part, and
# nothing listened on its port any more.
. "$(dirname "$0")/lib.sh"
need socat

read -r PA PB PX ECHO_A ECHO_B <<<"$(free_ports 5)"
field=yes
echo 'proxies: [{listen: "tcp:127.0.0.1:1", backend: "tcp:127.0.0.1:2"}]' >"$T/field.yaml"
"$AIRLOCK" check -c "$T/field.yaml" 2>&1 | has 'field encryption is not in this build' && field=no
CONF=$T/airlock.yaml CTL=$T/ctl.sock
# two targets that say which one answered
start echo_a socat TCP-LISTEN:"$ECHO_A",bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo A; cat"
start echo_b socat TCP-LISTEN:"$ECHO_B",bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo B; cat"
wait_port "$ECHO_A"
wait_port "$ECHO_B"

# config NAME1 PORT1 NAME2 PORT2 UNIXNAME PROXYNAME: NAME1 on PORT1 -> A,
# NAME2 on PORT2 -> B, UNIXNAME on a unix socket -> A, the proxy PROXYNAME
# on PX -> A; written in one rename
config() {
    {
        printf 'control: unix:%s\nrelays:\n' "$CTL"
        printf '  - {name: %s, listen: "tcp:127.0.0.1:%s", target: "tcp:127.0.0.1:%s"}\n' "$1" "$2" "$ECHO_A"
        printf '  - {name: %s, listen: "tcp:127.0.0.1:%s", target: "tcp:127.0.0.1:%s"}\n' "$3" "$4" "$ECHO_B"
        printf '  - {name: %s, listen: "unix:%s", target: "tcp:127.0.0.1:%s"}\n' "$5" "$T/r.sock" "$ECHO_A"
        [ "$field" = no ] ||
            printf 'proxies:\n  - {name: %s, listen: "tcp:127.0.0.1:%s", backend: "tcp:127.0.0.1:%s"}\n' \
                "$6" "$PX" "$ECHO_A"
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}
# answers ADDR: the target that answers there (A or B)
answers() { printf '' | timeout 5 socat -t 2 - "$1" 2>/dev/null | head -c 1; }
reload() {
    "$AIRLOCK" ctl -s "unix:$CTL" reload >"$T/reload.out" 2>&1 ||
        fail "reload $1: $(cat "$T/reload.out")"
    has "reloaded (generation $2)" <"$T/reload.out" || fail "reload $1: $(cat "$T/reload.out")"
}
serves() {
    [ "$(answers "TCP:127.0.0.1:$PA")" = "$1" ] || fail "$PA is not served by target $1 ($3)"
    [ "$(answers "TCP:127.0.0.1:$PB")" = "$2" ] || fail "$PB is not served by target $2 ($3)"
    [ "$(answers "UNIX-CONNECT:$T/r.sock")" = A ] || fail "the unix socket does not serve ($3)"
    [ "$field" = no ] || tcp_up "$PX" || fail "nothing listens on the proxy's port ($3)"
}

config web "$PA" api "$PB" sock px
airlock_up air run -c "$CONF"
AIR=$LAST_PID
serves A B "at the start"

log "a connection made before the reloads"
coproc KEEP { socat -t 30 - "TCP:127.0.0.1:$PA" 2>&1; }
read -r -t 5 first <&"${KEEP[0]}" || fail "no greeting on the kept connection"
[ "$first" = A ] || fail "the kept connection got '$first'"

log "rename a tcp relay, a unix relay and the proxy (field=$field)"
config web2 "$PA" api "$PB" sock2 px2
reload rename 2
serves A B "after the rename"
[ "$(stat -c %a "$T/r.sock")" = 660 ] || fail "the socket's mode: $(stat -c %a "$T/r.sock")"

log "swap the two tcp relays' ports"
config web2 "$PB" api "$PA" sock2 px2
reload swap 3
serves B A "after the swap"

log "the connection made before still relays"
echo still >&"${KEEP[1]}"
read -r -t 5 back <&"${KEEP[0]}" || fail "the kept connection went away"
[ "$back" = still ] || fail "the kept connection echoed '$back'"
exec {KEEP[1]}>&-

stop_clean "$AIR" air
log ok
