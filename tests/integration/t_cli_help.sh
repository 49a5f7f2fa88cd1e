#!/bin/bash
# t_cli_help: every subcommand's --help (and -h) prints its usage line on
# stdout and exits 0; a mistyped command (--version and --help too, a ctl
# command before any connect, attest's and field's subcommands) or long
# option gets "did you mean" with the closest known one and exits 2; a
# far-off word gets no hint; the bash completion offers every option the
# usage lists.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1

# run_al EXPECTED_STATUS ARGS...: runs airlock (never for long), stdout in
# $T/out and stderr in $T/err; fails on another status
run_al() {
    local want=$1 rc=0
    shift
    timeout 10 "$AIRLOCK" "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" != 124 ] || fail "airlock $* kept running"
    [ "$rc" = "$want" ] || fail "airlock $* exited $rc, expected $want: $(head -3 "$T/err")"
}

# help CMD... -- LINE: `airlock CMD... --help` and `-h` print LINE on stdout
help() {
    local args=() line
    while [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    line=$2
    for h in --help -h; do
        run_al 0 "${args[@]}" "$h"
        grep -qF -- "$line" "$T/out" || fail "airlock ${args[*]} $h: no '$line' on stdout: $(head -3 "$T/out")"
    done
}

# the static build has neither attest nor field: only what this one has
has_attest=1 has_field=1
usage=$("$AIRLOCK" 2>&1 || true)
grep -q 'airlock attest verify' <<<"$usage" || has_attest=
grep -q 'airlock field encrypt' <<<"$usage" || has_field=

help relay -- "usage: airlock relay LISTEN TARGET"
help router -- "airlock router LISTEN --route NAME=TARGET"
help run -- "airlock run -c FILE"
help check -- "airlock check -c FILE"
help ctl -- "airlock ctl [-s ENDPOINT]"
help version -- "airlock version | --version"
help -- "usage: airlock relay LISTEN TARGET"
if [ -n "$has_attest" ]; then
    help attest -- "usage: airlock attest verify"
    help attest verify -- "usage: airlock attest verify"
fi
if [ -n "$has_field" ]; then
    help field -- "usage: airlock field encrypt"
    help field encrypt -- "usage: airlock field encrypt"
fi
run_al 2 version --verbose # only --help may follow version
grep -q "^usage: airlock" "$T/err" || fail "version --verbose: $(head -3 "$T/err")"

# hint CMD... -- MESSAGE: exits 2 and stderr has MESSAGE
hint() {
    local args=()
    while [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    run_al 2 "${args[@]}"
    grep -qF -- "$2" "$T/err" || fail "airlock ${args[*]}: no '$2': $(head -3 "$T/err")"
}

hint chek -- "airlock: unknown command 'chek' (did you mean 'check'?)"
hint CHECK -- "(did you mean 'check'?)"
hint rn -c x -- "(did you mean 'run'?)"
hint rleay -- "(did you mean 'relay'?)" # two letters swapped: one edit
hint routr -- "(did you mean 'router'?)"
hint versoin -- "(did you mean 'version'?)"
hint ctll -- "(did you mean 'ctl'?)"
hint --verison -- "airlock: unknown command '--verison' (did you mean '--version'?)"
hint --hlep -- "(did you mean '--help'?)"
hint ctl -s unix:/nonexistent relaod -- "airlock ctl: unknown command 'relaod' (did you mean 'reload'?)"
[ -z "$has_attest" ] || hint atest -- "(did you mean 'attest'?)"
[ -z "$has_field" ] || hint feild -- "(did you mean 'field'?)"
[ -z "$has_attest" ] || hint attest verfy x -- "airlock attest: unknown subcommand 'verfy' (did you mean 'verify'?)"
[ -z "$has_attest" ] || hint attest brokerkey -- "(did you mean 'broker-key'?)"
[ -z "$has_field" ] || hint field encrpt --keys k -- "airlock field: unknown subcommand 'encrpt' (did you mean 'encrypt'?)"
hint check --hlep -- "airlock check: did you mean '--help'?"
hint run --hepl -- "airlock run: did you mean '--help'?"
hint ctl --hepl sessions -- "airlock ctl: did you mean '--help'?"
hint ctl --HELP -- "airlock ctl: did you mean '--help'?"
hint relay tcp:127.0.0.1:1 tcp:127.0.0.1:2 --idle-timout=5s -- "(did you mean '--idle-timeout'?)"
if [ -n "$has_attest" ]; then
    hint attest verify --tsl 127.0.0.1:1 -- "airlock attest: did you mean '--tls'?"
    hint attest get --provder sim -- "airlock attest: did you mean '--provider'?"
    hint attest verify --mesurement=ab f -- "airlock attest: did you mean '--measurement'?"
fi
if [ -n "$has_field" ]; then
    hint field encrypt --kyes k --path '$.a' -- "airlock field: did you mean '--keys'?"
    hint field decrypt --keys k --determinstic '$.a' -- "airlock field: did you mean '--deterministic'?"
    hint field rewrap --KEYS k -- "airlock field: did you mean '--keys'?" # options are case-sensitive
fi

# no hint for what is near nothing, nor for a known option missing its value
for args in "xyzzyq" "frobnicate" "check --xyzzyq" "ctl --frobnicate x" \
    ${has_attest:+"attest verify --xyzzyq f"} ${has_field:+"field encrypt --xyzzyq"} \
    ${has_field:+"field encrypt --keys"}; do
    # shellcheck disable=SC2086 # words on purpose
    run_al 2 $args
    grep -q "did you mean" "$T/err" && fail "airlock $args: unexpected hint: $(head -3 "$T/err")"
done
grep -q "^airlock: unknown command 'xyzzyq'$" <(timeout 10 "$AIRLOCK" xyzzyq 2>&1) ||
    fail "xyzzyq: no plain 'unknown command' line"

# bash completion offers every option the usage lists (--log-format was missing)
for opt in $("$AIRLOCK" --help | sed -n 's/^  \(--[a-z-]*\).*/\1/p'); do
    grep -qE -- "$opt( |\$|\))" "$ROOT/dist/airlock.bash-completion" ||
        fail "dist/airlock.bash-completion does not offer $opt"
done
log "ok"
