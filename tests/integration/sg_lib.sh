# sg_lib.sh - helpers of the smartgrid tests (t_smartgrid_*.sh); source it
# after lib.sh. The smartgrid binaries sit beside $AIRLOCK in the build dir.
SG_BIN=$(dirname "$AIRLOCK")
need curl sqlcipher openssl
[ -x "$SG_BIN/smartgrid-server" ] || fail "no $SG_BIN/smartgrid-server"
SG=$T/prov     # smartgrid-provision output
SG_DOMAIN=example

# sg_provision USERS [ARGS]: certificates, keys and one day of data per user,
# ending at 2023-11-14 (long before any row a test writes "now").
sg_provision() {
    "$SG_BIN/smartgrid-provision" --out "$SG" --users "$@" --days 1 --end 1700000000 >/dev/null
}

# sg_key USER: the user's database key from keys.csv.
sg_key() { awk -F, -v u="$1" '$1 == u { print $2 }' "$SG/keys.csv"; }

# sg_server NAME DIR [ARGS]: starts smartgrid-server on a free port with
# instance directory DIR, waits for WAITING_LOGIN; $SG_PORT, $LAST_PID. It
# presents the wildcard certificate (--cert), or with SG_OWN_CERT=1 each
# user's own one from DIR (USER.crt, USER.key: sg_bring_in).
sg_server() {
    local name=$1 dir=$2 cert=(--cert "$SG/server.pem" --key "$SG/server.key")
    shift 2
    mkdir -p "$dir"
    SG_PORT=$(free_port)
    [ "${SG_OWN_CERT:-}" != 1 ] || cert=()
    start "$name" "$SG_BIN/smartgrid-server" --listen "tcp:127.0.0.1:$SG_PORT" --dir "$dir" \
        "${cert[@]}" --ca "$SG/ca.pem" "$@"
    wait_log "$T/$name.log" '^WAITING_LOGIN$'
}

# sg_one_user NAME DIR [ARGS]: provisions one user ($U, user0001), puts its
# database in DIR and starts the server there (sg_server NAME DIR ARGS).
sg_one_user() {
    local name=$1 dir=$2
    shift 2
    sg_provision 1
    U=user0001
    mkdir -p "$dir"
    cp "$SG/db/$U.db" "$dir/"
    sg_server "$name" "$dir" "$@"
}

# sg_bring_in USER DIR: what the pool's provisioning hook does
# (apps/smartgrid/state-hook.sh fetch): USER's server certificate, key and
# database from the provisioned store into DIR.
sg_bring_in() { "$ROOT/apps/smartgrid/state-hook.sh" fetch "$SG/db" "$1" "$2"; }

# sg_curl CERT_USER SNI_USER PATH [CURL_ARGS...]: one HTTPS request with
# CERT_USER's client certificate (none when "-") to SNI_USER.grid.example;
# prints the status code (000 when the handshake failed), body in $T/body.
# With $SG_TOKEN set, sends it as a bearer token.
sg_curl() {
    local cu=$1 su=$2 path=$3
    shift 3
    local certs=() auth=()
    [ "$cu" = - ] || certs=(--cert "$SG/users/$cu.pem" --key "$SG/users/$cu.key")
    [ -z "${SG_TOKEN:-}" ] || auth=(-H "Authorization: Bearer $SG_TOKEN")
    rm -f "$T/body"
    curl -s -o "$T/body" -w '%{http_code}' --cacert "$SG/ca.pem" "${certs[@]}" "${auth[@]}" \
        --resolve "$su.grid.$SG_DOMAIN:$SG_PORT:127.0.0.1" \
        "https://$su.grid.$SG_DOMAIN:$SG_PORT$path" "$@" || true
}

# sg_post USER PATH JSON: POST JSON as USER (its own certificate and SNI).
sg_post() { sg_curl "$1" "$1" "$2" -X POST -H 'Content-Type: application/json' --data-binary "$3"; }

# sg_write_logout USER: USER, logged in, writes one alarm, then logs out
sg_write_logout() {
    local code
    code=$(sg_post "$1" /write '{"alarms":[{"metric":"power","threshold":3}]}')
    [ "$code" = 200 ] || fail "write: HTTP $code"
    [ "$(sg_curl "$1" "$1" /logout -X POST)" = 200 ] || fail "logout"
}

# sg_login USER: logs USER in with its key; sets SG_TOKEN.
sg_login() {
    local code
    SG_TOKEN=
    code=$(sg_post "$1" /login "{\"key\":\"$(sg_key "$1")\"}")
    [ "$code" = 200 ] || fail "login of $1: HTTP $code $(cat "$T/body" 2>/dev/null)"
    SG_TOKEN=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' "$T/body")
    [ ${#SG_TOKEN} = 64 ] || fail "no token in $(cat "$T/body")"
}

# sg_sql USER DB SQL: runs SQL on the encrypted database DB with USER's key.
sg_sql() {
    printf "PRAGMA key = \"x'%s'\";\n.bail on\n%s\n" "$(sg_key "$1")" "$3" | sqlcipher "$2" |
        grep -v '^ok$'
}

# json FIELD: a field of $T/body (numbers and strings; null as "null").
json() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$T/body"; }

# sg_router PORT: the routers: block of a config with the pool of
# pool-yaml.sh: router grid on 127.0.0.1:PORT sending USER.grid.example to
# pool grid's directory, with the client's address (PROXY v2, which the
# instances read: --accept-proxy v2).
sg_router() {
    printf 'routers:\n  - name: grid\n    listen: tcp:127.0.0.1:%s\n    send_proxy: v2\n    directory: grid\n    domain: grid.example\n' "$1"
}
